package mutate

import (
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestControlRunAsUser(t *testing.T) {
	const psc = "spec.securityContext"
	ids := func(u, g, fs *int64) func(*profiles.Profile) {
		return func(p *profiles.Profile) {
			p.Controls[profiles.RunAsUser] = profiles.ModeDefault
			p.RunAsUser, p.RunAsGroup, p.FSGroup = u, g, fs
		}
	}
	all := restrictedIn(t, warnA, ids(i64(1000), i64(3000), i64(2000)))
	ctlRun(t, []ctlCase{
		{
			name: "off in restricted",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			in:   Input{Profile: profile(t, "restricted", func(p *profiles.Profile) { p.RunAsUser, p.FSGroup = i64(1000), i64(2000) })},
			want: map[string]any{psc + ".runAsUser": absent, psc + ".runAsGroup": absent, psc + ".fsGroup": absent},
		},
		{
			name: "on: every ID at pod level",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			in:   all,
			want: map[string]any{psc: map[string]any{"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "runAsNonRoot": true,
				"seccompProfile": map[string]any{"type": "RuntimeDefault"}}},
			warnings: []string{"set securityContext.runAsUser on pod", "set securityContext.fsGroup on pod"},
		},
		{
			name:  "IDs the pod sets are kept",
			pod:   `{"spec":{"securityContext":{"runAsUser":5000,"fsGroup":6000},"containers":[{"name":"app"}]}}`,
			in:    all,
			want:  map[string]any{psc + ".runAsUser": 5000, psc + ".runAsGroup": 3000, psc + ".fsGroup": 6000},
			ops:   []string{"add /spec/securityContext/runAsGroup"},
			noOps: []string{"/spec/securityContext/runAsUser", "/spec/securityContext/fsGroup"},
		},
		{
			name: "null IDs are unset",
			pod:  `{"spec":{"securityContext":{"runAsUser":null,"runAsGroup":null,"fsGroup":null},"containers":[{"name":"app"}]}}`,
			in:   all,
			want: map[string]any{psc + ".runAsUser": 1000, psc + ".runAsGroup": 3000, psc + ".fsGroup": 2000},
		},
		{
			name: "only the IDs the profile gives",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			in:   restrictedIn(t, warnA, ids(i64(1000), nil, nil)),
			want: map[string]any{psc + ".runAsUser": 1000, psc + ".runAsGroup": absent, psc + ".fsGroup": absent},
		},
		{
			name: "profile gives no ID: nothing",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			in:   restrictedIn(t, warnA, ids(nil, nil, nil)),
			want: map[string]any{psc + ".runAsUser": absent, psc + ".runAsGroup": absent, psc + ".fsGroup": absent},
		},
		{
			name:  "container values win and are left alone",
			pod:   `{"spec":{"containers":[{"name":"app","securityContext":{"runAsUser":7000,"runAsGroup":7001}}]}}`,
			in:    all,
			want:  map[string]any{psc + ".runAsUser": 1000, "spec.containers.0.securityContext.runAsUser": 7000, "spec.containers.0.securityContext.runAsGroup": 7001},
			noOps: []string{"/spec/containers/0/securityContext/runAsUser", "/spec/containers/0/securityContext/runAsGroup"},
		},
		{
			name:      "pod runAsUser 0 warn: kept (runAsNonRoot's conflict)",
			pod:       `{"spec":{"securityContext":{"runAsUser":0},"containers":[{"name":"app"}]}}`,
			in:        all,
			conflicts: []cf{{"runAsNonRoot", "pod", warnA}},
			want:      map[string]any{psc + ".runAsUser": 0, psc + ".runAsGroup": 3000},
		},
		{
			name:      "pod runAsUser 0 enforce: the profile's UID",
			pod:       `{"spec":{"securityContext":{"runAsUser":0},"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, enforceA, ids(i64(1000), i64(3000), i64(2000))),
			conflicts: []cf{{"runAsNonRoot", "pod", enforceA}},
			lost:      []string{"/spec/securityContext/runAsUser"},
			want:      map[string]any{psc + ".runAsUser": 1000, psc + ".runAsGroup": 3000, psc + ".runAsNonRoot": true},
		},
		{
			name: "windows pod: no runAsUser, runAsGroup or fsGroup",
			pod:  `{"spec":{"os":{"name":"windows"},"containers":[{"name":"app"}]}}`,
			in:   all,
			want: map[string]any{psc: map[string]any{"runAsNonRoot": true}},
		},
		{
			name: "EphemeralOnly: pod level is immutable, nothing",
			pod:  `{"spec":{"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:   Input{Profile: all.Profile, EphemeralOnly: map[string]bool{"dbg": true}},
			want: map[string]any{psc: absent},
		},
		{
			name:     "exempt: nothing set",
			pod:      `{"metadata":{"annotations":{"pod-hardener.io/exempt-controls":"runAsUser"}},"spec":{"containers":[{"name":"app"}]}}`,
			in:       Input{Profile: all.Profile, Auth: authorized},
			want:     map[string]any{psc + ".runAsUser": absent, psc + ".fsGroup": absent, psc + ".runAsNonRoot": true},
			ann:      map[string]any{AnnotationExempted: "runAsUser@pod"},
			exempted: []string{"runAsUser@pod"},
		},
	})
}
