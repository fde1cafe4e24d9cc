package mutate

import (
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestControlRunAsNonRoot(t *testing.T) {
	const psc = "spec.securityContext"
	const c0 = "spec.containers.0.securityContext"
	const c1 = "spec.containers.1.securityContext"
	ctlRun(t, []ctlCase{
		{
			name: "unset: pod runAsNonRoot true",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			want: map[string]any{psc + ".runAsNonRoot": true, c0 + ".runAsNonRoot": absent},
		},
		{
			name: "null pod securityContext and null field",
			pod:  `{"spec":{"securityContext":{"runAsNonRoot":null,"fsGroup":5},"containers":[{"name":"app"}]}}`,
			want: map[string]any{psc: map[string]any{"runAsNonRoot": true, "fsGroup": 5, "seccompProfile": map[string]any{"type": "RuntimeDefault"}}},
			ops:  []string{"add /spec/securityContext/runAsNonRoot"},
		},
		{
			name:  "pod true already: no operation",
			pod:   `{"spec":{"securityContext":{"runAsNonRoot":true},"containers":[{"name":"app"}]}}`,
			noOps: []string{"/spec/securityContext/runAsNonRoot", "/spec/containers/0/securityContext/runAsNonRoot"},
		},
		{
			name:  "non-root UIDs kept",
			pod:   `{"spec":{"securityContext":{"runAsUser":1000},"containers":[{"name":"app","securityContext":{"runAsUser":2000}}]}}`,
			want:  map[string]any{psc + ".runAsNonRoot": true, psc + ".runAsUser": 1000, c0 + ".runAsUser": 2000},
			noOps: []string{"/spec/securityContext/runAsUser", "/spec/containers/0/securityContext/runAsUser"},
		},
		{
			name:      "pod false warn: kept",
			pod:       `{"spec":{"securityContext":{"runAsNonRoot":false},"containers":[{"name":"app"}]}}`,
			conflicts: []cf{{"runAsNonRoot", "pod", warnA}},
			want:      map[string]any{psc + ".runAsNonRoot": false, c0 + ".runAsNonRoot": absent},
			warnings:  []string{"spec.securityContext.runAsNonRoot=false kept but unsafe", `pod-hardener.io/exempt-controls: "runAsNonRoot"`},
		},
		{
			name:      "pod false enforce: true",
			pod:       `{"spec":{"securityContext":{"runAsNonRoot":false},"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"runAsNonRoot", "pod", enforceA}},
			lost:      []string{"/spec/securityContext/runAsNonRoot"},
			ops:       []string{"replace /spec/securityContext/runAsNonRoot"},
			want:      map[string]any{psc + ".runAsNonRoot": true},
		},
		{
			name:      "pod runAsUser 0 enforce: 65532",
			pod:       `{"spec":{"securityContext":{"runAsUser":0},"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"runAsNonRoot", "pod", enforceA}},
			lost:      []string{"/spec/securityContext/runAsUser"},
			ops:       []string{"replace /spec/securityContext/runAsUser"},
			want:      map[string]any{psc + ".runAsUser": 65532, psc + ".runAsNonRoot": true},
		},
		{
			name:      "pod runAsUser 0 enforce: the profile's runAsUser",
			pod:       `{"spec":{"securityContext":{"runAsUser":0},"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, enforceA, func(p *profiles.Profile) { p.RunAsUser = i64(1001) }),
			conflicts: []cf{{"runAsNonRoot", "pod", enforceA}},
			lost:      []string{"/spec/securityContext/runAsUser"},
			want:      map[string]any{psc + ".runAsUser": 1001, psc + ".runAsNonRoot": true},
		},
		{
			name: "container runAsUser 0 in several containers enforce",
			pod:  `{"spec":{"initContainers":[{"name":"i","securityContext":{"runAsUser":0}}],"containers":[{"name":"app","securityContext":{"runAsUser":0}},{"name":"b"}]}}`,
			in:   restrictedIn(t, enforceA),
			conflicts: []cf{
				{"runAsNonRoot", "initContainers[i]", enforceA},
				{"runAsNonRoot", "containers[app]", enforceA},
			},
			lost: []string{"/spec/initContainers/0/securityContext/runAsUser", "/spec/containers/0/securityContext/runAsUser"},
			want: map[string]any{"spec.initContainers.0.securityContext.runAsUser": 65532, c0 + ".runAsUser": 65532, psc + ".runAsNonRoot": true},
		},
		{
			name:      "container runAsUser 0 warn: kept, pod field left unset, others get it",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"runAsUser":0}},{"name":"b"}],"ephemeralContainers":[{"name":"e","securityContext":{}}]}}`,
			conflicts: []cf{{"runAsNonRoot", "containers[app]", warnA}},
			want: map[string]any{
				c0 + ".runAsUser":     0,
				c0 + ".runAsNonRoot":  absent,
				psc + ".runAsNonRoot": absent,
				c1 + ".runAsNonRoot":  true,
				"spec.ephemeralContainers.0.securityContext.runAsNonRoot": true,
			},
			warnings: []string{"securityContext.runAsUser=0 kept but unsafe", "pod-level runAsNonRoot not set: 1 container(s) keep runAsUser: 0"},
		},
		{
			name:      "pod runAsUser 0 warn: nothing that would stop the pod",
			pod:       `{"spec":{"securityContext":{"runAsUser":0},"containers":[{"name":"app"},{"name":"b","securityContext":{"runAsUser":1000}}]}}`,
			conflicts: []cf{{"runAsNonRoot", "pod", warnA}},
			want: map[string]any{
				psc + ".runAsNonRoot": absent,
				c0 + ".runAsNonRoot":  absent,
				c1 + ".runAsNonRoot":  true,
			},
		},
		{
			name:      "container runAsNonRoot false enforce",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"runAsNonRoot":false}}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"runAsNonRoot", "containers[app]", enforceA}},
			lost:      []string{"/spec/containers/0/securityContext/runAsNonRoot"},
			want:      map[string]any{c0 + ".runAsNonRoot": true, psc + ".runAsNonRoot": true},
		},
		{
			name:      "container runAsNonRoot false deny",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"runAsNonRoot":false}}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"runAsNonRoot", "containers[app]", denyA}},
			denied:    true,
			message:   []string{"containers[app]", "securityContext.runAsNonRoot=false", `exempt.pod-hardener.io/app: "runAsNonRoot"`},
		},
		{
			name:      "pod runAsUser 0 deny",
			pod:       `{"metadata":{"generateName":"web-"},"spec":{"securityContext":{"runAsUser":0},"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"runAsNonRoot", "pod", denyA}},
			denied:    true,
			message:   []string{`"web-"`, "spec.securityContext.runAsUser=0", `pod-hardener.io/exempt-controls: "runAsNonRoot"`},
		},
		{
			name:     "one container exempt: kept as written, the other gets it at container level",
			pod:      `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"runAsNonRoot"}},"spec":{"containers":[{"name":"app","securityContext":{"runAsUser":0}},{"name":"b"}]}}`,
			in:       Input{Profile: profile(t, "restricted", onConflict(enforceA)), Auth: authorized},
			want:     map[string]any{psc + ".runAsNonRoot": absent, c0 + ".runAsUser": 0, c0 + ".runAsNonRoot": absent, c1 + ".runAsNonRoot": true},
			noOps:    []string{"/spec/containers/0/securityContext/runAsUser", "/spec/containers/0/securityContext/runAsNonRoot"},
			exempted: []string{"runAsNonRoot@app"},
			noPSS:    "one container is exempt",
		},
		{
			name:      "one container exempt, not authorized: hardened as any other",
			pod:       `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"runAsNonRoot"}},"spec":{"containers":[{"name":"app","securityContext":{"runAsUser":0}},{"name":"b"}]}}`,
			in:        Input{Profile: profile(t, "restricted", onConflict(enforceA)), Auth: profiles.Authorization{Why: "no"}},
			conflicts: []cf{{"runAsNonRoot", "containers[app]", enforceA}},
			lost:      []string{"/spec/containers/0/securityContext/runAsUser"},
			want:      map[string]any{psc + ".runAsNonRoot": true, c0 + ".runAsUser": 65532, c1 + ".runAsNonRoot": absent},
			warnings:  []string{"exemption annotations ignored: no"},
			ann:       map[string]any{AnnotationExempted: absent},
		},
		{
			name:     "one container exempt, pod already true: nothing to do",
			pod:      `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"runAsNonRoot"}},"spec":{"securityContext":{"runAsNonRoot":true},"containers":[{"name":"app"},{"name":"b"}]}}`,
			in:       Input{Profile: profile(t, "restricted"), Auth: authorized},
			noOps:    []string{"/spec/securityContext/runAsNonRoot", "/spec/containers/0/securityContext/runAsNonRoot", "/spec/containers/1/securityContext/runAsNonRoot"},
			exempted: []string{"runAsNonRoot@app"},
		},
		{
			name:      "one container exempt, pod runAsUser 0 enforce: the pod's field is the pod's conflict",
			pod:       `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"runAsNonRoot"}},"spec":{"securityContext":{"runAsUser":0},"containers":[{"name":"app"},{"name":"b"}]}}`,
			in:        Input{Profile: profile(t, "restricted", onConflict(enforceA)), Auth: authorized},
			conflicts: []cf{{"runAsNonRoot", "pod", enforceA}},
			lost:      []string{"/spec/securityContext/runAsUser"},
			want:      map[string]any{psc + ".runAsUser": 65532, psc + ".runAsNonRoot": absent, c0 + ".runAsNonRoot": absent, c1 + ".runAsNonRoot": true},
			exempted:  []string{"runAsNonRoot@app"},
			noPSS:     "one container is exempt",
		},
		{
			name: "hostUsers false: exempt as in PSS",
			pod:  `{"spec":{"hostUsers":false,"containers":[{"name":"app","securityContext":{"runAsUser":0}}]}}`,
			in:   restrictedIn(t, denyA),
			want: map[string]any{psc + ".runAsNonRoot": absent, c0 + ".runAsUser": 0},
		},
		{
			name: "windows pod: runAsNonRoot is allowed there and set",
			pod:  `{"spec":{"os":{"name":"windows"},"containers":[{"name":"app"}]}}`,
			want: map[string]any{psc: map[string]any{"runAsNonRoot": true}},
		},
		{
			name:     "windows HostProcess pod: left alone, said why",
			pod:      `{"spec":{"os":{"name":"windows"},"hostNetwork":true,"securityContext":{"windowsOptions":{"hostProcess":true,"runAsUserName":"NT AUTHORITY\\SYSTEM"}},"containers":[{"name":"app"}]}}`,
			in:       restrictedIn(t, warnA, withControl(profiles.HostNamespaces, profiles.ModeOff), withControl(profiles.WindowsHostProcess, profiles.ModeOff)),
			want:     map[string]any{psc + ".runAsNonRoot": absent},
			warnings: []string{"runAsNonRoot not set: Windows HostProcess pods run as a node account"},
			noPSS:    "HostProcess pods are privileged by design",
		},
		{
			name: "EphemeralOnly: container level on the new container only",
			pod:  `{"spec":{"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"old"},{"name":"dbg"}]}}`,
			in:   Input{Profile: profile(t, "restricted"), EphemeralOnly: map[string]bool{"dbg": true}},
			want: map[string]any{
				psc: absent,
				"spec.ephemeralContainers.1.securityContext.runAsNonRoot": true,
				"spec.ephemeralContainers.0.securityContext":              absent,
			},
		},
		{
			name: "EphemeralOnly: pod says true, nothing to add",
			pod:  `{"spec":{"securityContext":{"runAsNonRoot":true},"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:   Input{Profile: profile(t, "restricted"), EphemeralOnly: map[string]bool{"dbg": true}},
			want: map[string]any{"spec.ephemeralContainers.0.securityContext.runAsNonRoot": absent},
		},
		{
			name:      "EphemeralOnly: new root container enforced, pod conflicts ignored",
			pod:       `{"spec":{"securityContext":{"runAsNonRoot":false},"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg","securityContext":{"runAsUser":0}}]}}`,
			in:        Input{Profile: profile(t, "restricted", onConflict(enforceA)), EphemeralOnly: map[string]bool{"dbg": true}},
			conflicts: []cf{{"runAsNonRoot", "ephemeralContainers[dbg]", enforceA}},
			lost:      []string{"/spec/ephemeralContainers/0/securityContext/runAsUser"},
			want: map[string]any{
				psc + ".runAsNonRoot": false,
				"spec.ephemeralContainers.0.securityContext.runAsUser":    65532,
				"spec.ephemeralContainers.0.securityContext.runAsNonRoot": true,
			},
		},
		{
			name: "baseline leaves it alone",
			pod:  `{"spec":{"containers":[{"name":"app","securityContext":{"runAsUser":0}}]}}`,
			in:   Input{Profile: profile(t, "baseline", onConflict(denyA))},
			want: map[string]any{psc + ".runAsNonRoot": absent},
		},
	})
}
