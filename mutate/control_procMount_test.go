package mutate

import (
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestControlProcMount(t *testing.T) {
	const c0 = "spec.containers.0.securityContext.procMount"
	ctlRun(t, []ctlCase{
		{
			name:  "unset and Default kept",
			pod:   `{"spec":{"containers":[{"name":"app"},{"name":"b","securityContext":{"procMount":"Default"}}]}}`,
			want:  map[string]any{c0: absent, "spec.containers.1.securityContext.procMount": "Default"},
			noOps: []string{"/spec/containers/1/securityContext/procMount"},
		},
		{
			name:      "Unmasked warn: kept, named",
			pod:       `{"spec":{"hostUsers":false,"containers":[{"name":"app","securityContext":{"procMount":"Unmasked"}}]}}`,
			conflicts: []cf{{"procMount", "containers[app]", warnA}},
			want:      map[string]any{c0: "Unmasked"},
			warnings:  []string{"containers[app]: securityContext.procMount=Unmasked kept but unsafe", `exempt.pod-hardener.io/app: "procMount"`},
		},
		{
			name:      "Unmasked enforce: Default, in every container kind",
			pod:       `{"spec":{"hostUsers":false,"initContainers":[{"name":"i","securityContext":{"procMount":"Unmasked"}}],"containers":[{"name":"app","securityContext":{"procMount":"Unmasked"}}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"procMount", "initContainers[i]", enforceA}, {"procMount", "containers[app]", enforceA}},
			lost:      []string{"/spec/initContainers/0/securityContext/procMount", "/spec/containers/0/securityContext/procMount"},
			ops:       []string{"replace /spec/containers/0/securityContext/procMount"},
			want:      map[string]any{c0: "Default", "spec.initContainers.0.securityContext.procMount": "Default"},
		},
		{
			name:      "Unmasked deny",
			pod:       `{"spec":{"hostUsers":false,"containers":[{"name":"app","securityContext":{"procMount":"Unmasked"}}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"procMount", "containers[app]", denyA}},
			denied:    true,
			message:   []string{"containers[app]", "securityContext.procMount=Unmasked", `exempt.pod-hardener.io/app: "procMount"`},
		},
		{
			name:  "baseline: Unmasked in a user namespace is allowed",
			pod:   `{"spec":{"hostUsers":false,"containers":[{"name":"app","securityContext":{"procMount":"Unmasked"}}]}}`,
			in:    Input{Profile: profile(t, "baseline", onConflict(enforceA))},
			want:  map[string]any{c0: "Unmasked"},
			noOps: []string{"/spec/containers/0/securityContext/procMount"},
		},
		{
			name:      "baseline: Unmasked sharing the node's user namespace is not",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"procMount":"Unmasked"}}]}}`,
			in:        Input{Profile: profile(t, "baseline", onConflict(enforceA))},
			conflicts: []cf{{"procMount", "containers[app]", enforceA}},
			lost:      []string{"/spec/containers/0/securityContext/procMount"},
			want:      map[string]any{c0: "Default"},
		},
		{
			name:      "exempt for one container",
			pod:       `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"procMount"}},"spec":{"hostUsers":false,"containers":[{"name":"app","securityContext":{"procMount":"Unmasked"}},{"name":"b","securityContext":{"procMount":"Unmasked"}}]}}`,
			in:        Input{Profile: profile(t, "restricted", onConflict(enforceA)), Auth: authorized},
			conflicts: []cf{{"procMount", "containers[b]", enforceA}},
			lost:      []string{"/spec/containers/1/securityContext/procMount"},
			want:      map[string]any{c0: "Unmasked", "spec.containers.1.securityContext.procMount": "Default"},
			noPSS:     "one container is exempt",
			exempted:  []string{"procMount@app"},
			check: func(t *testing.T, r *Result, _ []byte) {
				if !r.MayFail {
					t.Error("MayFail = false with an exemption honoured")
				}
			},
		},
		{
			name:      "control mode warn with onConflict enforce",
			pod:       `{"spec":{"hostUsers":false,"containers":[{"name":"app","securityContext":{"procMount":"Unmasked"}}]}}`,
			in:        restrictedIn(t, enforceA, withControl(profiles.ProcMount, profiles.ModeWarn)),
			conflicts: []cf{{"procMount", "containers[app]", warnA}},
			want:      map[string]any{c0: "Unmasked"},
		},
	})
}
