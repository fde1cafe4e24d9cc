package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// reportConfig: a report profile, one extending it that denies conflicts,
// and the built-in restricted as the default.
const reportConfig = `
profiles:
- name: watch
  mode: report
- name: watch-deny
  extends: watch
  onConflict: deny
`

// TestHandlerReportMode sends real AdmissionReviews through the handler: in
// report mode the answer is allowed with no patch, and its warnings and
// audit annotations say exactly what harden mode patches for the same pod.
func TestHandlerReportMode(t *testing.T) {
	cfg, err := profiles.Parse([]byte(reportConfig))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, cfg)
	e.ns.labels["trial"] = map[string]string{profiles.LabelMode: "report"}
	e.ns.labels["watched"] = map[string]string{profiles.LabelProfile: "watch-deny"}
	e.ns.labels["switched"] = map[string]string{profiles.LabelProfile: "watch", profiles.LabelMode: "harden"}
	pod := `{"metadata":{"name":"web","annotations":{"pod-hardener.io/writable-paths":"/cache"}},"spec":{"containers":[{"name":"app","image":"nginx"},{"name":"side","image":"envoy"}]}}`

	_, hardened := e.send(t, review{ns: "hardening", obj: pod}.JSON())
	_, reported := e.send(t, review{ns: "trial", obj: pod}.JSON())
	if len(hardened.Patch) == 0 {
		t.Fatal("harden mode produced no patch: the pod proves nothing")
	}
	if !reported.Allowed || len(reported.Patch) != 0 || reported.PatchType != nil {
		t.Fatalf("report mode: allowed %v, patch %s", reported.Allowed, reported.Patch)
	}
	// Every field harden mode sets, report mode says it would set, and
	// nothing else.
	var sets, wouldSets []string
	for _, w := range hardened.Warnings {
		if _, f, ok := strings.Cut(w, "hardened (profile restricted): set "); ok {
			sets = append(sets, f)
		}
	}
	for _, w := range reported.Warnings {
		if strings.Contains(w, "hardened (profile") {
			t.Errorf("report mode claims to have hardened: %q", w)
		}
		if _, f, ok := strings.Cut(w, "report mode (profile restricted): would set "); ok {
			wouldSets = append(wouldSets, f)
		}
	}
	if len(sets) == 0 || strings.Join(sets, "\n") != strings.Join(wouldSets, "\n") {
		t.Errorf("harden mode set:\n  %s\nreport mode would set:\n  %s", strings.Join(sets, "\n  "), strings.Join(wouldSets, "\n  "))
	}
	if !strings.Contains(strings.Join(reported.Warnings, "\n"), "report mode (namespace label pod-hardener.io/mode): admitted unchanged") {
		t.Errorf("warnings do not say report mode is in force: %q", reported.Warnings)
	}
	a := reported.AuditAnnotations
	if a["mode"] != "report" || a["profile"] != "restricted" || !strings.Contains(a["would-change"], profiles.ReadOnlyRootFilesystem) ||
		!strings.Contains(a["would-change"], profiles.Capabilities) {
		t.Errorf("audit annotations %v", a)
	}
	if _, ok := hardened.AuditAnnotations["mode"]; ok {
		t.Errorf("harden mode annotated as report: %v", hardened.AuditAnnotations)
	}

	// A conflict the profile denies: still admitted, unchanged, with the
	// refusal it would make.
	priv := `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`
	_, resp := e.send(t, review{ns: "watched", obj: priv}.JSON())
	if !resp.Allowed || len(resp.Patch) != 0 {
		t.Fatalf("report mode refused or patched a denied conflict: allowed %v, patch %s", resp.Allowed, resp.Patch)
	}
	if w := strings.Join(resp.Warnings, "\n"); !strings.Contains(w, "hardening would refuse this pod") || !strings.Contains(w, "securityContext.privileged=true") {
		t.Errorf("warnings do not say the pod would be refused: %q", resp.Warnings)
	}
	if resp.AuditAnnotations["would-deny"] != "true" || !strings.Contains(resp.AuditAnnotations["conflicts"], "privileged@containers[app]:deny") {
		t.Errorf("audit annotations %v", resp.AuditAnnotations)
	}

	// The namespace label switches a report profile back to hardening.
	_, resp = e.send(t, review{ns: "switched", obj: pod}.JSON())
	if len(resp.Patch) == 0 || resp.AuditAnnotations["profile"] != "watch" {
		t.Errorf("namespace label mode=harden did not harden: %v", resp.AuditAnnotations)
	}

	// The same metrics, with report mode's own outcomes; fields it would
	// set are not counted as patched.
	for result, want := range map[string]float64{"hardened": 2, "would-harden": 1, "would-deny": 1} {
		if v := testutil.ToFloat64(e.metrics.Reviews.WithLabelValues("CREATE", result)); v != want {
			t.Errorf("reviews{result=%q} = %v, want %v", result, v, want)
		}
	}
	if v := testutil.ToFloat64(e.metrics.WouldPatch.WithLabelValues("restricted", profiles.ReadOnlyRootFilesystem)); v == 0 {
		t.Error("report changes not counted")
	}
	patched := testutil.ToFloat64(e.metrics.Patches.WithLabelValues("restricted", profiles.ReadOnlyRootFilesystem))
	if would := testutil.ToFloat64(e.metrics.WouldPatch.WithLabelValues("restricted", profiles.ReadOnlyRootFilesystem)); patched != would {
		t.Errorf("the same pod: %v fields patched in harden mode, %v counted as would-change in report mode", patched, would)
	}
}

// FuzzReportModeNeverPatchesOrRejects fuzzes the pod in a valid review to
// a namespace in report mode under a profile that denies every conflict
// and unauthorized exemption: the answer admits every pod it can read, with
// no patch; only a pod the engine cannot read is refused, as in harden mode.
func FuzzReportModeNeverPatchesOrRejects(f *testing.F) {
	for _, s := range []string{
		futurePod,
		`{"metadata":{"name":"p","annotations":{"pod-hardener.io/exempt":"true","pod-hardener.io/writable-paths":"/a,../b"}},"spec":{"containers":[{"name":"x","securityContext":{"privileged":true,"runAsUser":0,"capabilities":{"add":["SYS_ADMIN"]}}}],"hostNetwork":true}}`,
		`{"spec":{"os":{"name":"windows"},"securityContext":{"windowsOptions":{"hostProcess":true}},"containers":[{"name":"w"}]}}`,
		`{"spec":{"containers":[{"name":"a","securityContext":null,"volumeMounts":null}],"volumes":[{"name":"h","hostPath":{"path":"/"}}]}}`,
		`{"spec":{"containers":"x"}}`, `{}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	cfg, err := profiles.Parse([]byte("defaultProfile: watch\nprofiles: [{name: watch, mode: report, onConflict: deny}]\nexemptions: {onUnauthorized: deny}\n"))
	if err != nil {
		f.Fatal(err)
	}
	e := newEnv(f, cfg)
	f.Fuzz(func(t *testing.T, obj []byte, ephemeral bool) {
		if !json.Valid(obj) {
			return
		}
		r := review{obj: string(obj)}
		if ephemeral {
			r.op, r.subresource, r.old = "UPDATE", "ephemeralcontainers", `{"spec":{"containers":[{"name":"a"}]}}`
		}
		w, resp := e.send(t, r.JSON())
		if resp == nil {
			t.Fatalf("status %d for object %s: %s", w.Code, obj, w.Body)
		}
		if len(resp.Patch) != 0 {
			t.Fatalf("report mode patched %s: %s", obj, resp.Patch)
		}
		if !resp.Allowed && !strings.Contains(resp.Result.Message, "cannot read this object") {
			t.Fatalf("report mode rejected %s: %s", obj, resp.Result.Message)
		}
	})
}
