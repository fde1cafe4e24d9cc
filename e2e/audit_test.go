package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pod-hardener/pod-hardener/internal/audit"
)

// auditLabel marks this test's pods, so the audit (-l) sees only them.
const auditLabel = "audit-e2e"

func auditPod(name string, ann map[string]string) *corev1.Pod {
	p := plainPod(name)
	p.Labels = map[string]string{auditLabel: "1"}
	p.Annotations = ann
	return p
}

// TestAudit: pods made before the webhook was registered, while it was
// down under failurePolicy Ignore, exempt, hardened under a profile that
// no longer applies, and hardened now; the real `pod-hardener audit`
// binary, run against the API server with the webhook's config, reports
// each workload's status.
func TestAudit(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	t.Cleanup(func() { restoreSuiteWebhook(t) })
	const (
		nsMain = "audit-main"
		exempt = "audit-exempt"
		drift  = "audit-drift"
	)
	for ns, labels := range map[string]map[string]string{
		nsMain: nil,
		exempt: {"pod-hardener.io/allow-exemptions": "true"},
		drift:  {"pod-hardener.io/profile": "baseline"},
	} {
		if err := ensureNamespace(ctx, ns, labels); err != nil {
			t.Fatal(err)
		}
	}
	cs := quietClient(t)
	cleanAudit(t, ctx, nsMain, exempt, drift)
	create := func(ns string, p *corev1.Pod) *corev1.Pod {
		t.Helper()
		out, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating %s/%s: %v", ns, p.Name, err)
		}
		return out
	}

	// 1. Before the webhook is registered.
	if err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, "pod-hardener", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUnhooked(t, ctx, nsMain)
	web := webWorkload(t, ctx, nsMain)
	// 2. Registered: hardened now, exempt, a conflict kept (onConflict
	// warn), and one hardened under baseline in a namespace that then
	// loses its profile label.
	if err := registerSuiteWebhook(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := waitHardening(ctx); err != nil {
		t.Fatal(err)
	}
	if p := create(nsMain, auditPod("hardened-now", nil)); p.Annotations["pod-hardener.io/hardened"] != "restricted" {
		t.Fatalf("hardened-now: %v", p.Annotations)
	}
	create(exempt, auditPod("exempt", map[string]string{"pod-hardener.io/exempt": "true"}))
	priv := auditPod("priv", nil)
	yes := true
	priv.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	create(nsMain, priv)
	if p := create(drift, auditPod("old-profile", nil)); p.Annotations["pod-hardener.io/hardened"] != "baseline" {
		t.Fatalf("old-profile: %v", p.Annotations)
	}
	if err := ensureNamespace(ctx, drift, nil); err != nil {
		t.Fatal(err)
	}
	// 3. The webhook down under failurePolicy Ignore.
	hook.Stop()
	if err := registerSuiteWebhook(ctx, "Ignore"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := cs.CoreV1().Pods(nsMain).Create(ctx, auditPod("while-down", nil), metav1.CreateOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with failurePolicy Ignore the pod was never admitted: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	restoreSuiteWebhook(t)

	out, stderr, code := runAudit(t, "-l", auditLabel+"=1", "-o", "json")
	if code != 0 {
		t.Fatalf("audit: exit %d\n%s", code, stderr)
	}
	var r audit.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("audit -o json: %v\n%s", err, out)
	}
	got := map[string]*audit.Workload{}
	for _, w := range r.Workloads {
		got[w.String()] = w
	}
	check := func(key string, status audit.Status, pods, unreviewed int) *audit.Workload {
		t.Helper()
		w := got[key]
		if w == nil {
			t.Errorf("%s not in the audit: %v", key, keys(got))
			return &audit.Workload{}
		}
		if w.Status != status || w.Pods != pods || w.Unreviewed != unreviewed {
			t.Errorf("%s: %s, %d pods, %d unreviewed; want %s, %d, %d", key, w.Status, w.Pods, w.Unreviewed, status, pods, unreviewed)
		}
		return w
	}
	w := check(web, audit.WouldChange, 2, 2)
	if w.PSSNow == "restricted" || w.PSSAfter != "restricted" {
		t.Errorf("%s: PSS %s -> %s, want below restricted -> restricted", web, w.PSSNow, w.PSSAfter)
	}
	check(nsMain+"/Pod/hardened-now", audit.Hardened, 1, 0)
	check(nsMain+"/Pod/while-down", audit.WouldChange, 1, 1)
	w = check(nsMain+"/Pod/priv", audit.Conflict, 1, 0)
	if len(w.Conflicts) != 1 || w.Conflicts[0].Control != "privileged" {
		t.Errorf("priv conflicts: %+v", w.Conflicts)
	}
	w = check(exempt+"/Pod/exempt", audit.Exempt, 1, 0)
	if len(w.Exemptions) != 1 || !strings.Contains(w.Exemptions[0].AllowedBy, "has label pod-hardener.io/allow-exemptions=true") {
		t.Errorf("exempt: %+v", w.Exemptions)
	}
	w = check(drift+"/Pod/old-profile", audit.WouldChange, 1, 0)
	if w.Drifted != 1 || len(w.Drift) == 0 || w.Drift[0].Kind != audit.DriftProfile {
		t.Errorf("old-profile drift: %+v", w.Drift)
	}
	if r.Totals.Pods != 7 {
		t.Errorf("audited %d pods, want 7", r.Totals.Pods)
	}
	// The webhook's continuous audit (restarted above, so its informer read
	// these pods from scratch) counts the same pods the same way.
	waitAuditMetrics(t, map[string]float64{
		`pod_hardener_audit_pods{namespace="` + nsMain + `",status="would-change"}`: 3,
		`pod_hardener_audit_pods{namespace="` + nsMain + `",status="hardened"}`:     1,
		`pod_hardener_audit_pods{namespace="` + nsMain + `",status="conflict"}`:     1,
		`pod_hardener_audit_pods{namespace="` + nsMain + `",status="exempt"}`:       0,
		`pod_hardener_audit_unreviewed_pods{namespace="` + nsMain + `"}`:            3,
		`pod_hardener_audit_pods{namespace="` + exempt + `",status="exempt"}`:       1,
		`pod_hardener_audit_exempted_pods{namespace="` + exempt + `"}`:              1,
		`pod_hardener_audit_pods{namespace="` + drift + `",status="would-change"}`:  1,
		`pod_hardener_audit_drifted_pods{kind="profile",namespace="` + drift + `"}`: 1,
	})
	// The table leads with the namespaces, and --fail-on sets the exit code.
	out, _, code = runAudit(t, "-l", auditLabel+"=1", "--fail-on", "conflict")
	if code != 3 || !bytes.HasPrefix(out, []byte("NAMESPACE")) {
		t.Errorf("--fail-on conflict: exit %d, want 3\n%s", code, out)
	}
	t.Logf("audit table:\n%s", out)
	if _, _, code = runAudit(t, "-n", exempt, "--fail-on", "conflict,would-change"); code != 0 {
		t.Errorf("-n %s --fail-on conflict,would-change: exit %d, want 0", exempt, code)
	}
	// This API server has no PolicyReport CRD: --apply says so.
	_, stderr, code = runAudit(t, "-n", exempt, "-o", "policyreport", "--apply")
	if code != 1 || !strings.Contains(stderr, "is the wgpolicyk8s.io/v1alpha2 PolicyReport CRD installed?") {
		t.Errorf("--apply without the CRD: exit %d\n%s", code, stderr)
	}
}

// cleanAudit removes what an earlier run (-count) left, so names repeat.
func cleanAudit(t *testing.T, ctx context.Context, nss ...string) {
	t.Helper()
	zero := int64(0)
	for _, ns := range nss {
		if err := admin.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		sel := metav1.ListOptions{LabelSelector: auditLabel + "=1"}
		if err := admin.AppsV1().ReplicaSets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, sel); err != nil {
			t.Fatal(err)
		}
		if err := admin.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, sel); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			pods, err := admin.CoreV1().Pods(ns).List(ctx, sel)
			if err == nil && len(pods.Items) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pods of an earlier run remain in %s: %v", ns, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// waitUnhooked waits until pods are no longer hardened: a deleted webhook
// configuration takes effect a moment later.
func waitUnhooked(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p, err := admin.CoreV1().Pods(ns).Create(ctx, plainPod("probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && p.Annotations["pod-hardener.io/hardened"] == "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("pods are still hardened after the webhook configuration was deleted")
}

// webWorkload makes a Deployment's two pods while no webhook is
// registered and returns the workload key the audit should report. With
// controllers running, the Deployment and ReplicaSet controllers make
// them; without, a ReplicaSet owned by the Deployment and its pods are
// written directly, as the controllers would.
func webWorkload(t *testing.T, ctx context.Context, ns string) string {
	t.Helper()
	labels := map[string]string{"app": "web", auditLabel: "1"}
	replicas := int32(2)
	spec := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: plainPod("x").Spec}
	d, err := admin.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: spec},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if withNodes {
		deadline := time.Now().Add(60 * time.Second)
		for {
			pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err == nil && len(pods.Items) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the Deployment's pods never appeared: %v", err)
			}
			time.Sleep(250 * time.Millisecond)
		}
		return ns + "/Deployment/web"
	}
	yes := true
	rs, err := admin.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-5b8f", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: spec},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-5b8f-%d", i), Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}},
			Spec: spec.Spec}
		if _, err := admin.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	return ns + "/Deployment/web"
}

// runAudit runs the real binary with the webhook's config and the admin's
// kubeconfig.
func runAudit(t *testing.T, args ...string) ([]byte, string, int) {
	t.Helper()
	cmd := exec.Command(hook.Binary, append([]string{"audit", "--kubeconfig", env.Kubeconfig, "--config", hook.ConfigPath}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.Bytes(), errb.String(), 0
	case errors.As(err, &ee):
		return out.Bytes(), errb.String(), ee.ExitCode()
	}
	t.Fatalf("running audit: %v", err)
	return nil, "", -1
}

func keys(m map[string]*audit.Workload) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
