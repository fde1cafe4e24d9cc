package mutate

import (
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestControlPrivileged(t *testing.T) {
	const sc = "spec.containers.0.securityContext"
	ctlRun(t, []ctlCase{
		{
			name: "unset stays unset",
			pod:  `{"spec":{"containers":[{"name":"app","image":"x"}]}}`,
			want: map[string]any{sc + ".privileged": absent, sc + ".allowPrivilegeEscalation": false},
		},
		{
			name: "null securityContext is unset",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":null}]}}`,
			want: map[string]any{sc + ".privileged": absent, sc + ".allowPrivilegeEscalation": false},
		},
		{
			name:  "explicit false kept without an operation",
			pod:   `{"spec":{"containers":[{"name":"app","securityContext":{"privileged":false}}]}}`,
			want:  map[string]any{sc + ".privileged": false},
			noOps: []string{"/spec/containers/0/securityContext/privileged"},
		},
		{
			name:      "true warn: kept, warned, escalation left unset",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`,
			conflicts: []cf{{"privileged", "containers[app]", warnA}},
			want:      map[string]any{sc + ".privileged": true, sc + ".allowPrivilegeEscalation": absent, sc + ".capabilities.drop": []string{"ALL"}},
			warnings:  []string{"securityContext.privileged=true kept but unsafe", `exempt.pod-hardener.io/app: "privileged"`, "allowPrivilegeEscalation left unset: the container is privileged"},
		},
		{
			name:      "true enforce: replaced by false",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"privileged", "containers[app]", enforceA}},
			lost:      []string{"/spec/containers/0/securityContext/privileged"},
			ops:       []string{"replace /spec/containers/0/securityContext/privileged"},
			want:      map[string]any{sc + ".privileged": false, sc + ".allowPrivilegeEscalation": false},
			warnings:  []string{"securityContext.privileged=true replaced by a safe value"},
		},
		{
			name:      "true deny: message names container, field and annotation",
			pod:       `{"metadata":{"name":"web"},"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"privileged", "containers[app]", denyA}},
			denied:    true,
			message:   []string{`pod "web"`, "containers[app]", "securityContext.privileged=true", `exempt.pod-hardener.io/app: "privileged"`},
		},
		{
			name:      "init container enforce",
			pod:       `{"spec":{"initContainers":[{"name":"init","securityContext":{"privileged":true}}],"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"privileged", "initContainers[init]", enforceA}},
			lost:      []string{"/spec/initContainers/0/securityContext/privileged"},
			want:      map[string]any{"spec.initContainers.0.securityContext.privileged": false},
		},
		{
			name:      "native sidecar warn",
			pod:       `{"spec":{"initContainers":[{"name":"side","restartPolicy":"Always","securityContext":{"privileged":true}}],"containers":[{"name":"app"}]}}`,
			conflicts: []cf{{"privileged", "initContainers[side]", warnA}},
			want: map[string]any{
				"spec.initContainers.0.securityContext.privileged":               true,
				"spec.initContainers.0.securityContext.allowPrivilegeEscalation": absent,
				sc + ".allowPrivilegeEscalation":                                 false,
			},
		},
		{
			name:      "ephemeral container enforce",
			pod:       `{"spec":{"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg","securityContext":{"privileged":true}}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"privileged", "ephemeralContainers[dbg]", enforceA}},
			lost:      []string{"/spec/ephemeralContainers/0/securityContext/privileged"},
			want:      map[string]any{"spec.ephemeralContainers.0.securityContext.privileged": false},
		},
		{
			name:      "EphemeralOnly: only the new ephemeral container",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}],"ephemeralContainers":[{"name":"old","securityContext":{"privileged":true}},{"name":"dbg","securityContext":{"privileged":true}}]}}`,
			in:        Input{Profile: profile(t, "restricted", onConflict(enforceA)), EphemeralOnly: map[string]bool{"dbg": true}},
			conflicts: []cf{{"privileged", "ephemeralContainers[dbg]", enforceA}},
			lost:      []string{"/spec/ephemeralContainers/1/securityContext/privileged"},
			want: map[string]any{
				"spec.ephemeralContainers.1.securityContext.privileged": false,
				"spec.ephemeralContainers.0.securityContext.privileged": true,
				sc + ".privileged": true,
				"metadata":         absent,
			},
		},
		{
			name:      "control mode enforce overrides onConflict warn",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`,
			in:        restrictedIn(t, warnA, withControl(profiles.Privileged, profiles.ModeEnforce)),
			conflicts: []cf{{"privileged", "containers[app]", enforceA}},
			lost:      []string{"/spec/containers/0/securityContext/privileged"},
			want:      map[string]any{sc + ".privileged": false},
		},
		{
			name:      "control mode deny overrides onConflict enforce",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`,
			in:        restrictedIn(t, enforceA, withControl(profiles.Privileged, profiles.ModeDeny)),
			conflicts: []cf{{"privileged", "containers[app]", denyA}},
			denied:    true,
			message:   []string{"containers[app]", "securityContext.privileged=true"},
		},
		{
			name:      "baseline enforce",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`,
			in:        Input{Profile: profile(t, "baseline", onConflict(enforceA))},
			conflicts: []cf{{"privileged", "containers[app]", enforceA}},
			lost:      []string{"/spec/containers/0/securityContext/privileged"},
			want:      map[string]any{sc + ".privileged": false},
			ann:       map[string]any{AnnotationHardened: "baseline"},
		},
		{
			name:    "privileged profile touches nothing",
			pod:     `{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`,
			in:      Input{Profile: profile(t, "privileged", onConflict(denyA))},
			want:    map[string]any{sc: map[string]any{"privileged": true}, "spec.securityContext": absent},
			ann:     map[string]any{AnnotationHardened: "privileged"},
			onlyOps: []string{"/metadata"},
		},
		{
			name: "windows pod: no privileged field",
			pod:  `{"spec":{"os":{"name":"windows"},"containers":[{"name":"app"}]}}`,
			in:   restrictedIn(t, enforceA),
			want: map[string]any{sc: absent},
		},
	})
}
