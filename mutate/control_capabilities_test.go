package mutate

import (
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestControlCapabilities(t *testing.T) {
	const caps = "spec.containers.0.securityContext.capabilities"
	ctlRun(t, []ctlCase{
		{
			name: "no securityContext: drop ALL in one operation",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			want: map[string]any{caps: map[string]any{"drop": []string{"ALL"}}},
			ops:  []string{"add /spec/containers/0/securityContext"},
		},
		{
			name:  "existing drop list is appended to",
			pod:   `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"drop":["NET_RAW"]}}}]}}`,
			want:  map[string]any{caps + ".drop": []string{"NET_RAW", "ALL"}},
			ops:   []string{"add /spec/containers/0/securityContext/capabilities/drop/-"},
			noOps: []string{"/spec/containers/0/securityContext/capabilities/add"},
		},
		{
			name:  "drop ALL already there: no operation",
			pod:   `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"drop":["ALL"]}}}]}}`,
			want:  map[string]any{caps + ".drop": []string{"ALL"}},
			noOps: []string{"/spec/containers/0/securityContext/capabilities"},
		},
		{
			name: "empty drop list is appended to",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"drop":[]}}}]}}`,
			want: map[string]any{caps + ".drop": []string{"ALL"}},
			ops:  []string{"add /spec/containers/0/securityContext/capabilities/drop/-"},
		},
		{
			name: "null drop is unset",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"drop":null,"add":["NET_BIND_SERVICE"]}}}]}}`,
			want: map[string]any{caps: map[string]any{"drop": []string{"ALL"}, "add": []string{"NET_BIND_SERVICE"}}},
			ops:  []string{"add /spec/containers/0/securityContext/capabilities/drop"},
		},
		{
			name: "null capabilities is unset",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":null,"runAsUser":1000}}]}}`,
			want: map[string]any{caps: map[string]any{"drop": []string{"ALL"}}, "spec.containers.0.securityContext.runAsUser": 1000},
			ops:  []string{"add /spec/containers/0/securityContext/capabilities"},
		},
		{
			name: "lower-case all does not count: ALL appended",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"drop":["all"]}}}]}}`,
			want: map[string]any{caps + ".drop": []string{"all", "ALL"}},
		},
		{
			name: "allowed add NET_BIND_SERVICE: no conflict",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["NET_BIND_SERVICE"]}}}]}}`,
			want: map[string]any{caps: map[string]any{"add": []string{"NET_BIND_SERVICE"}, "drop": []string{"ALL"}}},
		},
		{
			name:      "add outside allowlist warn: kept",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["NET_ADMIN"]}}}]}}`,
			conflicts: []cf{{"capabilities", "containers[app]", warnA}},
			want:      map[string]any{caps: map[string]any{"add": []string{"NET_ADMIN"}, "drop": []string{"ALL"}}},
			warnings:  []string{"securityContext.capabilities.add=NET_ADMIN kept but unsafe", `exempt.pod-hardener.io/app: "capabilities"`},
		},
		{
			name: "enforce removes several entries from one list",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["NET_ADMIN","NET_BIND_SERVICE","SYS_TIME","CHOWN"],"drop":["ALL"]}}}]}}`,
			in:   restrictedIn(t, enforceA),
			conflicts: []cf{
				{"capabilities", "containers[app]", enforceA},
				{"capabilities", "containers[app]", enforceA},
				{"capabilities", "containers[app]", enforceA},
			},
			lost: []string{"/spec/containers/0/securityContext/capabilities/add"},
			want: map[string]any{caps: map[string]any{"add": []string{"NET_BIND_SERVICE"}, "drop": []string{"ALL"}}},
			ops: []string{
				"remove /spec/containers/0/securityContext/capabilities/add/3",
				"remove /spec/containers/0/securityContext/capabilities/add/2",
				"remove /spec/containers/0/securityContext/capabilities/add/0",
			},
			warnings: []string{"add=NET_ADMIN replaced", "add=SYS_TIME replaced", "add=CHOWN replaced"},
		},
		{
			name: "enforce removes every entry and still drops ALL",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["SYS_ADMIN","CAP_NET_RAW"]}}}]}}`,
			in:   restrictedIn(t, enforceA),
			conflicts: []cf{
				{"capabilities", "containers[app]", enforceA},
				{"capabilities", "containers[app]", enforceA},
			},
			lost: []string{"/spec/containers/0/securityContext/capabilities/add"},
			want: map[string]any{caps: map[string]any{"add": []string{}, "drop": []string{"ALL"}}, "spec.containers.0.securityContext.allowPrivilegeEscalation": false},
		},
		{
			name:      "deny names container, capability and annotation",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["NET_ADMIN"]}}}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"capabilities", "containers[app]", denyA}},
			denied:    true,
			message:   []string{"containers[app]", "securityContext.capabilities.add=NET_ADMIN", `exempt.pod-hardener.io/app: "capabilities"`},
		},
		{
			name: "init, sidecar and ephemeral containers drop ALL",
			pod:  `{"spec":{"initContainers":[{"name":"i"},{"name":"s","restartPolicy":"Always","securityContext":{"capabilities":{"drop":["NET_RAW"]}}}],"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"e","securityContext":{}}]}}`,
			want: map[string]any{
				"spec.initContainers.0.securityContext.capabilities.drop": []string{"ALL"},
				"spec.initContainers.1.securityContext.capabilities.drop": []string{"NET_RAW", "ALL"},
				caps + ".drop": []string{"ALL"},
				"spec.ephemeralContainers.0.securityContext.capabilities.drop": []string{"ALL"},
			},
			ops: []string{"add /spec/initContainers/1/securityContext/capabilities/drop/-", "add /spec/ephemeralContainers/0/securityContext/capabilities"},
		},
		{
			name:      "EphemeralOnly: only the new container",
			pod:       `{"spec":{"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg","securityContext":{"capabilities":{"add":["SYS_PTRACE"]}}}]}}`,
			in:        Input{Profile: profile(t, "restricted"), EphemeralOnly: map[string]bool{"dbg": true}},
			conflicts: []cf{{"capabilities", "ephemeralContainers[dbg]", warnA}},
			want: map[string]any{
				"spec.ephemeralContainers.0.securityContext.capabilities.drop": []string{"ALL"},
				"spec.containers.0.securityContext":                            absent,
			},
		},
		{
			name: "custom dropCapabilities: each missing entry appended",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"drop":["CHOWN"]}}}]}}`,
			in:   restrictedIn(t, warnA, func(p *profiles.Profile) { p.DropCapabilities = []string{"NET_RAW", "ALL", "CHOWN"} }),
			want: map[string]any{caps + ".drop": []string{"CHOWN", "NET_RAW", "ALL"}},
		},
		{
			name:  "custom allowedCapabilities accept CAP_ prefix either side",
			pod:   `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["NET_ADMIN"]}}}]}}`,
			in:    restrictedIn(t, denyA, func(p *profiles.Profile) { p.AllowedCapabilities = []string{"CAP_NET_ADMIN"} }),
			want:  map[string]any{caps + ".add": []string{"NET_ADMIN"}},
			noPSS: "NET_ADMIN is allowed by this custom profile, not by PSS",
		},
		{
			name: "baseline: nothing dropped, baseline adds allowed",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["CHOWN","KILL"]}}}]}}`,
			in:   Input{Profile: profile(t, "baseline", onConflict(denyA))},
			want: map[string]any{caps: map[string]any{"add": []string{"CHOWN", "KILL"}}},
		},
		{
			name:      "baseline: add beyond the baseline set conflicts",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["SYS_TIME"]}}}]}}`,
			in:        Input{Profile: profile(t, "baseline")},
			conflicts: []cf{{"capabilities", "containers[app]", warnA}},
			want:      map[string]any{caps: map[string]any{"add": []string{"SYS_TIME"}}},
		},
		{
			name: "windows pod: no capabilities",
			pod:  `{"spec":{"os":{"name":"windows"},"containers":[{"name":"app","securityContext":{}}]}}`,
			want: map[string]any{"spec.containers.0.securityContext": map[string]any{}},
		},
		{
			name: "add CAP_NET_BIND_SERVICE: a conflict, or the output passes PSS restricted",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["CAP_NET_BIND_SERVICE"]}}}]}}`,
			want: map[string]any{caps + ".drop": []string{"ALL"}},
			// Fixed either way: reported as a conflict, or the output passes.
			looseConflicts: true,
			noPSS:          "checked below",
			check: func(t *testing.T, r *Result, out []byte) {
				if len(r.Conflicts) != 0 {
					return
				}
				if f := restrictedFailures(t, out); len(f) != 0 {
					t.Errorf("no conflict reported, yet the output fails PSS restricted: %v", f)
				}
			},
		},
		{
			name: "drop CAP_ALL is not the ALL PSS requires",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"drop":["CAP_ALL"]}}}]}}`,
			want: map[string]any{caps + ".drop": []string{"CAP_ALL", "ALL"}},
		},
	})
}
