package mutate

import (
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestControlAppArmorProfile(t *testing.T) {
	const psc = "spec.securityContext.appArmorProfile"
	const c0 = "spec.containers.0.securityContext.appArmorProfile"
	const annKey = "container.apparmor.security.beta.kubernetes.io/app"
	rd := map[string]any{"type": "RuntimeDefault"}
	ctlRun(t, []ctlCase{
		{
			name:  "unset stays unset",
			pod:   `{"spec":{"containers":[{"name":"app"}]}}`,
			want:  map[string]any{psc: absent, c0: absent},
			noOps: []string{"/spec/securityContext/appArmorProfile"},
		},
		{
			name:  "RuntimeDefault and Localhost kept",
			pod:   `{"metadata":{"annotations":{"container.apparmor.security.beta.kubernetes.io/app":"localhost/p"}},"spec":{"securityContext":{"appArmorProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"app","securityContext":{"appArmorProfile":{"type":"Localhost","localhostProfile":"p"}}}]}}`,
			want:  map[string]any{c0 + ".type": "Localhost", psc: rd},
			ann:   map[string]any{annKey: "localhost/p"},
			noOps: []string{"/spec/securityContext/appArmorProfile", "/spec/containers/0/securityContext/appArmorProfile", "/metadata/annotations/" + escape(annKey)},
		},
		{
			name:      "pod Unconfined warn: kept, named",
			pod:       `{"spec":{"securityContext":{"appArmorProfile":{"type":"Unconfined"}},"containers":[{"name":"app"}]}}`,
			conflicts: []cf{{"appArmorProfile", "pod", warnA}},
			want:      map[string]any{psc + ".type": "Unconfined"},
			warnings:  []string{"spec.securityContext.appArmorProfile.type=Unconfined kept but unsafe", `pod-hardener.io/exempt-controls: "appArmorProfile"`},
		},
		{
			name: "pod, container and annotation Unconfined enforce: RuntimeDefault everywhere",
			pod:  `{"metadata":{"annotations":{"container.apparmor.security.beta.kubernetes.io/app":"unconfined"}},"spec":{"securityContext":{"appArmorProfile":{"type":"Unconfined"}},"initContainers":[{"name":"i","securityContext":{"appArmorProfile":{"type":"Unconfined"}}}],"containers":[{"name":"app","securityContext":{"appArmorProfile":{"type":"Unconfined"}}}]}}`,
			in:   restrictedIn(t, enforceA),
			conflicts: []cf{
				{"appArmorProfile", "pod", enforceA},
				{"appArmorProfile", "initContainers[i]", enforceA},
				{"appArmorProfile", "containers[app]", enforceA},
				{"appArmorProfile", "pod", enforceA},
			},
			lost: []string{"/spec/securityContext/appArmorProfile/type", "/spec/initContainers/0/securityContext/appArmorProfile/type",
				"/spec/containers/0/securityContext/appArmorProfile/type", "/metadata/annotations/" + annKey},
			ops:  []string{"replace /spec/securityContext/appArmorProfile/type", "replace /metadata/annotations/" + escape(annKey)},
			want: map[string]any{psc: rd, c0: rd, "spec.initContainers.0.securityContext.appArmorProfile": rd},
			ann:  map[string]any{annKey: "runtime/default"},
		},
		{
			name:      "mixed values across containers: each judged on its own",
			pod:       `{"spec":{"containers":[{"name":"a","securityContext":{"appArmorProfile":{"type":"RuntimeDefault"}}},{"name":"b","securityContext":{"appArmorProfile":{"type":"Unconfined"}}},{"name":"c","securityContext":{"appArmorProfile":{"type":"RuntimeDefault"}}},{"name":"d","securityContext":{"appArmorProfile":{"type":"Unconfined"}}}]}}`,
			conflicts: []cf{{"appArmorProfile", "containers[b]", warnA}, {"appArmorProfile", "containers[d]", warnA}},
		},
		{
			name:      "annotation alone, warn: kept and named",
			pod:       `{"metadata":{"annotations":{"container.apparmor.security.beta.kubernetes.io/app":"unconfined"}},"spec":{"containers":[{"name":"app"}]}}`,
			conflicts: []cf{{"appArmorProfile", "pod", warnA}},
			ann:       map[string]any{annKey: "unconfined"},
			warnings:  []string{"metadata.annotations[" + annKey + "]=unconfined kept but unsafe"},
		},
		{
			name:      "container Unconfined deny",
			pod:       `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","securityContext":{"appArmorProfile":{"type":"Unconfined"}}}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"appArmorProfile", "containers[app]", denyA}},
			denied:    true,
			message:   []string{`pod "p"`, "containers[app]", "securityContext.appArmorProfile.type=Unconfined", `pod-hardener.io/exempt-controls: "appArmorProfile"`},
		},
		{
			name:      "baseline profile owns it too",
			pod:       `{"spec":{"securityContext":{"appArmorProfile":{"type":"Unconfined"}},"containers":[{"name":"app"}]}}`,
			in:        Input{Profile: profile(t, "baseline", onConflict(enforceA))},
			conflicts: []cf{{"appArmorProfile", "pod", enforceA}},
			lost:      []string{"/spec/securityContext/appArmorProfile/type"},
			want:      map[string]any{psc: rd},
		},
		{
			name:      "EphemeralOnly: only the new container",
			pod:       `{"metadata":{"annotations":{"container.apparmor.security.beta.kubernetes.io/app":"unconfined"}},"spec":{"securityContext":{"appArmorProfile":{"type":"Unconfined"}},"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg","securityContext":{"appArmorProfile":{"type":"Unconfined"}}}]}}`,
			in:        Input{Profile: profile(t, "restricted", onConflict(enforceA)), EphemeralOnly: map[string]bool{"dbg": true}},
			conflicts: []cf{{"appArmorProfile", "ephemeralContainers[dbg]", enforceA}},
			lost:      []string{"/spec/ephemeralContainers/0/securityContext/appArmorProfile/type"},
			want:      map[string]any{psc + ".type": "Unconfined", "spec.ephemeralContainers.0.securityContext.appArmorProfile": rd},
			noOps:     []string{"/metadata", "/spec/securityContext"},
		},
		{
			name:  "control off: nothing",
			pod:   `{"spec":{"securityContext":{"appArmorProfile":{"type":"Unconfined"}},"containers":[{"name":"app"}]}}`,
			in:    restrictedIn(t, enforceA, withControl(profiles.AppArmorProfile, profiles.ModeOff)),
			want:  map[string]any{psc + ".type": "Unconfined"},
			noPSS: "the control that owns the check is off",
			check: func(t *testing.T, r *Result, out []byte) {
				if !r.MayFail {
					t.Errorf("MayFail = false with the owning control off")
				}
			},
		},
	})
}
