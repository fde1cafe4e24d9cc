package mutate

import (
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestControlAutomountServiceAccountToken(t *testing.T) {
	const f = "spec.automountServiceAccountToken"
	on := withControl(profiles.AutomountServiceAccountToken, profiles.ModeDefault)
	ctlRun(t, []ctlCase{
		{
			name:  "off in restricted",
			pod:   `{"spec":{"containers":[{"name":"app"}]}}`,
			want:  map[string]any{f: absent},
			noOps: []string{"/spec/automountServiceAccountToken"},
		},
		{
			name:     "on: false where unset",
			pod:      `{"spec":{"containers":[{"name":"app"}]}}`,
			in:       restrictedIn(t, warnA, on),
			want:     map[string]any{f: false},
			ops:      []string{"add /spec/automountServiceAccountToken"},
			warnings: []string{"set automountServiceAccountToken=false on pod"},
		},
		{
			name: "null is unset",
			pod:  `{"spec":{"automountServiceAccountToken":null,"containers":[{"name":"app"}]}}`,
			in:   restrictedIn(t, warnA, on),
			want: map[string]any{f: false},
		},
		{
			name:  "explicit false: no operation",
			pod:   `{"spec":{"automountServiceAccountToken":false,"containers":[{"name":"app"}]}}`,
			in:    restrictedIn(t, warnA, on),
			want:  map[string]any{f: false},
			noOps: []string{"/spec/automountServiceAccountToken"},
		},
		{
			name:      "explicit true warn: kept",
			pod:       `{"spec":{"automountServiceAccountToken":true,"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, warnA, on),
			conflicts: []cf{{"automountServiceAccountToken", "pod", warnA}},
			want:      map[string]any{f: true},
			warnings:  []string{"spec.automountServiceAccountToken=true kept but unsafe"},
			noPSS:     "PSS does not judge this field; the conflict is only a warning",
		},
		{
			name:      "explicit true enforce: false",
			pod:       `{"spec":{"automountServiceAccountToken":true,"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, enforceA, on),
			conflicts: []cf{{"automountServiceAccountToken", "pod", enforceA}},
			lost:      []string{"/spec/automountServiceAccountToken"},
			ops:       []string{"replace /spec/automountServiceAccountToken"},
			want:      map[string]any{f: false},
		},
		{
			name:      "explicit true deny",
			pod:       `{"spec":{"automountServiceAccountToken":true,"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, denyA, on),
			conflicts: []cf{{"automountServiceAccountToken", "pod", denyA}},
			denied:    true,
			message:   []string{"spec.automountServiceAccountToken=true", `pod-hardener.io/exempt-controls: "automountServiceAccountToken"`},
		},
		{
			name: "windows pod: not Linux-only, set",
			pod:  `{"spec":{"os":{"name":"windows"},"containers":[{"name":"app"}]}}`,
			in:   restrictedIn(t, warnA, on),
			want: map[string]any{f: false},
		},
		{
			name:  "EphemeralOnly: nothing",
			pod:   `{"spec":{"automountServiceAccountToken":true,"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:    Input{Profile: profile(t, "restricted", onConflict(denyA), on), EphemeralOnly: map[string]bool{"dbg": true}},
			want:  map[string]any{f: true},
			noOps: []string{"/spec/automountServiceAccountToken"},
		},
		{
			name:     "exempt (authorized): nothing",
			pod:      `{"metadata":{"annotations":{"pod-hardener.io/exempt-controls":"automountServiceAccountToken"}},"spec":{"automountServiceAccountToken":true,"containers":[{"name":"app"}]}}`,
			in:       Input{Profile: profile(t, "restricted", onConflict(denyA), on), Auth: authorized},
			want:     map[string]any{f: true},
			ann:      map[string]any{AnnotationExempted: "automountServiceAccountToken@pod"},
			exempted: []string{"automountServiceAccountToken@pod"},
		},
	})
}
