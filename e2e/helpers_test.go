package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

var nameSeq atomic.Int64

// uniqueName makes names distinct across -count runs of the suite.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1))
}

// createUntilProfile creates plain pods in ns until one is hardened with
// profile want, for a namespace just relabelled: the webhook's informer
// sees the label within moments, without a restart.
func createUntilProfile(t *testing.T, ns, want string) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		p, err := admin.CoreV1().Pods(ns).Create(context.Background(), plainPod(uniqueName(fmt.Sprintf("relabelled%d", i))), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Annotations["pod-hardener.io/hardened"]; got == want {
			return p
		} else if time.Now().After(deadline) {
			t.Fatalf("relabelled namespace %s still hardens with %q, want %q", ns, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// addEphemeral adds an ephemeral container as `kubectl debug` does,
// retrying when something else (kwok's status updates) changed the pod.
func addEphemeral(ctx context.Context, cs kubernetes.Interface, ns, name string, ec corev1.EphemeralContainer) (*corev1.Pod, error) {
	var out *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
		out, err = cs.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, name, p, metav1.UpdateOptions{})
		return err
	})
	return out, err
}

// waitNamespaceKnown waits until the webhook's namespace informer has ns
// (a dry-run pod there comes back without the lookup-failure warning):
// until then the webhook uses the default profile, and its warnings say so.
func waitNamespaceKnown(t *testing.T, ns string) {
	t.Helper()
	cs, w := clientWithWarnings(t)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		w.take()
		_, err := cs.CoreV1().Pods(ns).Create(context.Background(), plainPod("probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		seen := w.take()
		if err == nil && !strings.Contains(seen, "could not be read") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook never read namespace %s: %v %s", ns, err, seen)
		}
	}
}

func admissionFailurePolicy(s string) admissionregistrationv1.FailurePolicyType {
	return admissionregistrationv1.FailurePolicyType(s)
}

// hardenedFields checks the restricted fields of a stored pod; it returns
// what is missing.
func hardenedFields(p *corev1.Pod) []string {
	var missing []string
	sc := p.Spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		missing = append(missing, "spec.securityContext.runAsNonRoot")
	}
	if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		missing = append(missing, "spec.securityContext.seccompProfile")
	}
	all := append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...)
	for _, c := range all {
		csc := c.SecurityContext
		if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			missing = append(missing, c.Name+".allowPrivilegeEscalation")
		}
		if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			missing = append(missing, c.Name+".readOnlyRootFilesystem")
		}
		if csc == nil || csc.Capabilities == nil || !hasAll(csc.Capabilities.Drop) {
			missing = append(missing, c.Name+".capabilities.drop")
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			if m.MountPath == "/tmp" {
				mounted = true
			}
		}
		if !mounted {
			missing = append(missing, c.Name+" /tmp mount")
		}
	}
	if p.Annotations["pod-hardener.io/hardened"] == "" {
		missing = append(missing, "annotation pod-hardener.io/hardened")
	}
	return missing
}

func hasAll(caps []corev1.Capability) bool {
	for _, c := range caps {
		if c == "ALL" {
			return true
		}
	}
	return false
}
