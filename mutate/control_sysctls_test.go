package mutate

import "testing"

func TestControlSysctls(t *testing.T) {
	const s = "spec.securityContext.sysctls"
	safe := `{"name":"net.ipv4.ip_local_port_range","value":"1024 65535"}`
	ctlRun(t, []ctlCase{
		{
			name:  "safe sysctls kept",
			pod:   `{"spec":{"securityContext":{"sysctls":[` + safe + `,{"name":"net.ipv4.tcp_notsent_lowat","value":"1"}]},"containers":[{"name":"app"}]}}`,
			want:  map[string]any{s + ".0.name": "net.ipv4.ip_local_port_range", s + ".1.name": "net.ipv4.tcp_notsent_lowat"},
			noOps: []string{"/spec/securityContext/sysctls"},
		},
		{
			name:      "unsafe sysctl warn: kept, named",
			pod:       `{"spec":{"securityContext":{"sysctls":[{"name":"kernel.msgmax","value":"1"}]},"containers":[{"name":"app"}]}}`,
			conflicts: []cf{{"sysctls", "pod", warnA}},
			want:      map[string]any{s + ".0.name": "kernel.msgmax"},
			warnings:  []string{"spec.securityContext.sysctls[0].name=kernel.msgmax kept but unsafe", `pod-hardener.io/exempt-controls: "sysctls"`},
		},
		{
			name:      "unsafe sysctls enforce: removed, the safe one kept in place",
			pod:       `{"spec":{"securityContext":{"sysctls":[{"name":"kernel.msgmax","value":"1"},` + safe + `,{"name":"vm.swappiness","value":"1"}]},"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"sysctls", "pod", enforceA}, {"sysctls", "pod", enforceA}},
			lost:      []string{"/spec/securityContext/sysctls"},
			ops:       []string{"remove /spec/securityContext/sysctls/2", "remove /spec/securityContext/sysctls/0"},
			want:      map[string]any{s: []any{map[string]any{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}}},
		},
		{
			name:      "unsafe sysctl deny",
			pod:       `{"metadata":{"name":"p"},"spec":{"securityContext":{"sysctls":[{"name":"kernel.msgmax","value":"1"}]},"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"sysctls", "pod", denyA}},
			denied:    true,
			message:   []string{`pod "p"`, "spec.securityContext.sysctls[0].name=kernel.msgmax", `pod-hardener.io/exempt-controls: "sysctls"`},
		},
	})
}
