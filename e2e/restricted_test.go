package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	psaapi "k8s.io/pod-security-admission/api"

	"github.com/pod-hardener/pod-hardener/internal/pss"
)

// unsafePod sets a value for each restricted check that has a safe value
// and no control owned before: AppArmor Unconfined, an SELinux type and
// user, an unsafe sysctl, a hostPort, a probe host and a lifecycle host.
func unsafePod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{
				AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined},
				SELinuxOptions:  &corev1.SELinuxOptions{Type: "spc_t", User: "system_u", Level: "s0"},
				Sysctls:         []corev1.Sysctl{{Name: "net.ipv4.ip_local_port_range", Value: "1024 65535"}, {Name: "kernel.msgmax", Value: "65536"}},
			},
			Containers: []corev1.Container{{
				Name:  "nginx",
				Image: "nginx:1.27",
				Ports: []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 8080}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080), Host: "10.0.0.1"}}},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/stop", Port: intstr.FromInt32(8080), Host: "10.0.0.2"}}},
			}},
		},
	}
}

// Under onConflict: enforce, every one of those values is replaced or
// removed, the API server accepts the patch, and its own PodSecurity
// admission (enforce=restricted) admits the pod.
func TestRestrictedChecksEnforced(t *testing.T) {
	requireCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := "r-enforce"
	restrictedNamespace(t, ns, map[string]string{"pod-hardener.io/profile": "strict-enforce"})
	cs, w := clientWithWarnings(t)
	name := uniqueName("unsafe")
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, unsafePod(name), metav1.CreateOptions{}); err != nil {
		t.Fatalf("pod must be hardened into restricted and admitted: %v (warnings %q)", err, w.joined())
	}
	stored, err := admin.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f := pss.Evaluate(stored, psaapi.LevelRestricted); len(f) > 0 {
		t.Errorf("stored pod fails restricted: %v", f)
	}
	sc, c := stored.Spec.SecurityContext, stored.Spec.Containers[0]
	if sc.AppArmorProfile.Type != corev1.AppArmorProfileTypeRuntimeDefault || sc.SELinuxOptions.Type != "" || sc.SELinuxOptions.User != "" ||
		sc.SELinuxOptions.Level != "s0" || len(sc.Sysctls) != 1 || sc.Sysctls[0].Name != "net.ipv4.ip_local_port_range" {
		t.Errorf("pod securityContext %+v", sc)
	}
	if c.Ports[0].HostPort != 0 || c.Ports[0].ContainerPort != 8080 || c.ReadinessProbe.HTTPGet.Host != "" || c.Lifecycle.PreStop.HTTPGet.Host != "" {
		t.Errorf("container ports %+v, probe %+v, preStop %+v", c.Ports, c.ReadinessProbe.HTTPGet, c.Lifecycle.PreStop.HTTPGet)
	}
	for _, want := range []string{"appArmorProfile.type=Unconfined replaced", "sysctls[1].name=kernel.msgmax replaced", "ports[0].hostPort=8080 replaced", "readinessProbe.httpGet.host=10.0.0.1 replaced"} {
		if !strings.Contains(w.joined(), want) {
			t.Errorf("no warning contains %q: %q", want, w.joined())
		}
	}
}

// Under the default warn, the values stay, and the warnings name each
// restricted check the hardened pod still fails and why (finding 6 of the
// security review: hostPath, hostPort, AppArmor Unconfined).
func TestRestrictedFailuresNamed(t *testing.T) {
	requireCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := "r-warn"
	if err := ensureNamespace(ctx, ns, map[string]string{"pod-security.kubernetes.io/warn": "restricted"}); err != nil {
		t.Fatal(err)
	}
	pod := plainPod(uniqueName("finding6"))
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}}}
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8081}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/host"}}
	cs, w := clientWithWarnings(t)
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, check := range []string{"appArmorProfile", "hostPathVolumes", "hostPorts", "restrictedVolumes"} {
		if !strings.Contains(w.joined(), "still fails Pod Security Standards restricted check "+check+" after hardening") {
			t.Errorf("check %s not named: %q", check, w.joined())
		}
	}
}
