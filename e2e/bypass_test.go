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
// the namespaces given: nothing on namespaces, nothing cluster-wide. The
// client records the warnings mallory sees.
func unprivileged(t *testing.T, ctx context.Context, namespaces ...string) (*kubernetes.Clientset, *warnings) {
	t.Helper()
	for _, ns := range namespaces {
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
	}
	kc, err := env.WriteKubeconfig("mallory", "mallory", []string{"devs"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cluster.RestConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	w := &warnings{}
	cfg.WarningHandler = w
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, w
}

// Warnings the webhook gives mallory (see decide.go's prefix).
const (
	warnHardened     = `pod-hardener: hardened (profile restricted): set`
	warnExemptions   = `pod-hardener: exemption annotations ignored: namespace "bypass" does not allow exemptions`
	warnPodProfile   = `pod-hardener: annotation pod-hardener.io/profile="privileged" ignored: namespace "bypass" does not allow exemptions`
	warnExemptedGone = `pod-hardener: annotation pod-hardener.io/exempted removed: no exemption was honoured`
)

// TestBypassMatrix: every way an ordinary user might get an unhardened pod
// admitted comes out hardened, with the warning docs/security.md promises,
// or rejected by the webhook itself. The namespaces enforce no
// PodSecurity, so nothing but the webhook stands between an attempt and an
// unhardened pod: an attempt that worked would show as a pod stored
// without the hardened fields.
func TestBypassMatrix(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	const ns, denyNS = "bypass", "bypass-deny"
	if err := ensureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	if err := ensureNamespace(ctx, denyNS, map[string]string{"pod-hardener.io/profile": "strict-deny"}); err != nil {
		t.Fatal(err)
	}
	user, seen := unprivileged(t, ctx, ns, denyNS)
	waitNamespaceKnown(t, ns)
	waitNamespaceKnown(t, denyNS)

	mustBeHardened := func(t *testing.T, p *corev1.Pod) {
		t.Helper()
		if m := hardenedFields(p); len(m) > 0 {
			t.Errorf("pod %s admitted without %v", p.Name, m)
		}
		if got := p.Annotations["pod-hardener.io/hardened"]; got != "restricted" {
			t.Errorf("pod %s hardened with profile %q, want the namespace's restricted", p.Name, got)
		}
		if p.Annotations["pod-hardener.io/exempted"] != "" {
			t.Errorf("pod %s recorded as exempted: %q", p.Name, p.Annotations["pod-hardener.io/exempted"])
		}
	}
	mustWarn := func(t *testing.T, got string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("no warning %q; mallory saw:\n%s", w, got)
			}
		}
	}
	cases := []struct {
		name        string
		annotations map[string]string
		nodeName    string
		warnings    []string
	}{
		{"exempt annotation in a namespace that does not allow it", map[string]string{"pod-hardener.io/exempt": "true"}, "",
			[]string{warnExemptions}},
		{"exempt-controls annotation", map[string]string{"pod-hardener.io/exempt-controls": "readOnlyRootFilesystem,capabilities,runAsNonRoot,seccompProfile,allowPrivilegeEscalation"}, "",
			[]string{warnExemptions}},
		{"per-container exemption", map[string]string{"exempt.pod-hardener.io/nginx": "capabilities,allowPrivilegeEscalation"}, "",
			[]string{warnExemptions}},
		{"pod profile annotation asking for privileged", map[string]string{"pod-hardener.io/profile": "privileged"}, "",
			[]string{warnPodProfile}},
		// The API server requires spec.nodeName with the mirror annotation;
		// a user may set both, and must still get a hardened pod.
		{"spoofed mirror-pod annotation", map[string]string{"kubernetes.io/config.mirror": "0123456789abcdef"}, "some-node",
			nil},
		{"planted audit annotation", map[string]string{"pod-hardener.io/exempted": "*"}, "",
			[]string{warnExemptedGone}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := plainPod(uniqueName("bypass-" + string(rune('a'+i))))
			p.Annotations = tc.annotations
			p.Spec.NodeName = tc.nodeName
			seen.take()
			got, err := user.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create failed (the webhook hardens these, it does not reject them): %v", err)
			}
			mustBeHardened(t, got)
			mustWarn(t, seen.take(), append(tc.warnings, warnHardened)...)
		})
	}

	t.Run("exemption for a privileged container where the profile denies", func(t *testing.T) {
		yes := true
		p := plainPod(uniqueName("bypass-deny"))
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
		p.Annotations = map[string]string{"pod-hardener.io/exempt": "true", "exempt.pod-hardener.io/nginx": "privileged"}
		_, err := user.CoreV1().Pods(denyNS).Create(ctx, p, metav1.CreateOptions{})
		if err == nil {
			t.Fatal("a privileged pod was admitted under a deny profile")
		}
		for _, want := range []string{
			`admission webhook "pod-hardener.pod-hardener.io" denied the request`,
			`securityContext.privileged=true is not allowed by profile "strict-deny"`,
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the rejection is not the webhook's: want %q in %v", want, err)
			}
		}
	})

	t.Run("ephemeral container via the subresource, as kubectl debug", func(t *testing.T) {
		p, err := user.CoreV1().Pods(ns).Create(ctx, plainPod(uniqueName("debug-target")), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mustBeHardened(t, p)
		seen.take()
		got, err := addEphemeral(ctx, user, ns, p.Name, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "shell", Image: "busybox"}})
		if err != nil {
			t.Fatalf("adding the ephemeral container failed (the webhook hardens it, it does not reject it): %v", err)
		}
		if len(got.Spec.EphemeralContainers) != 1 {
			t.Fatalf("%d ephemeral containers stored", len(got.Spec.EphemeralContainers))
		}
		sc := got.Spec.EphemeralContainers[0].SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !hasAll(sc.Capabilities.Drop) ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("ephemeral container admitted unhardened: %+v", sc)
		}
		mustWarn(t, seen.take(), warnHardened, "ephemeralContainers[shell]")
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
