package mutate

import (
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestControlHostNamespaces(t *testing.T) {
	ctlRun(t, []ctlCase{
		{
			name:  "unset stays unset",
			pod:   `{"spec":{"containers":[{"name":"app"}]}}`,
			want:  map[string]any{"spec.hostNetwork": absent, "spec.hostPID": absent, "spec.hostIPC": absent},
			noOps: []string{"/spec/hostNetwork", "/spec/hostPID", "/spec/hostIPC"},
		},
		{
			name:  "explicit false and null kept",
			pod:   `{"spec":{"hostNetwork":false,"hostPID":null,"hostIPC":false,"containers":[{"name":"app"}]}}`,
			want:  map[string]any{"spec.hostNetwork": false, "spec.hostIPC": false},
			noOps: []string{"/spec/hostNetwork", "/spec/hostPID", "/spec/hostIPC"},
		},
		{
			name:      "hostNetwork true warn: kept",
			pod:       `{"spec":{"hostNetwork":true,"containers":[{"name":"app"}]}}`,
			conflicts: []cf{{"hostNamespaces", "pod", warnA}},
			want:      map[string]any{"spec.hostNetwork": true},
			warnings:  []string{"spec.hostNetwork=true kept but unsafe", `pod-hardener.io/exempt-controls: "hostNamespaces"`},
		},
		{
			name: "all three true enforce: false",
			pod:  `{"spec":{"hostNetwork":true,"hostPID":true,"hostIPC":true,"containers":[{"name":"app"}]}}`,
			in:   restrictedIn(t, enforceA),
			conflicts: []cf{
				{"hostNamespaces", "pod", enforceA},
				{"hostNamespaces", "pod", enforceA},
				{"hostNamespaces", "pod", enforceA},
			},
			lost: []string{"/spec/hostNetwork", "/spec/hostPID", "/spec/hostIPC"},
			ops:  []string{"replace /spec/hostNetwork", "replace /spec/hostPID", "replace /spec/hostIPC"},
			want: map[string]any{"spec.hostNetwork": false, "spec.hostPID": false, "spec.hostIPC": false},
		},
		{
			name:      "hostPID true deny",
			pod:       `{"metadata":{"name":"p"},"spec":{"hostPID":true,"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"hostNamespaces", "pod", denyA}},
			denied:    true,
			message:   []string{`pod "p"`, "spec.hostPID=true", `pod-hardener.io/exempt-controls: "hostNamespaces"`},
		},
		{
			name:      "baseline enforce",
			pod:       `{"spec":{"hostIPC":true,"containers":[{"name":"app"}]}}`,
			in:        Input{Profile: profile(t, "baseline", onConflict(enforceA))},
			conflicts: []cf{{"hostNamespaces", "pod", enforceA}},
			lost:      []string{"/spec/hostIPC"},
			want:      map[string]any{"spec.hostIPC": false},
		},
		{
			name:      "control mode enforce with onConflict deny",
			pod:       `{"spec":{"hostNetwork":true,"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, denyA, withControl(profiles.HostNamespaces, profiles.ModeEnforce)),
			conflicts: []cf{{"hostNamespaces", "pod", enforceA}},
			lost:      []string{"/spec/hostNetwork"},
			want:      map[string]any{"spec.hostNetwork": false},
		},
		{
			name:      "windows HostProcess: hostNetwork must stay true",
			pod:       `{"spec":{"os":{"name":"windows"},"hostNetwork":true,"securityContext":{"windowsOptions":{"hostProcess":true}},"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"hostNamespaces", "pod", warnA}, {"windowsHostProcess", "pod", warnA}},
			want:      map[string]any{"spec.hostNetwork": true},
			warnings:  []string{"Windows HostProcess pods must use the host network"},
			noPSS:     "HostProcess pods are privileged by design",
		},
		{
			name:  "EphemeralOnly: pod fields are immutable, no conflict",
			pod:   `{"spec":{"hostNetwork":true,"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:    Input{Profile: profile(t, "restricted", onConflict(denyA)), EphemeralOnly: map[string]bool{"dbg": true}},
			want:  map[string]any{"spec.hostNetwork": true},
			noOps: []string{"/spec/hostNetwork"},
		},
	})
}
