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

// TestHostProcessWithoutWindowsOS: the review's pod, hostProcess at pod
// level without spec.os, hostNetwork, a privileged container adding
// SYS_ADMIN. The API server accepts it and a Linux node runs it, ignoring
// hostProcess; the engine hardens it as the Linux pod it is, so a profile
// that denies privileged rejects it for that.
func TestHostProcessWithoutWindowsOS(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	const ns = "hostprocess-linux"
	if err := ensureNamespace(ctx, ns, map[string]string{"pod-hardener.io/profile": "strict-deny"}); err != nil {
		t.Fatal(err)
	}
	yes := true
	p := plainPod(uniqueName("hp"))
	p.Spec.HostNetwork = true
	p.Spec.SecurityContext = &corev1.PodSecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{HostProcess: &yes}}
	p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
		Privileged:   &yes,
		Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}},
	}
	_, err := admin.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err == nil {
		t.Fatal("admitted a privileged pod under a profile that denies privileged")
	}
	for _, want := range []string{"containers[nginx]: securityContext.privileged=true", "securityContext.capabilities.add=SYS_ADMIN", "spec.hostNetwork=true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("rejection %q lacks %q", err, want)
		}
	}
}

// TestWritableVolumeNameTaken: a pod's own hostPath of / under the name the
// engine gives the /tmp emptyDir is left alone; /tmp gets a new emptyDir
// under the next name, and the stored pod mounts that.
func TestWritableVolumeNameTaken(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	const ns = "volume-name-taken"
	if err := ensureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	probe, err := admin.CoreV1().Pods(ns).Create(ctx, plainPod(uniqueName("probe")), dry)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	for _, m := range probe.Spec.Containers[0].VolumeMounts {
		if m.MountPath == "/tmp" {
			name = m.Name
		}
	}
	if name == "" {
		t.Fatalf("a plain pod got no /tmp mount: %+v", probe.Spec.Containers[0].VolumeMounts)
	}
	p := plainPod(uniqueName("taken"))
	p.Spec.Volumes = []corev1.Volume{{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	got, err := admin.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range got.Spec.Volumes {
		vols[v.Name] = v
	}
	if v := vols[name]; v.HostPath == nil || v.HostPath.Path != "/" {
		t.Errorf("the pod's own volume changed: %+v", v)
	}
	for _, m := range got.Spec.Containers[0].VolumeMounts {
		if m.MountPath != "/tmp" {
			continue
		}
		if m.Name == name {
			t.Fatalf("/tmp mounts the pod's hostPath of / (%s)", name)
		}
		if v := vols[m.Name]; v.EmptyDir == nil {
			t.Errorf("/tmp mounts %s, not an emptyDir: %+v", m.Name, v)
		}
		return
	}
	t.Errorf("no /tmp mount: %+v", got.Spec.Containers[0].VolumeMounts)
}
