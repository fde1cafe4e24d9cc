package e2e

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeNode registers a node that kwok runs: it becomes Ready and moves the
// pods bound to it through their lifecycle, as a kubelet would.
func fakeNode(t *testing.T, ctx context.Context) {
	t.Helper()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "kwok-node-0",
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"kubernetes.io/hostname": "kwok-node-0", "kubernetes.io/os": "linux", "type": "kwok"}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110")},
		},
	}
	if _, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// Scenario 2: a Deployment in a restricted namespace becomes Available with
// hardened pods (controller-manager, scheduler and a kwok node). The pods
// come from the ReplicaSet controller, with only generateName.
func TestDeploymentBecomesAvailable(t *testing.T) {
	requireCluster(t)
	if !withNodes {
		missingTool(t, "kube-controller-manager, kube-scheduler or kwok not built: run e2e/build-binaries.sh")
	}
	ctx := context.Background()
	fakeNode(t, ctx)
	restrictedNamespace(t, "s2-apps", nil)
	replicas := int32(2)
	name := uniqueName("web")
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}}},
			},
		},
	}
	start := time.Now()
	if _, err := admin.AppsV1().Deployments("s2-apps").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		got, err := admin.AppsV1().Deployments("s2-apps").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		available := false
		for _, c := range got.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue && got.Status.AvailableReplicas == replicas {
				available = true
			}
		}
		if available {
			break
		}
		if time.Now().After(deadline) {
			pods, _ := admin.CoreV1().Pods("s2-apps").List(ctx, metav1.ListOptions{})
			events, _ := admin.CoreV1().Events("s2-apps").List(ctx, metav1.ListOptions{})
			for _, e := range events.Items {
				t.Logf("event %s %s: %s", e.InvolvedObject.Name, e.Reason, e.Message)
			}
			t.Fatalf("Deployment not Available after 90s: status %+v, %d pods", got.Status, len(pods.Items))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("Deployment Available in %s", time.Since(start).Round(100*time.Millisecond))
	pods, err := admin.CoreV1().Pods("s2-apps").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if m := hardenedFields(p); len(m) > 0 {
			t.Errorf("pod %s lacks %v", p.Name, m)
		}
		if p.Status.Phase == corev1.PodRunning {
			running++
		}
	}
	if running < int(replicas) {
		t.Errorf("%d running pods, want %d", running, replicas)
	}
}
