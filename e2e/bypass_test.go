package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pod-hardener/pod-hardener/e2e/cluster"
)

// unprivileged returns a client for user mallory, whose RBAC allows only
// creating and reading pods (and adding ephemeral containers, and Jobs) in
// one namespace: nothing on namespaces, nothing cluster-wide.
func unprivileged(t *testing.T, ctx context.Context, ns string) *kubernetes.Clientset {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pods-only"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "get"}},
		{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"update", "patch"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create", "get"}},
	}}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "mallory"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pods-only"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "mallory"}}}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	kc, err := env.WriteKubeconfig("mallory", "mallory", []string{"devs"})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := cluster.Client(kc)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestBypassMatrix: every way an ordinary user might get an unhardened pod
// admitted comes out hardened or rejected.
func TestBypassMatrix(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	const ns = "bypass"
	restrictedNamespace(t, ns, nil)
	user := unprivileged(t, ctx, ns)

	mustBeHardened := func(t *testing.T, p *corev1.Pod) {
		t.Helper()
		if m := hardenedFields(p); len(m) > 0 {
			t.Errorf("pod %s admitted without %v", p.Name, m)
		}
		if p.Annotations["pod-hardener.io/exempted"] != "" {
			t.Errorf("pod %s recorded as exempted: %q", p.Name, p.Annotations["pod-hardener.io/exempted"])
		}
	}
	cases := []struct {
		name        string
		annotations map[string]string
		nodeName    string
	}{
		{"exempt annotation in a namespace that does not allow it", map[string]string{"pod-hardener.io/exempt": "true"}, ""},
		{"exempt-controls annotation", map[string]string{"pod-hardener.io/exempt-controls": "readOnlyRootFilesystem,capabilities,runAsNonRoot,seccompProfile,allowPrivilegeEscalation"}, ""},
		{"per-container exemption", map[string]string{"exempt.pod-hardener.io/nginx": "capabilities,allowPrivilegeEscalation"}, ""},
		{"pod profile annotation asking for privileged", map[string]string{"pod-hardener.io/profile": "privileged"}, ""},
		// The API server requires spec.nodeName with the mirror annotation;
		// a user may set both, and must still get a hardened pod.
		{"spoofed mirror-pod annotation", map[string]string{"kubernetes.io/config.mirror": "0123456789abcdef"}, "some-node"},
		{"planted audit annotation", map[string]string{"pod-hardener.io/exempted": "*"}, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := plainPod(uniqueName("bypass-" + string(rune('a'+i))))
			p.Annotations = tc.annotations
			p.Spec.NodeName = tc.nodeName
			got, err := user.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			if err != nil {
				// Rejected is an acceptable outcome; say why.
				t.Logf("rejected: %v", err)
				return
			}
			mustBeHardened(t, got)
		})
	}

	t.Run("ephemeral container via the subresource, as kubectl debug", func(t *testing.T) {
		p, err := user.CoreV1().Pods(ns).Create(ctx, plainPod(uniqueName("debug-target")), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := addEphemeral(ctx, user, ns, p.Name, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "shell", Image: "busybox"}})
		if err != nil {
			// Only PodSecurity may refuse it, and then nothing ran unhardened.
			if !strings.Contains(err.Error(), "violates PodSecurity") {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		sc := got.Spec.EphemeralContainers[0].SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !hasAll(sc.Capabilities.Drop) {
			t.Errorf("ephemeral container admitted unhardened: %+v", sc)
		}
	})

	t.Run("relabelling the namespace", func(t *testing.T) {
		_, err := user.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json",
			[]byte(`{"metadata":{"labels":{"pod-hardener.io/allow-exemptions":"true","pod-hardener.io/profile":"privileged"}}}`), metav1.PatchOptions{})
		if err == nil || !apierrors.IsForbidden(err) {
			t.Fatalf("an ordinary user relabelled the namespace: %v", err)
		}
	})

	t.Run("pod made by a controller from a Job", func(t *testing.T) {
		if !withNodes {
			missingTool(t, "needs kube-controller-manager: run e2e/build-binaries.sh")
		}
		jobName := uniqueName("sneaky")
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: jobName},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"pod-hardener.io/exempt": "true"}},
				Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "nginx", Image: "busybox"}}}}}}
		if _, err := user.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + jobName})
			if err != nil {
				t.Fatal(err)
			}
			if len(pods.Items) > 0 {
				mustBeHardened(t, &pods.Items[0])
				if !strings.HasPrefix(pods.Items[0].Name, jobName+"-") {
					t.Errorf("unexpected pod %s", pods.Items[0].Name)
				}
				return
			}
			if time.Now().After(deadline) {
				events, _ := admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
				for _, e := range events.Items {
					t.Logf("event %s %s: %s", e.InvolvedObject.Name, e.Reason, e.Message)
				}
				t.Fatal("the Job controller made no pod in 60s")
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
}
