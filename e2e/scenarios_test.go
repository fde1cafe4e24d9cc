package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
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
	_, err := admin.CoreV1().Pods("no-webhook").Create(ctx, plainPod(uniqueName("web")), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Fatalf("without the webhook, PodSecurity should reject a plain pod; got %v", err)
	}
	restrictedNamespace(t, "s1-restricted", nil)
	cs, w := clientWithWarnings(t)
	p, err := cs.CoreV1().Pods("s1-restricted").Create(ctx, plainPod(uniqueName("web")), metav1.CreateOptions{})
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

func getNamespace(t *testing.T, name string) map[string]string {
	t.Helper()
	ns, err := admin.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Labels
}

// Scenario 3: the namespace label selects a profile, config namespace rules
// work, and relabelling takes effect without a restart.
func TestProfileSelection(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	if err := ensureNamespace(ctx, "s3-labelled", map[string]string{"pod-hardener.io/profile": "baseline"}); err != nil {
		t.Fatal(err)
	}
	p, err := admin.CoreV1().Pods("s3-labelled").Create(ctx, plainPod(uniqueName("a")), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Annotations["pod-hardener.io/hardened"]; got != "baseline" {
		t.Errorf("namespace label: profile %q, want baseline", got)
	}
	if c := p.Spec.Containers[0].SecurityContext; c == nil || c.AllowPrivilegeEscalation == nil || c.ReadOnlyRootFilesystem != nil {
		t.Errorf("baseline should set allowPrivilegeEscalation only, not readOnlyRootFilesystem: %+v", c)
	}

	if err := ensureNamespace(ctx, "legacy-billing", nil); err != nil {
		t.Fatal(err)
	}
	p, err = admin.CoreV1().Pods("legacy-billing").Create(ctx, plainPod(uniqueName("a")), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Annotations["pod-hardener.io/hardened"]; got != "baseline" {
		t.Errorf("config rule legacy-*: profile %q, want baseline", got)
	}

	// Relabel: the informer sees it; no restart.
	labels := getNamespace(t, "s3-labelled")
	labels["pod-hardener.io/profile"] = "strict-deny"
	if err := ensureNamespace(ctx, "s3-labelled", labels); err != nil {
		t.Fatal(err)
	}
	createUntilProfile(t, "s3-labelled", "strict-deny")
}

// Scenario 4: exemptions are honoured where allowed and recorded; ignored
// with a visible warning elsewhere; a deny profile rejects with a clear
// message.
func TestExemptions(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	exemptPod := func(name string) *corev1.Pod {
		p := plainPod(name)
		p.Annotations = map[string]string{"exempt.pod-hardener.io/nginx": "readOnlyRootFilesystem,capabilities"}
		return p
	}
	for _, ns := range []struct {
		name   string
		labels map[string]string
	}{
		{"s4-allowed-by-label", map[string]string{"pod-hardener.io/allow-exemptions": "true"}},
		{"exempt-by-config", nil},
	} {
		if err := ensureNamespace(ctx, ns.name, ns.labels); err != nil {
			t.Fatal(err)
		}
		p, err := admin.CoreV1().Pods(ns.name).Create(ctx, exemptPod(uniqueName("x")), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sc := p.Spec.Containers[0].SecurityContext
		if sc.ReadOnlyRootFilesystem != nil || sc.Capabilities != nil {
			t.Errorf("%s: exempt controls applied: %+v", ns.name, sc)
		}
		if got := p.Annotations["pod-hardener.io/exempted"]; got != "capabilities@nginx,readOnlyRootFilesystem@nginx" {
			t.Errorf("%s: exempted annotation %q", ns.name, got)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: non-exempt control not applied", ns.name)
		}
	}

	restrictedNamespace(t, "s4-closed", nil)
	cs, w := clientWithWarnings(t)
	p, err := cs.CoreV1().Pods("s4-closed").Create(ctx, exemptPod(uniqueName("x")), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("pod with an unauthorized exemption must still be admitted, hardened: %v", err)
	}
	if m := hardenedFields(p); len(m) > 0 {
		t.Errorf("unauthorized exemption honoured: missing %v", m)
	}
	if !strings.Contains(w.joined(), "exemption annotations ignored") {
		t.Errorf("client saw no warning about the ignored exemption: %q", w.joined())
	}

	if err := ensureNamespace(ctx, "s4-deny", map[string]string{"pod-hardener.io/profile": "strict-deny"}); err != nil {
		t.Fatal(err)
	}
	priv := plainPod(uniqueName("priv"))
	yes := true
	priv.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	_, err = admin.CoreV1().Pods("s4-deny").Create(ctx, priv, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("deny profile admitted a privileged pod")
	}
	for _, want := range []string{"containers[nginx]", "securityContext.privileged=true", `exempt.pod-hardener.io/nginx: "privileged"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("denial %q lacks %q", err, want)
		}
	}
}

// Scenario 5: the writable-paths annotation gives an emptyDir and a mount.
func TestWritablePaths(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	restrictedNamespace(t, "s5-writable", nil)
	p := plainPod(uniqueName("nginx"))
	p.Annotations = map[string]string{"pod-hardener.io/writable-paths": "/var/cache/nginx,/var/run"}
	got, err := admin.CoreV1().Pods("s5-writable").Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mounts := map[string]string{}
	for _, m := range got.Spec.Containers[0].VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	emptyDirs := map[string]bool{}
	for _, v := range got.Spec.Volumes {
		if v.EmptyDir != nil {
			emptyDirs[v.Name] = true
		}
	}
	for _, path := range []string{"/tmp", "/var/cache/nginx", "/var/run"} {
		if name, ok := mounts[path]; !ok || !emptyDirs[name] {
			t.Errorf("%s: mount %q, emptyDir volumes %v", path, name, emptyDirs)
		}
	}
}

// Scenario 6: an ephemeral container added through the
// pods/ephemeralcontainers subresource, as `kubectl debug` does, is
// hardened and admitted in a restricted namespace.
func TestEphemeralContainerHardened(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	restrictedNamespace(t, "s6-debug", nil)
	name := uniqueName("target")
	if _, err := admin.CoreV1().Pods("s6-debug").Create(ctx, plainPod(name), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := addEphemeral(ctx, admin, "s6-debug", name, corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox", Stdin: true, TTY: true},
		TargetContainerName:      "nginx",
	})
	if err != nil {
		t.Fatalf("ephemeral container rejected: %v", err)
	}
	ec := got.Spec.EphemeralContainers[0].SecurityContext
	if ec == nil || ec.AllowPrivilegeEscalation == nil || *ec.AllowPrivilegeEscalation || ec.Capabilities == nil || !hasAll(ec.Capabilities.Drop) {
		t.Errorf("ephemeral container not hardened: %+v", ec)
	}

	// Without the webhook PodSecurity refuses the same debug container.
	if err := ensureNamespace(ctx, "no-webhook", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}); err != nil {
		t.Fatal(err)
	}
	name2 := uniqueName("target2")
	hardened := plainPod(name2)
	hardened.Spec = *got.Spec.DeepCopy()
	hardened.Spec.EphemeralContainers = nil
	hardened.Spec.NodeName = ""
	if _, err := admin.CoreV1().Pods("no-webhook").Create(ctx, hardened, metav1.CreateOptions{}); err != nil {
		t.Fatalf("already-hardened pod rejected: %v", err)
	}
	if _, err := addEphemeral(ctx, admin, "no-webhook", name2, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox"}}); err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("without the webhook the debug container should violate PodSecurity; got %v", err)
	}
}

// Scenario 10: a privileged DaemonSet-style pod and a Windows pod are
// admitted: no field combination the API server rejects. The Linux pods
// go to a namespace without PodSecurity, where they would be admitted
// untouched too; what shows the webhook at work is what only it adds: the
// other hardened fields, allowPrivilegeEscalation left unset where the API
// server would reject it, and a warning saying why.
func TestPrivilegedAndWindowsPodsAdmitted(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	if err := ensureNamespace(ctx, "s10-system", nil); err != nil {
		t.Fatal(err)
	}
	cs, seen := clientWithWarnings(t)
	// hardenedOtherwise: the stored pod has every hardened field but
	// allowPrivilegeEscalation, and the warning explains that one.
	hardenedOtherwise := func(p *corev1.Pod, why string) {
		t.Helper()
		if m := hardenedFields(p); !slices.Equal(m, []string{"nginx.allowPrivilegeEscalation"}) {
			t.Errorf("pod %s: missing %v, want only allowPrivilegeEscalation (left unset)", p.Name, m)
		}
		if sc := p.Spec.Containers[0].SecurityContext; sc == nil || sc.AllowPrivilegeEscalation != nil {
			t.Errorf("pod %s: allowPrivilegeEscalation set: %+v", p.Name, sc)
		}
		want := "pod-hardener: containers[nginx]: allowPrivilegeEscalation left unset: " + why
		if w := seen.take(); !strings.Contains(w, want) {
			t.Errorf("pod %s: no warning %q; warnings:\n%s", p.Name, want, w)
		}
	}
	yes := true
	priv := plainPod(uniqueName("agent"))
	priv.Spec.HostNetwork = true
	priv.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes,
		Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN", "NET_ADMIN"}}}
	p, err := cs.CoreV1().Pods("s10-system").Create(ctx, priv, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("privileged pod rejected: %v", err)
	}
	hardenedOtherwise(p, "the container is privileged")
	sc := p.Spec.Containers[0].SecurityContext
	if !*sc.Privileged || len(sc.Capabilities.Add) != 2 || !p.Spec.HostNetwork {
		t.Errorf("user's values changed: %+v, hostNetwork %v", sc, p.Spec.HostNetwork)
	}

	sysadmin := plainPod(uniqueName("fuse"))
	sysadmin.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"CAP_SYS_ADMIN"}}}
	p, err = cs.CoreV1().Pods("s10-system").Create(ctx, sysadmin, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("CAP_SYS_ADMIN pod rejected: %v", err)
	}
	hardenedOtherwise(p, "the container adds CAP_SYS_ADMIN")

	win := plainPod(uniqueName("iis"))
	win.Spec.OS = &corev1.PodOS{Name: corev1.Windows}
	restrictedNamespace(t, "s10-windows", nil)
	w, err := cs.CoreV1().Pods("s10-windows").Create(ctx, win, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Windows pod rejected: %v", err)
	}
	if w.Spec.SecurityContext == nil || w.Spec.SecurityContext.RunAsNonRoot == nil || w.Spec.SecurityContext.SeccompProfile != nil {
		t.Errorf("Windows pod security context: %+v", w.Spec.SecurityContext)
	}
	if c := w.Spec.Containers[0].SecurityContext; c != nil && (c.Capabilities != nil || c.ReadOnlyRootFilesystem != nil || c.AllowPrivilegeEscalation != nil) {
		t.Errorf("Linux-only fields on a Windows container: %+v", c)
	}
}
