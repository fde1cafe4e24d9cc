package e2e

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Report mode on a real API server: a namespace labelled
// pod-hardener.io/mode=report stores pods as they came, the client sees
// what hardening would do, a conflict the profile denies is admitted, and
// relabelling the namespace harden switches it to hardening.
func TestReportModeNamespace(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	if err := ensureNamespace(ctx, "report-trial", map[string]string{"pod-hardener.io/mode": "report"}); err != nil {
		t.Fatal(err)
	}
	cs, w := clientWithWarnings(t)
	p, err := cs.CoreV1().Pods("report-trial").Create(ctx, plainPod(uniqueName("web")), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("report mode must admit the pod: %v", err)
	}
	if missing := hardenedFields(p); len(missing) == 0 || p.Annotations["pod-hardener.io/hardened"] != "" {
		t.Errorf("report mode changed the stored pod: missing %v, annotations %v", missing, p.Annotations)
	}
	got := w.take()
	for _, want := range []string{
		"pod-hardener: report mode (namespace label pod-hardener.io/mode): admitted unchanged",
		"pod-hardener: report mode (profile restricted): would set readOnlyRootFilesystem=true on containers[nginx]",
		"pod-hardener: report mode (profile restricted): would set securityContext.runAsNonRoot=true on pod",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("client warnings lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "hardened (profile") {
		t.Errorf("report mode warned as if it hardened:\n%s", got)
	}

	// A profile that denies conflicts: report mode admits and says so.
	if err := ensureNamespace(ctx, "report-deny", map[string]string{"pod-hardener.io/mode": "report", "pod-hardener.io/profile": "strict-deny"}); err != nil {
		t.Fatal(err)
	}
	priv := plainPod(uniqueName("priv"))
	yes := true
	priv.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	if _, err := cs.CoreV1().Pods("report-deny").Create(ctx, priv, metav1.CreateOptions{}); err != nil {
		t.Fatalf("report mode rejected a pod: %v", err)
	}
	if got := w.take(); !strings.Contains(got, "hardening would refuse this pod") || !strings.Contains(got, "securityContext.privileged=true") {
		t.Errorf("client warnings do not say the pod would be refused:\n%s", got)
	}

	// Switch the namespace to hardening: the informer sees it, no restart.
	if err := ensureNamespace(ctx, "report-trial", map[string]string{"pod-hardener.io/mode": "harden"}); err != nil {
		t.Fatal(err)
	}
	p = createUntilProfile(t, "report-trial", "restricted")
	if missing := hardenedFields(p); len(missing) > 0 {
		t.Errorf("hardened pod lacks %v", missing)
	}
}
