package e2e

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSysAdminSpellings: the API server refuses allowPrivilegeEscalation:
// false next to an added capability spelt exactly "CAP_SYS_ADMIN", and
// accepts it next to "SYS_ADMIN". The engine follows that rule to the
// letter: it sets false beside SYS_ADMIN and leaves the field unset beside
// CAP_SYS_ADMIN, and the API server stores both pods. The capabilities
// control is exempted for the container (in a namespace that allows
// exemptions), as a profile allowing SYS_ADMIN would.
func TestSysAdminSpellings(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	const ns = "sysadmin-spellings"
	if err := ensureNamespace(ctx, ns, map[string]string{"pod-hardener.io/allow-exemptions": "true"}); err != nil {
		t.Fatal(err)
	}
	no := false
	pod := func(capability string, escalation *bool) *corev1.Pod {
		p := plainPod(uniqueName("sysadmin"))
		p.Annotations = map[string]string{"exempt.pod-hardener.io/nginx": "capabilities"}
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
			Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{corev1.Capability(capability)}},
			AllowPrivilegeEscalation: escalation,
		}
		return p
	}
	cs, w := clientWithWarnings(t)

	// The API server's own rule, with the field written by the user (the
	// engine keeps a user's false).
	_, err := cs.CoreV1().Pods(ns).Create(ctx, pod("CAP_SYS_ADMIN", &no), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "allowPrivilegeEscalation") || !strings.Contains(err.Error(), "CAP_SYS_ADMIN") {
		t.Fatalf("CAP_SYS_ADMIN with allowPrivilegeEscalation false: want the API server's refusal, got %v", err)
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod("SYS_ADMIN", &no), metav1.CreateOptions{}); err != nil {
		t.Fatalf("SYS_ADMIN with allowPrivilegeEscalation false: the API server refused it: %v", err)
	}

	// The engine's choice for each spelling is stored as made.
	got, err := cs.CoreV1().Pods(ns).Create(ctx, pod("SYS_ADMIN", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SYS_ADMIN: %v", err)
	}
	if sc := got.Spec.Containers[0].SecurityContext; sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("SYS_ADMIN: allowPrivilegeEscalation = %v, want false", sc.AllowPrivilegeEscalation)
	}
	got, err = cs.CoreV1().Pods(ns).Create(ctx, pod("CAP_SYS_ADMIN", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("CAP_SYS_ADMIN: the engine's patch made the pod invalid: %v", err)
	}
	if sc := got.Spec.Containers[0].SecurityContext; sc.AllowPrivilegeEscalation != nil {
		t.Errorf("CAP_SYS_ADMIN: allowPrivilegeEscalation = %v, want unset", *sc.AllowPrivilegeEscalation)
	}
	if want := "allowPrivilegeEscalation left unset: the container adds CAP_SYS_ADMIN"; !strings.Contains(w.joined(), want) {
		t.Errorf("warnings lack %q: %q", want, w.joined())
	}
	if got.Annotations["pod-hardener.io/hardened"] != "restricted" {
		t.Errorf("not hardened: annotations %v", got.Annotations)
	}
}
