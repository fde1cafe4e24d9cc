package mutate

import (
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestControlAllowPrivilegeEscalation(t *testing.T) {
	const sc = "spec.containers.0.securityContext"
	const ape = sc + ".allowPrivilegeEscalation"
	ctlRun(t, []ctlCase{
		{
			name: "unset: false",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			want: map[string]any{ape: false},
		},
		{
			name: "null securityContext and null field: false",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":null},{"name":"b","securityContext":{"allowPrivilegeEscalation":null}}]}}`,
			want: map[string]any{ape: false, "spec.containers.1.securityContext.allowPrivilegeEscalation": false},
			ops:  []string{"add /spec/containers/1/securityContext/allowPrivilegeEscalation"},
		},
		{
			name:  "explicit false: no operation",
			pod:   `{"spec":{"containers":[{"name":"app","securityContext":{"allowPrivilegeEscalation":false}}]}}`,
			want:  map[string]any{ape: false},
			noOps: []string{"/spec/containers/0/securityContext/allowPrivilegeEscalation"},
		},
		{
			name:      "true warn: kept",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"allowPrivilegeEscalation":true}}]}}`,
			conflicts: []cf{{"allowPrivilegeEscalation", "containers[app]", warnA}},
			want:      map[string]any{ape: true},
			warnings:  []string{"securityContext.allowPrivilegeEscalation=true kept but unsafe", `exempt.pod-hardener.io/app: "allowPrivilegeEscalation"`},
		},
		{
			name:      "true enforce: false",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"allowPrivilegeEscalation":true}}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"allowPrivilegeEscalation", "containers[app]", enforceA}},
			lost:      []string{"/spec/containers/0/securityContext/allowPrivilegeEscalation"},
			ops:       []string{"replace /spec/containers/0/securityContext/allowPrivilegeEscalation"},
			want:      map[string]any{ape: false},
		},
		{
			name:      "true deny",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"allowPrivilegeEscalation":true}}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"allowPrivilegeEscalation", "containers[app]", denyA}},
			denied:    true,
			message:   []string{"containers[app]", "securityContext.allowPrivilegeEscalation=true", `exempt.pod-hardener.io/app: "allowPrivilegeEscalation"`},
		},
		{
			name:      "privileged container: never false",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}},{"name":"b"}]}}`,
			conflicts: []cf{{"privileged", "containers[app]", warnA}},
			want:      map[string]any{ape: absent, "spec.containers.1.securityContext.allowPrivilegeEscalation": false},
			warnings:  []string{"containers[app]: allowPrivilegeEscalation left unset: the container is privileged"},
		},
		{
			// The API server refuses false only next to the literal
			// "CAP_SYS_ADMIN"; e2e TestSysAdminSpellings shows it.
			name:      "adds SYS_ADMIN: false, which the API server accepts",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["SYS_ADMIN"]}}}]}}`,
			conflicts: []cf{{"capabilities", "containers[app]", warnA}},
			want:      map[string]any{ape: false},
		},
		{
			name: "adds SYS_ADMIN under a profile allowing it: false, no conflict",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["SYS_ADMIN"]}}},{"name":"b","securityContext":{"capabilities":{"add":["sys_admin","Cap_Sys_Admin"]}}}]}}`,
			in: Input{Profile: profile(t, "baseline", func(p *profiles.Profile) {
				p.AllowedCapabilities = append(p.AllowedCapabilities, "SYS_ADMIN")
			})},
			conflicts: []cf{{"capabilities", "containers[b]", warnA}, {"capabilities", "containers[b]", warnA}},
			want:      map[string]any{ape: false, "spec.containers.1.securityContext.allowPrivilegeEscalation": false},
			noPSS:     "SYS_ADMIN is allowed by this profile, not by PSS",
		},
		{
			name:      "adds CAP_SYS_ADMIN: never false",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["NET_BIND_SERVICE","CAP_SYS_ADMIN"]}}}]}}`,
			conflicts: []cf{{"capabilities", "containers[app]", warnA}},
			want:      map[string]any{ape: absent},
			warnings:  []string{"containers[app]: allowPrivilegeEscalation left unset: the container adds CAP_SYS_ADMIN"},
		},
		{
			name:      "adds CAP_SYS_ADMIN in an init container: never false",
			pod:       `{"spec":{"initContainers":[{"name":"i","securityContext":{"capabilities":{"add":["CAP_SYS_ADMIN"]}}}],"containers":[{"name":"app"}]}}`,
			conflicts: []cf{{"capabilities", "initContainers[i]", warnA}},
			want:      map[string]any{"spec.initContainers.0.securityContext.allowPrivilegeEscalation": absent, ape: false},
		},
		{
			name:      "privileged ephemeral container: never false",
			pod:       `{"spec":{"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg","securityContext":{"privileged":true}}]}}`,
			conflicts: []cf{{"privileged", "ephemeralContainers[dbg]", warnA}},
			want:      map[string]any{"spec.ephemeralContainers.0.securityContext.allowPrivilegeEscalation": absent, ape: false},
		},
		{
			name:      "privileged with privileged control off: still never false",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`,
			in:        restrictedIn(t, enforceA, withControl(profiles.Privileged, profiles.ModeOff)),
			want:      map[string]any{ape: absent, sc + ".privileged": true},
			noPSS:     "the privileged control is off",
			conflicts: nil,
		},
		{
			name: "privileged and true, enforce: both become false",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true,"allowPrivilegeEscalation":true}}]}}`,
			in:   restrictedIn(t, enforceA),
			conflicts: []cf{
				{"privileged", "containers[app]", enforceA},
				{"allowPrivilegeEscalation", "containers[app]", enforceA},
			},
			lost: []string{"/spec/containers/0/securityContext/privileged", "/spec/containers/0/securityContext/allowPrivilegeEscalation"},
			want: map[string]any{sc + ".privileged": false, ape: false},
		},
		{
			name: "SYS_ADMIN and true, enforce: SYS_ADMIN removed, then false",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"allowPrivilegeEscalation":true,"capabilities":{"add":["SYS_ADMIN"]}}}]}}`,
			in:   restrictedIn(t, enforceA),
			conflicts: []cf{
				{"capabilities", "containers[app]", enforceA},
				{"allowPrivilegeEscalation", "containers[app]", enforceA},
			},
			lost: []string{"/spec/containers/0/securityContext/capabilities/add", "/spec/containers/0/securityContext/allowPrivilegeEscalation"},
			want: map[string]any{sc + ".capabilities.add": []string{}, ape: false},
		},
		{
			name: "SYS_ADMIN kept (capabilities warn) and true, enforce: cannot enforce",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"allowPrivilegeEscalation":true,"capabilities":{"add":["CAP_SYS_ADMIN"]}}}]}}`,
			in:   restrictedIn(t, enforceA, withControl(profiles.Capabilities, profiles.ModeWarn)),
			conflicts: []cf{
				{"capabilities", "containers[app]", warnA},
				{"allowPrivilegeEscalation", "containers[app]", warnA},
			},
			want:     map[string]any{ape: true, sc + ".capabilities.add": []string{"CAP_SYS_ADMIN"}},
			warnings: []string{"cannot set false: the container adds CAP_SYS_ADMIN"},
			check: func(t *testing.T, r *Result, out []byte) {
				if n := r.Conflicts[1].Note; !strings.Contains(n, "API server rejects") {
					t.Errorf("note = %q", n)
				}
			},
		},
		{
			name: "privileged kept (privileged warn) and true, enforce: cannot enforce",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true,"allowPrivilegeEscalation":true}}]}}`,
			in:   restrictedIn(t, enforceA, withControl(profiles.Privileged, profiles.ModeWarn)),
			conflicts: []cf{
				{"privileged", "containers[app]", warnA},
				{"allowPrivilegeEscalation", "containers[app]", warnA},
			},
			want:     map[string]any{ape: true, sc + ".privileged": true},
			warnings: []string{"cannot set false: the container is privileged"},
		},
		{
			name: "init, sidecar and ephemeral containers: false",
			pod:  `{"spec":{"initContainers":[{"name":"i"},{"name":"s","restartPolicy":"Always"}],"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"e"}]}}`,
			want: map[string]any{
				"spec.initContainers.0.securityContext.allowPrivilegeEscalation": false,
				"spec.initContainers.1.securityContext.allowPrivilegeEscalation": false,
				ape: false,
				"spec.ephemeralContainers.0.securityContext.allowPrivilegeEscalation": false,
			},
		},
		{
			name: "baseline sets it too",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			in:   Input{Profile: profile(t, "baseline")},
			want: map[string]any{sc: map[string]any{"allowPrivilegeEscalation": false}},
		},
		{
			name: "windows pod: not set",
			pod:  `{"spec":{"os":{"name":"windows"},"containers":[{"name":"app"}],"initContainers":[{"name":"i"}]}}`,
			want: map[string]any{sc: absent, "spec.initContainers.0.securityContext": absent},
		},
	})
}
