package mutate

import (
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestControlSeccompProfile(t *testing.T) {
	const psp = "spec.securityContext.seccompProfile"
	const c0 = "spec.containers.0.securityContext.seccompProfile"
	rd := map[string]any{"type": "RuntimeDefault"}
	ctlRun(t, []ctlCase{
		{
			name: "unset: pod RuntimeDefault",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			want: map[string]any{psp: rd, c0: absent},
		},
		{
			name: "null securityContext and null seccompProfile",
			pod:  `{"spec":{"securityContext":{"seccompProfile":null},"containers":[{"name":"app","securityContext":{"seccompProfile":null}}]}}`,
			want: map[string]any{psp: rd},
			ops:  []string{"add /spec/securityContext/seccompProfile"},
		},
		{
			name:  "pod Localhost kept",
			pod:   `{"spec":{"securityContext":{"seccompProfile":{"type":"Localhost","localhostProfile":"p.json"}},"containers":[{"name":"app"}]}}`,
			want:  map[string]any{psp: map[string]any{"type": "Localhost", "localhostProfile": "p.json"}},
			noOps: []string{"/spec/securityContext/seccompProfile"},
		},
		{
			name:  "every container sets one: no pod-level profile",
			pod:   `{"spec":{"initContainers":[{"name":"i","securityContext":{"seccompProfile":{"type":"RuntimeDefault"}}}],"containers":[{"name":"app","securityContext":{"seccompProfile":{"type":"Localhost","localhostProfile":"x"}}}]}}`,
			want:  map[string]any{psp: absent, c0 + ".type": "Localhost"},
			noOps: []string{"/spec/securityContext/seccompProfile"},
		},
		{
			name: "some containers set one: pod-level too",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"seccompProfile":{"type":"RuntimeDefault"}}},{"name":"b"}]}}`,
			want: map[string]any{psp: rd, "spec.containers.1.securityContext.seccompProfile": absent},
		},
		{
			name:      "pod Unconfined warn: kept",
			pod:       `{"spec":{"securityContext":{"seccompProfile":{"type":"Unconfined"}},"containers":[{"name":"app"}]}}`,
			conflicts: []cf{{"seccompProfile", "pod", warnA}},
			want:      map[string]any{psp + ".type": "Unconfined"},
			warnings:  []string{"spec.securityContext.seccompProfile.type=Unconfined kept but unsafe", `pod-hardener.io/exempt-controls: "seccompProfile"`},
		},
		{
			name:      "pod Unconfined enforce: RuntimeDefault",
			pod:       `{"spec":{"securityContext":{"seccompProfile":{"type":"Unconfined"}},"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"seccompProfile", "pod", enforceA}},
			lost:      []string{"/spec/securityContext/seccompProfile/type"},
			ops:       []string{"replace /spec/securityContext/seccompProfile/type"},
			want:      map[string]any{psp: rd},
		},
		{
			name: "container Unconfined enforce, in several containers",
			pod:  `{"spec":{"initContainers":[{"name":"i","securityContext":{"seccompProfile":{"type":"Unconfined"}}}],"containers":[{"name":"app","securityContext":{"seccompProfile":{"type":"Unconfined"}}}]}}`,
			in:   restrictedIn(t, enforceA),
			conflicts: []cf{
				{"seccompProfile", "initContainers[i]", enforceA},
				{"seccompProfile", "containers[app]", enforceA},
			},
			lost: []string{"/spec/initContainers/0/securityContext/seccompProfile/type", "/spec/containers/0/securityContext/seccompProfile/type"},
			want: map[string]any{c0: rd, "spec.initContainers.0.securityContext.seccompProfile": rd, psp: absent},
		},
		{
			name:      "container Unconfined warn: kept, pod gets RuntimeDefault for the others",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"seccompProfile":{"type":"Unconfined"}}},{"name":"b"}]}}`,
			conflicts: []cf{{"seccompProfile", "containers[app]", warnA}},
			want:      map[string]any{c0 + ".type": "Unconfined", psp: rd},
		},
		{
			name:      "container Unconfined deny",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"seccompProfile":{"type":"Unconfined"}}}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"seccompProfile", "containers[app]", denyA}},
			denied:    true,
			message:   []string{"containers[app]", "securityContext.seccompProfile.type=Unconfined", `exempt.pod-hardener.io/app: "seccompProfile"`},
		},
		{
			name:     "one container exempt: kept Unconfined, the other gets RuntimeDefault at container level",
			pod:      `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"seccompProfile"}},"spec":{"containers":[{"name":"app","securityContext":{"seccompProfile":{"type":"Unconfined"}}},{"name":"b"}]}}`,
			in:       Input{Profile: profile(t, "restricted", onConflict(enforceA)), Auth: authorized},
			want:     map[string]any{"spec.securityContext.seccompProfile": absent, "spec.containers.0.securityContext.seccompProfile.type": "Unconfined", "spec.containers.1.securityContext.seccompProfile.type": "RuntimeDefault"},
			noOps:    []string{"/spec/containers/0/securityContext/seccompProfile"},
			exempted: []string{"seccompProfile@app"},
			noPSS:    "one container is exempt",
		},
		{
			name:     "one container exempt without a profile: the pod's would cover it, so none at pod level",
			pod:      `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"seccompProfile"}},"spec":{"containers":[{"name":"app"},{"name":"b"}]}}`,
			in:       Input{Profile: profile(t, "restricted"), Auth: authorized},
			want:     map[string]any{"spec.securityContext.seccompProfile": absent, "spec.containers.0.securityContext.seccompProfile": absent, "spec.containers.1.securityContext.seccompProfile.type": "RuntimeDefault"},
			exempted: []string{"seccompProfile@app"},
			noPSS:    "one container is exempt",
		},
		{
			name:      "one container exempt, not authorized: hardened as any other",
			pod:       `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"seccompProfile"}},"spec":{"containers":[{"name":"app","securityContext":{"seccompProfile":{"type":"Unconfined"}}},{"name":"b"}]}}`,
			in:        Input{Profile: profile(t, "restricted", onConflict(enforceA)), Auth: profiles.Authorization{Why: "no"}},
			conflicts: []cf{{"seccompProfile", "containers[app]", enforceA}},
			lost:      []string{"/spec/containers/0/securityContext/seccompProfile/type"},
			want:      map[string]any{"spec.securityContext.seccompProfile.type": "RuntimeDefault", "spec.containers.0.securityContext.seccompProfile.type": "RuntimeDefault", "spec.containers.1.securityContext.seccompProfile": absent},
			warnings:  []string{"exemption annotations ignored: no"},
			ann:       map[string]any{AnnotationExempted: absent},
		},
		{
			name:     "one container exempt, pod RuntimeDefault already: nothing to do",
			pod:      `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"seccompProfile"}},"spec":{"securityContext":{"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"app"},{"name":"b"}]}}`,
			in:       Input{Profile: profile(t, "restricted"), Auth: authorized},
			noOps:    []string{"/spec/securityContext/seccompProfile", "/spec/containers/0/securityContext/seccompProfile", "/spec/containers/1/securityContext/seccompProfile"},
			exempted: []string{"seccompProfile@app"},
		},
		{
			name: "baseline sets it too",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			in:   Input{Profile: profile(t, "baseline")},
			want: map[string]any{"spec.securityContext": map[string]any{"seccompProfile": rd}},
		},
		{
			name: "windows pod: none",
			pod:  `{"spec":{"os":{"name":"windows"},"containers":[{"name":"app"}]}}`,
			in:   restrictedIn(t, enforceA),
			want: map[string]any{psp: absent, c0: absent},
		},
		{
			name: "EphemeralOnly, pod has none: container level on the new container",
			pod:  `{"spec":{"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"old"},{"name":"dbg","securityContext":{}}]}}`,
			in:   Input{Profile: profile(t, "restricted"), EphemeralOnly: map[string]bool{"dbg": true}},
			want: map[string]any{
				"spec.ephemeralContainers.1.securityContext.seccompProfile": rd,
				"spec.ephemeralContainers.0.securityContext":                absent,
				"spec.securityContext":                                      absent,
			},
		},
		{
			name: "EphemeralOnly, pod has one: nothing",
			pod:  `{"spec":{"securityContext":{"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:   Input{Profile: profile(t, "restricted"), EphemeralOnly: map[string]bool{"dbg": true}},
			want: map[string]any{"spec.ephemeralContainers.0.securityContext.seccompProfile": absent},
		},
		{
			name:      "EphemeralOnly: Unconfined on the new container enforced",
			pod:       `{"spec":{"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg","securityContext":{"seccompProfile":{"type":"Unconfined"}}}]}}`,
			in:        Input{Profile: profile(t, "restricted", onConflict(enforceA)), EphemeralOnly: map[string]bool{"dbg": true}},
			conflicts: []cf{{"seccompProfile", "ephemeralContainers[dbg]", enforceA}},
			lost:      []string{"/spec/ephemeralContainers/0/securityContext/seccompProfile/type"},
			want:      map[string]any{"spec.ephemeralContainers.0.securityContext.seccompProfile": rd},
		},
		{
			name:      "EphemeralOnly, pod Unconfined, warn: kept, named for the new container",
			pod:       `{"spec":{"securityContext":{"seccompProfile":{"type":"Unconfined"}},"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:        Input{Profile: profile(t, "restricted"), EphemeralOnly: map[string]bool{"dbg": true}},
			conflicts: []cf{{"seccompProfile", "ephemeralContainers[dbg]", warnA}},
			want:      map[string]any{"spec.ephemeralContainers.0.securityContext.seccompProfile": absent},
			warnings:  []string{"ephemeralContainers[dbg]: seccompProfile.type (inherited from spec.securityContext)=Unconfined kept but unsafe"},
		},
		{
			name:      "EphemeralOnly, pod Unconfined, enforce: RuntimeDefault on the new container",
			pod:       `{"spec":{"securityContext":{"seccompProfile":{"type":"Unconfined"}},"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"old"},{"name":"dbg"},{"name":"own","securityContext":{"seccompProfile":{"type":"Localhost","localhostProfile":"p.json"}}}]}}`,
			in:        Input{Profile: profile(t, "restricted", onConflict(enforceA)), EphemeralOnly: map[string]bool{"dbg": true, "own": true}},
			conflicts: []cf{{"seccompProfile", "ephemeralContainers[dbg]", enforceA}},
			want: map[string]any{
				"spec.ephemeralContainers.1.securityContext.seccompProfile": rd,
				"spec.ephemeralContainers.0.securityContext":                absent,
				"spec.ephemeralContainers.2.securityContext.seccompProfile": map[string]any{"type": "Localhost", "localhostProfile": "p.json"},
				"spec.securityContext.seccompProfile":                       map[string]any{"type": "Unconfined"},
			},
			noPSS: "the pod's own Unconfined is immutable on a running pod",
		},
		{
			name:      "EphemeralOnly, pod Unconfined, deny: the new container refused",
			pod:       `{"spec":{"securityContext":{"seccompProfile":{"type":"Unconfined"}},"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:        Input{Profile: profile(t, "restricted", onConflict(denyA)), EphemeralOnly: map[string]bool{"dbg": true}},
			conflicts: []cf{{"seccompProfile", "ephemeralContainers[dbg]", denyA}},
			denied:    true,
			message:   []string{"ephemeralContainers[dbg]", "Unconfined"},
		},
		{
			name:      "control mode deny with onConflict warn",
			pod:       `{"spec":{"securityContext":{"seccompProfile":{"type":"Unconfined"}},"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, warnA, withControl(profiles.SeccompProfile, profiles.ModeDeny)),
			conflicts: []cf{{"seccompProfile", "pod", denyA}},
			denied:    true,
			message:   []string{"spec.securityContext.seccompProfile.type=Unconfined"},
		},
	})
}
