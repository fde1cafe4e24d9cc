package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/pod-hardener/pod-hardener/internal/audit"
)

// withFakeCluster points `audit` at a fake clientset for one test.
func withFakeCluster(t *testing.T, objs ...*corev1.Pod) *dynamicfake.FakeDynamicClient {
	t.Helper()
	cs := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-x", Labels: map[string]string{"pod-hardener.io/allow-exemptions": "true"}}},
	)
	for _, p := range objs {
		if err := cs.Tracker().Add(p); err != nil {
			t.Fatal(err)
		}
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{audit.PolicyReportResource: "PolicyReportList"})
	old := auditClient
	auditClient = func(string, string, float32, int) (kubernetes.Interface, dynamic.Interface, error) {
		return cs, dyn, nil
	}
	t.Cleanup(func() { auditClient = old })
	return dyn
}

func auditPod(ns, name string, ann map[string]string, sc *corev1.SecurityContext) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: ann},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx", SecurityContext: sc}}},
	}
}

func noConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte("defaultProfile: restricted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuditFailOnExitCodes(t *testing.T) {
	yes := true
	withFakeCluster(t,
		auditPod("apps", "plain", nil, nil),
		auditPod("apps", "priv", nil, &corev1.SecurityContext{Privileged: &yes}),
		auditPod("team-x", "exempt", map[string]string{"pod-hardener.io/exempt": "true"}, nil),
	)
	cfg := noConfig(t)
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{nil, ExitOK, ""},
		{[]string{"--fail-on", "would-change"}, ExitFindings, "--fail-on: 1 would-change workload(s)"},
		{[]string{"--fail-on", "conflict,exempt"}, ExitFindings, "--fail-on: 1 exempt, 1 conflict workload(s)"},
		{[]string{"--fail-on", "hardened"}, ExitOK, ""},
		{[]string{"-n", "team-x", "--fail-on", "would-change,conflict"}, ExitOK, ""},
		{[]string{"--fail-on", "bogus"}, ExitInvalid, `--fail-on "bogus"`},
		{[]string{"-o", "xml"}, ExitInvalid, `-o "xml"`},
		{[]string{"-n", "missing"}, ExitInvalid, "reading namespace missing"},
	} {
		args := append([]string{"audit", "--config", cfg}, c.args...)
		out, errs, code := runCLI(t, "", args...)
		if code != c.code || (c.err != "" && !strings.Contains(errs, c.err)) {
			t.Errorf("%v: exit %d, want %d; stderr %q", c.args, code, c.code, errs)
		}
		if code != ExitInvalid && !strings.HasPrefix(out, "NAMESPACE") {
			t.Errorf("%v: no table:\n%s", c.args, out)
		}
		if strings.Contains(errs, "\r") || strings.Contains(out, "\x1b[") {
			t.Errorf("%v: progress or colour without a terminal", c.args)
		}
	}
}

func TestAuditOutputs(t *testing.T) {
	withFakeCluster(t, auditPod("apps", "plain", nil, nil))
	cfg := noConfig(t)
	out, errs, code := runCLI(t, "", "audit", "--config", cfg, "-o", "json")
	var r audit.Report
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Totals.Pods != 1 || r.Workloads[0].Status != audit.WouldChange {
		t.Errorf("json: exit %d %s\n%s", code, errs, out)
	}
	out, _, code = runCLI(t, "", "audit", "--config", cfg, "-o", "sarif")
	if code != 0 || !strings.Contains(out, `"version": "2.1.0"`) {
		t.Errorf("sarif: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, "", "audit", "--config", cfg, "-o", "policyreport")
	if code != 0 || !strings.HasPrefix(out, "apiVersion: wgpolicyk8s.io/v1alpha2\nkind: PolicyReport\n") {
		t.Errorf("policyreport: exit %d\n%s", code, out)
	}
}

func TestAuditApplyPolicyReports(t *testing.T) {
	yes := true
	dyn := withFakeCluster(t,
		auditPod("apps", "plain", nil, nil),
		auditPod("team-x", "priv", nil, &corev1.SecurityContext{Privileged: &yes}),
	)
	cfg := noConfig(t)
	if _, errs, code := runCLI(t, "", "audit", "--config", cfg, "--apply"); code != ExitInvalid || !strings.Contains(errs, "use it with -o policyreport") {
		t.Errorf("--apply without -o policyreport: exit %d %s", code, errs)
	}
	out, errs, code := runCLI(t, "", "audit", "--config", cfg, "-o", "policyreport", "--apply")
	if code != 0 || out != "policyreport.wgpolicyk8s.io/pod-hardener-audit created in apps\npolicyreport.wgpolicyk8s.io/pod-hardener-audit created in team-x\n" {
		t.Fatalf("first apply: exit %d\n%s%s", code, out, errs)
	}
	get := func(ns string) map[string]any {
		u, err := dyn.Resource(audit.PolicyReportResource).Namespace(ns).Get(context.Background(), "pod-hardener-audit", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return u.Object
	}
	pr := get("team-x")
	summary, _ := pr["summary"].(map[string]any)
	results, _ := pr["results"].([]any)
	if pr["apiVersion"] != "wgpolicyk8s.io/v1alpha2" || pr["kind"] != "PolicyReport" || len(results) == 0 || summary["fail"] == int64(0) {
		t.Errorf("team-x report: %v", pr)
	}
	// A second run replaces the reports.
	out, _, code = runCLI(t, "", "audit", "--config", cfg, "-o", "policyreport", "--apply", "-n", "apps")
	if code != 0 || out != "policyreport.wgpolicyk8s.io/pod-hardener-audit updated in apps\n" {
		t.Errorf("second apply: exit %d\n%s", code, out)
	}
}
