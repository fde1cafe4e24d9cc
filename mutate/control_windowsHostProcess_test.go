package mutate

import "testing"

func TestControlWindowsHostProcess(t *testing.T) {
	hpPod := `{"spec":{"os":{"name":"windows"},"hostNetwork":true,"securityContext":{"windowsOptions":{"hostProcess":true,"runAsUserName":"NT AUTHORITY\\SYSTEM"}},"containers":[{"name":"app","securityContext":{"windowsOptions":{"hostProcess":true}}}]}}`
	ctlRun(t, []ctlCase{
		{
			name:  "hostProcess false or unset: nothing",
			pod:   `{"spec":{"os":{"name":"windows"},"securityContext":{"windowsOptions":{"hostProcess":false}},"containers":[{"name":"app"}]}}`,
			noOps: []string{"/spec/securityContext/windowsOptions"},
		},
		{
			name:      "warn: kept, named at pod and container",
			pod:       hpPod,
			conflicts: []cf{{"hostNamespaces", "pod", warnA}, {"windowsHostProcess", "pod", warnA}, {"windowsHostProcess", "containers[app]", warnA}},
			warnings:  []string{"spec.securityContext.windowsOptions.hostProcess=true kept but unsafe", `pod-hardener.io/exempt-controls: "windowsHostProcess"`},
		},
		{
			name:      "enforce: no safe value, kept and said why",
			pod:       hpPod,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"hostNamespaces", "pod", warnA}, {"windowsHostProcess", "pod", warnA}, {"windowsHostProcess", "containers[app]", warnA}},
			warnings:  []string{"containers[app]: securityContext.windowsOptions.hostProcess=true kept but unsafe", "no safe value"},
			want:      map[string]any{"spec.securityContext.windowsOptions.hostProcess": true},
		},
		{
			name:      "deny: refused",
			pod:       hpPod,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"hostNamespaces", "pod", denyA}, {"windowsHostProcess", "pod", denyA}, {"windowsHostProcess", "containers[app]", denyA}},
			denied:    true,
			message:   []string{"spec.securityContext.windowsOptions.hostProcess=true", `pod-hardener.io/exempt-controls: "windowsHostProcess"`},
		},
	})
}
