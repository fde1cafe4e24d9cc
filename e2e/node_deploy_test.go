package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"

	"github.com/pod-hardener/pod-hardener/e2e/cluster"
	"github.com/pod-hardener/pod-hardener/internal/ociimage"
	"github.com/pod-hardener/pod-hardener/internal/pss"
	"github.com/pod-hardener/pod-hardener/mutate"
)

// nodeInClusterNS enforces restricted; deploy/'s in-cluster webhook
// hardens its pods.
const nodeInClusterNS = "node-incluster"

// TestRealNodeDeploy installs pod-hardener as a user does: the image `make
// image` builds, pushed to the node's registry; `kubectl apply -k` of an
// overlay of deploy/self-signed whose one edit points the image there,
// with the component deploy/components/image-lookup;
// deploy/self-signed/make-certs.sh for the certificate. Both replicas must
// go Ready on the real node and pass restricted unaided, and the API
// server, calling them through their Service, must harden the archetype
// Deployments with no other webhook registered, looking their images up
// in the node's registry: each archetype's outcome is the one with image
// lookup of TestRealNodeArchetypes.
func TestRealNodeDeploy(t *testing.T) {
	n := requireNode(t)
	kubectl := filepath.Join(cluster.DefaultBinDir(), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		missingTool(t, fmt.Sprintf("kubectl %s not built (%v): run e2e/build-binaries.sh kubectl", cluster.Version, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()

	// The image, as `make image IMAGE=<registry>/pod-hardener:e2e` makes it.
	bin := filepath.Join(dir, "pod-hardener-static")
	if err := cluster.BuildPodHardenerStatic(repoRoot(), bin); err != nil {
		t.Fatal(err)
	}
	ref, err := n.Registry.Push(ctx, cluster.Image{Repo: "pod-hardener", Spec: ociimage.PodHardener(bin)})
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(ref, ":")
	repo, tag := ref[:i], ref[i+1:]

	// A user's overlay: deploy/self-signed with one image edit, what
	// `kustomize edit set image` writes, and the image-lookup component.
	overlay := filepath.Join(dir, "overlay")
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	base, err := filepath.Rel(overlay, filepath.Join(repoRoot(), "deploy", "self-signed"))
	if err != nil {
		t.Fatal(err)
	}
	lookup, err := filepath.Rel(overlay, filepath.Join(repoRoot(), "deploy", "components", "image-lookup"))
	if err != nil {
		t.Fatal(err)
	}
	kust := fmt.Sprintf("resources:\n- %s\ncomponents:\n- %s\nimages:\n- name: ghcr.io/pod-hardener/pod-hardener\n  newName: %s\n  newTag: %s\n", base, lookup, repo, tag)
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
		t.Fatal(err)
	}

	// deploy/'s MutatingWebhookConfiguration has the suite's name: take
	// the suite's out, so every hardening below is the in-cluster one.
	if err := cluster.Unregister(ctx, admin, "pod-hardener"); err != nil {
		t.Fatal(err)
	}
	restoreScheduling := scheduleOnRealNode(t, n.Name)
	t.Cleanup(func() {
		restoreSuiteWebhook(t)
		removeNodeWorkloads(t, []string{nodeInClusterNS})
		removeDeploy(t)
		restoreScheduling()
	})

	start := time.Now()
	run := func(name string, env []string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		t.Logf("%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(name), err)
		}
	}
	run(kubectl, nil, "--kubeconfig", env.Kubeconfig, "apply", "-k", overlay)
	run(filepath.Join(repoRoot(), "deploy", "self-signed", "make-certs.sh"),
		[]string{"KUBECTL=" + kubectl + " --kubeconfig " + env.Kubeconfig})

	pods := waitWebhookReplicas(t, ctx, n.Name, ref, 4*time.Minute)
	t.Logf("both replicas Ready on %s %s after kubectl apply", n.Name, time.Since(start).Round(100*time.Millisecond))
	for _, p := range pods {
		if f := pss.Evaluate(p, psaapi.LevelRestricted); len(f) > 0 {
			t.Errorf("the webhook's pod %s fails restricted: %v", p.Name, f)
		}
		if v, ok := p.Annotations["pod-hardener.io/hardened"]; ok {
			t.Errorf("the webhook's pod %s was hardened (%q): it must pass restricted unaided", p.Name, v)
		}
	}

	// The API server reaches the replicas through the Service: a dry-run
	// pod comes back hardened.
	restrictedNamespace(t, nodeInClusterNS, nil)
	probeStart := time.Now()
	for {
		p, err := admin.CoreV1().Pods(nodeInClusterNS).Create(ctx, plainPod("probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && p.Annotations["pod-hardener.io/hardened"] != "" {
			break
		}
		if time.Since(probeStart) > time.Minute {
			t.Fatalf("the API server never got a hardened pod from the in-cluster webhook: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	before := replicaMetric(t, pods, "pod_hardener_reviews_total", `result="hardened"`)
	fetchedBefore := replicaMetric(t, pods, "pod_hardener_image_lookups_total", `result="fetched"`)

	bin = filepath.Join(dir, "archetype")
	if err := cluster.BuildStatic(repoRoot(), "./e2e/cmd/archetype", bin); err != nil {
		t.Fatal(err)
	}
	arch := archetypes(bin)
	created := map[string]time.Time{}
	for _, a := range arch {
		ref, err := n.Registry.Push(ctx, a.Image)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.AppsV1().Deployments(nodeInClusterNS).Create(ctx, nodeDeployment(a, ref, n.Name), metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating %s: %v", a.Name, err)
		}
		created[nodeInClusterNS+"/"+a.Name] = time.Now()
	}
	got, pending := waitOutcomes(ctx, created, 4*time.Minute)
	if len(pending) > 0 {
		t.Fatalf("no outcome after 4 minutes for %s", strings.Join(pending, "; "))
	}
	for _, a := range arch {
		o := got[nodeInClusterNS+"/"+a.Name]
		t.Logf("%-18s hardened in-cluster, with image lookup: %s", a.Name, describe(o))
		if !matches(o.result, a.images) {
			t.Errorf("%s hardened by the in-cluster webhook with image lookup: got %q, want %q", a.Name, o.result, a.images)
		}
		if d := o.pod.Annotations[mutate.AnnotationImageDecisions]; d != a.decisions {
			t.Errorf("%s image decisions in-cluster: got %q, want %q", a.Name, d, a.decisions)
		}
		if m := hardenedFields(o.pod); len(m) > 0 {
			t.Errorf("%s as admitted lacks %v", a.Name, m)
		}
		if f := pss.Evaluate(o.pod, psaapi.LevelRestricted); len(f) > 0 {
			t.Errorf("%s as admitted fails restricted: %v", a.Name, f)
		}
	}
	// The replicas counted those reviews: the hardening was theirs.
	if after := replicaMetric(t, pods, "pod_hardener_reviews_total", `result="hardened"`); after < before+len(arch) {
		t.Errorf("the in-cluster replicas count %d hardened reviews, %d before the %d archetype pods", after, before, len(arch))
	}
	// They looked the images up: at least once each (a replica that had
	// not seen an image fetches it).
	if f := replicaMetric(t, pods, "pod_hardener_image_lookups_total", `result="fetched"`); f < fetchedBefore+len(arch) {
		t.Errorf("the in-cluster replicas fetched %d images, %d before the %d archetype pods", f, fetchedBefore, len(arch))
	}
}

// scheduleOnRealNode lets any pod land on the real node (deploy/ does not
// tolerate the suite's taint, and should not have to) and keeps new pods
// off the kwok node, whose "running" pods run nothing. The returned
// function puts both back.
func scheduleOnRealNode(t *testing.T, node string) func() {
	t.Helper()
	update := func(name string, change func(*corev1.Node)) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		t.Helper()
		for try := 0; try < 5; try++ {
			nd, err := admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			change(nd)
			if _, err = admin.CoreV1().Nodes().Update(ctx, nd, metav1.UpdateOptions{}); err == nil {
				return
			} else if !apierrors.IsConflict(err) {
				t.Fatalf("updating node %s: %v", name, err)
			}
		}
		t.Fatalf("updating node %s: conflicts", name)
	}
	var taints []corev1.Taint
	update(node, func(nd *corev1.Node) {
		taints = nd.Spec.Taints
		var keep []corev1.Taint
		for _, tn := range nd.Spec.Taints {
			if tn.Key != cluster.NodeTaint {
				keep = append(keep, tn)
			}
		}
		nd.Spec.Taints = keep
	})
	update("kwok-node-0", func(nd *corev1.Node) { nd.Spec.Unschedulable = true })
	return func() {
		update(node, func(nd *corev1.Node) { nd.Spec.Taints = taints })
		update("kwok-node-0", func(nd *corev1.Node) { nd.Spec.Unschedulable = false })
	}
}

// waitWebhookReplicas waits until deploy/'s Deployment has both replicas
// Ready on the real node, running ref, and returns their pods.
func waitWebhookReplicas(t *testing.T, ctx context.Context, node, ref string, timeout time.Duration) []*corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(timeout)
	sel := "app.kubernetes.io/name=pod-hardener"
	for {
		list, err := admin.CoreV1().Pods("pod-hardener").List(ctx, metav1.ListOptions{LabelSelector: sel})
		var ready []*corev1.Pod
		var states []string
		if err == nil {
			for i := range list.Items {
				p := &list.Items[i]
				r, _ := cluster.PodOutcome(ctx, admin, p)
				states = append(states, fmt.Sprintf("%s on %q: %s", p.Name, p.Spec.NodeName, r))
				if r == cluster.Ready && p.Spec.NodeName == node && p.Spec.Containers[0].Image == ref && p.DeletionTimestamp == nil {
					ready = append(ready, p)
				}
			}
		}
		if len(ready) == 2 {
			return ready
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if ev, err := admin.CoreV1().Events("pod-hardener").List(ctx, metav1.ListOptions{}); err == nil {
				for _, e := range ev.Items {
					t.Logf("event %s %s: %s", e.InvolvedObject.Name, e.Reason, e.Message)
				}
			}
			t.Fatalf("deploy/'s replicas not both Ready on %s after %s (%v): %s", node, timeout, err, strings.Join(states, "; "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// replicaMetric sums a metric over the replicas' metrics, read from the
// host at their pod IPs.
func replicaMetric(t *testing.T, pods []*corev1.Pod, name string, labels ...string) int {
	t.Helper()
	total := 0.0
	for _, p := range pods {
		total += metricSumAt(t, "http://"+p.Status.PodIP+":9090", name, labels...)
	}
	return int(total)
}

// removeDeploy deletes what deploy/ created (its webhook configuration is
// already replaced by the suite's) and waits until its namespace is gone,
// so its pods are stopped before the node's teardown.
func removeDeploy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_ = admin.RbacV1().ClusterRoleBindings().Delete(ctx, "pod-hardener", metav1.DeleteOptions{})
	_ = admin.RbacV1().ClusterRoles().Delete(ctx, "pod-hardener", metav1.DeleteOptions{})
	_ = admin.RbacV1().ClusterRoleBindings().Delete(ctx, "pod-hardener-image-lookup", metav1.DeleteOptions{})
	_ = admin.RbacV1().ClusterRoles().Delete(ctx, "pod-hardener-image-lookup", metav1.DeleteOptions{})
	if err := admin.CoreV1().Namespaces().Delete(ctx, "pod-hardener", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting namespace pod-hardener: %v", err)
		return
	}
	for ctx.Err() == nil {
		if _, err := admin.CoreV1().Namespaces().Get(ctx, "pod-hardener", metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("namespace pod-hardener still terminating after 2 minutes; the node's teardown stops its pods")
}
