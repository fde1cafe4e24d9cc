package e2e

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Scenario 1: in a restricted namespace a plain pod is rejected without the
// webhook and admitted with it, carrying every hardened field.
func TestPlainPodRestrictedNamespace(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	if err := ensureNamespace(ctx, "no-webhook", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}); err != nil {
		t.Fatal(err)
	}
	_, err := admin.CoreV1().Pods("no-webhook").Create(ctx, plainPod("web"), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Fatalf("without the webhook, PodSecurity should reject a plain pod; got %v", err)
	}
	restrictedNamespace(t, "s1-restricted", nil)
	cs, w := clientWithWarnings(t)
	p, err := cs.CoreV1().Pods("s1-restricted").Create(ctx, plainPod("web"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("with the webhook the pod must be admitted: %v", err)
	}
	if m := hardenedFields(p); len(m) > 0 {
		t.Errorf("stored pod lacks %v", m)
	}
	if p.Annotations["pod-hardener.io/hardened"] != "restricted" {
		t.Errorf("annotations %v", p.Annotations)
	}
	if !strings.Contains(w.joined(), "pod-hardener: hardened (profile restricted)") {
		t.Errorf("client saw no hardening warnings: %q", w.joined())
	}
}
