package mutate

import "testing"

func TestControlSELinuxOptions(t *testing.T) {
	const psc = "spec.securityContext.seLinuxOptions"
	const c0 = "spec.containers.0.securityContext.seLinuxOptions"
	ctlRun(t, []ctlCase{
		{
			name:  "allowed types and a level kept",
			pod:   `{"spec":{"securityContext":{"seLinuxOptions":{"type":"container_t","level":"s0:c1,c2"}},"containers":[{"name":"app","securityContext":{"seLinuxOptions":{"type":"container_init_t","user":""}}}]}}`,
			want:  map[string]any{psc: map[string]any{"type": "container_t", "level": "s0:c1,c2"}, c0 + ".type": "container_init_t"},
			noOps: []string{"/spec/securityContext/seLinuxOptions", "/spec/containers/0/securityContext/seLinuxOptions"},
		},
		{
			name:      "type spc_t warn: kept, named",
			pod:       `{"spec":{"securityContext":{"seLinuxOptions":{"type":"spc_t"}},"containers":[{"name":"app"}]}}`,
			conflicts: []cf{{"seLinuxOptions", "pod", warnA}},
			want:      map[string]any{psc + ".type": "spc_t"},
			warnings:  []string{"spec.securityContext.seLinuxOptions.type=spc_t kept but unsafe", `pod-hardener.io/exempt-controls: "seLinuxOptions"`},
		},
		{
			name: "bad type, user and role enforce: removed, level kept",
			pod:  `{"spec":{"securityContext":{"seLinuxOptions":{"type":"spc_t","user":"system_u","role":"system_r","level":"s0"}},"containers":[{"name":"app","securityContext":{"seLinuxOptions":{"user":"u","type":"container_t"}}}]}}`,
			in:   restrictedIn(t, enforceA),
			conflicts: []cf{
				{"seLinuxOptions", "pod", enforceA}, {"seLinuxOptions", "pod", enforceA}, {"seLinuxOptions", "pod", enforceA},
				{"seLinuxOptions", "containers[app]", enforceA},
			},
			lost: []string{psp("type"), psp("user"), psp("role"), "/spec/containers/0/securityContext/seLinuxOptions/user"},
			ops:  []string{"remove " + psp("type"), "remove /spec/containers/0/securityContext/seLinuxOptions/user"},
			want: map[string]any{psc: map[string]any{"level": "s0"}, c0: map[string]any{"type": "container_t"}},
		},
		{
			name:      "container role deny",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"seLinuxOptions":{"role":"r"}}}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"seLinuxOptions", "containers[app]", denyA}},
			denied:    true,
			message:   []string{"containers[app]", "securityContext.seLinuxOptions.role=r", `pod-hardener.io/exempt-controls: "seLinuxOptions"`},
		},
		{
			name:      "EphemeralOnly: the new container only",
			pod:       `{"spec":{"securityContext":{"seLinuxOptions":{"type":"spc_t"}},"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg","securityContext":{"seLinuxOptions":{"type":"spc_t"}}}]}}`,
			in:        Input{Profile: profile(t, "restricted", onConflict(enforceA)), EphemeralOnly: map[string]bool{"dbg": true}},
			conflicts: []cf{{"seLinuxOptions", "ephemeralContainers[dbg]", enforceA}},
			lost:      []string{"/spec/ephemeralContainers/0/securityContext/seLinuxOptions/type"},
			want:      map[string]any{psc + ".type": "spc_t", "spec.ephemeralContainers.0.securityContext.seLinuxOptions": map[string]any{}},
		},
	})
}

func psp(k string) string { return "/spec/securityContext/seLinuxOptions/" + k }
