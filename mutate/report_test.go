package mutate

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// TestReportModeChangesNothingAndKnowsEverything: for each pod, report mode
// yields no operation and no rejection, and the same changes, conflicts,
// exemptions and verdict as harden mode.
func TestReportModeChangesNothingAndKnowsEverything(t *testing.T) {
	notAuth := profiles.Authorization{Why: "not allowed here"}
	cases := []struct {
		name string
		raw  string
		in   Input
	}{
		{"plain", `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app"},{"name":"b"}]}}`, Input{}},
		{"denied conflict", `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`,
			Input{Profile: profile(t, "restricted", onConflict(profiles.ActionDeny))}},
		{"enforced conflict", `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","securityContext":{"runAsUser":0}}]}}`,
			Input{Profile: profile(t, "restricted", onConflict(profiles.ActionEnforce))}},
		{"unauthorized exemption denied", `{"metadata":{"name":"p","annotations":{"pod-hardener.io/exempt":"true"}},"spec":{"containers":[{"name":"app"}]}}`,
			Input{Auth: notAuth, OnUnauthorized: profiles.ActionDeny}},
		{"spoofed audit annotation", `{"metadata":{"name":"p","annotations":{"pod-hardener.io/exempted":"*"}},"spec":{"containers":[{"name":"app"}]}}`, Input{}},
		{"image facts: root assigned, port, VOLUME", onePod(imgApp, "", ""),
			withImages(Input{}, facts(imgApp, "", exposes(80), volumes("/data")), facts(imgNode, "node", ids(1000, 1000)))},
		{"image facts: root denied", onePod(imgApp, "", ""),
			withImages(Input{Profile: profile(t, "restricted", func(p *profiles.Profile) { p.RootImages = profiles.RootImagesDeny })}, facts(imgApp, ""))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := harden(t, tc.raw, tc.in)
			in := tc.in
			in.Report = true
			r := harden(t, tc.raw, in)
			if len(r.Operations) != 0 || r.Denied || !r.Report {
				t.Fatalf("report mode: %d operations, denied %v, report %v", len(r.Operations), r.Denied, r.Report)
			}
			if len(h.Operations) == 0 && !h.Denied {
				t.Fatal("harden mode did nothing: the case proves nothing")
			}
			if r.WouldDeny != h.Denied || r.Message != h.Message {
				t.Errorf("would deny %v (%q), harden mode denied %v (%q)", r.WouldDeny, r.Message, h.Denied, h.Message)
			}
			if !reflect.DeepEqual(r.Changes, h.Changes) || !reflect.DeepEqual(r.Conflicts, h.Conflicts) || !reflect.DeepEqual(r.Exempted, h.Exempted) {
				t.Errorf("report mode saw\n %+v %+v %v\nharden mode\n %+v %+v %v", r.Changes, r.Conflicts, r.Exempted, h.Changes, h.Conflicts, h.Exempted)
			}
			if !reflect.DeepEqual(r.reportOps, h.Operations) {
				t.Errorf("the operations report mode would make differ from harden mode's")
			}
			w := strings.Join(r.Warnings, "\n")
			for _, line := range r.Warnings {
				changed := strings.Contains(line, "hardened (profile") || strings.Contains(line, " set ") ||
					strings.Contains(line, "replaced by") || strings.Contains(line, " removed: ")
				if changed && !strings.Contains(line, "would") {
					t.Errorf("a report mode warning says it changed something: %q", line)
				}
			}
			if h.Denied && !strings.Contains(w, "hardening would refuse this pod: "+h.Message) {
				t.Errorf("warnings do not say the pod would be refused:\n%s", w)
			}
		})
	}
}

// TestReportModeJudgesThePodHardeningWouldMake: the Pod Security Standards
// verdict in report mode is the one harden mode gives, said as "would".
func TestReportModeJudgesThePodHardeningWouldMake(t *testing.T) {
	cfg, err := profiles.Parse([]byte("profiles: [{name: loose, mode: report, controls: {seccompProfile: off}}]\ndefaultProfile: loose\n"))
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(`{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app"}]}}`)
	f := profiles.Facts{Namespace: "a", NamespaceKnown: true}
	r, err := Review(context.Background(), cfg, raw, f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := Review(context.Background(), cfg, raw, f, Options{HardenReportMode: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Report || h.Report || h.Mode != profiles.RolloutReport || len(h.Operations) == 0 {
		t.Fatalf("report %v/%v, mode %q, %d operations in harden mode", r.Report, h.Report, h.Mode, len(h.Operations))
	}
	if len(h.Failures) == 0 || !reflect.DeepEqual(r.Failures, h.Failures) {
		t.Errorf("failures in report mode %v, harden mode %v", r.Failures, h.Failures)
	}
	if w := strings.Join(r.Warnings, "\n"); !strings.Contains(w, "would still fail Pod Security Standards restricted check seccompProfile_restricted") ||
		!strings.Contains(w, `report mode (profile loose): admitted unchanged; what profile "loose" would do follows`) {
		t.Errorf("warnings:\n%s", w)
	}
}
