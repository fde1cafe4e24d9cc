package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pod-hardener/pod-hardener/e2e/cluster"
)

// nodePlainNS has neither Pod Security enforcement nor the webhook (the
// suite's registration leaves it out): does an image run at all?
const nodePlainNS = "node-plain"

// nodeOptions asks for a real node unless POD_HARDENER_NODE=0.
func nodeOptions(dir string) (*cluster.NodeOptions, string) {
	if os.Getenv("POD_HARDENER_NODE") == "0" {
		return nil, "POD_HARDENER_NODE=0 leaves the real node out"
	}
	o, err := cluster.PrepareNode(repoRoot(), dir)
	if err != nil {
		return nil, err.Error()
	}
	return o, ""
}

// requireNode skips where the machine cannot run containers, saying why,
// and fails where it should have but the node did not start.
func requireNode(t *testing.T) *cluster.Node {
	t.Helper()
	requireCluster(t)
	if n := env.Node(); n != nil {
		return n
	}
	var un *cluster.ErrNodeUnavailable
	switch {
	case nodeSkip != "":
		t.Skip("no real node: " + nodeSkip)
	case errors.As(env.NodeErr, &un):
		t.Skip(un.Error())
	default:
		t.Fatalf("the real node did not start: %v", env.NodeErr)
	}
	return nil
}

// archetype is a workload shape the node runs twice: as the image asks,
// and hardened in a restricted namespace.
type archetype struct {
	cluster.Archetype
	// Today's outcomes, without and with pod-hardener: "Ready", or a part
	// of the kubelet's reason.
	plain, hardened string
}

const (
	runsAsRoot = "container has runAsNonRoot and image will run as root"
	bindEACCES = "bind: permission denied"
	outcomeOK  = cluster.Ready
)

// todayOutcomes are the outcomes asserted per archetype, plain and hardened.
var todayOutcomes = map[string][2]string{
	"web-root":        {outcomeOK, runsAsRoot},
	"app-root":        {outcomeOK, runsAsRoot},
	"named-user":      {outcomeOK, "container has runAsNonRoot and image has non-numeric user (node), cannot verify user is non-root"},
	"numeric-nonroot": {outcomeOK, outcomeOK},
	"volume-root":     {outcomeOK, runsAsRoot},
	"nonroot-port-80": {bindEACCES, bindEACCES},
	"sleeper-root":    {outcomeOK, runsAsRoot},
}

func archetypes(binary string) []archetype {
	var out []archetype
	for _, a := range cluster.Archetypes(binary) {
		want, ok := todayOutcomes[a.Name]
		if !ok {
			panic("no expected outcome for archetype " + a.Name)
		}
		out = append(out, archetype{a, want[0], want[1]})
	}
	return out
}

// nodeHardenedNS enforces Pod Security restricted, with the webhook.
const nodeHardenedNS = "node-hardened"

// outcome is what the kubelet made of one Deployment's pod.
type outcome struct {
	result  string        // "Ready", or the kubelet's reason
	toReady time.Duration // Deployment created to pod Ready
	podIP   string
	pod     *corev1.Pod
}

// TestRealNodeArchetypes runs each workload archetype on the real node as
// a Deployment, plain and hardened, and asserts today's outcome for each:
// Ready, or the kubelet's reason (the CreateContainerConfigError message,
// or the crash's exit code and the program's last log line).
func TestRealNodeArchetypes(t *testing.T) {
	n := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "archetype")
	if err := cluster.BuildStatic(repoRoot(), "./e2e/cmd/archetype", bin); err != nil {
		t.Fatal(err)
	}
	arch := archetypes(bin)
	refs := map[string]string{}
	for _, a := range arch {
		ref, err := n.Registry.Push(ctx, a.Image)
		if err != nil {
			t.Fatal(err)
		}
		refs[a.Name] = ref
	}
	if err := ensureNamespace(ctx, nodePlainNS, nil); err != nil {
		t.Fatal(err)
	}
	restrictedNamespace(t, nodeHardenedNS, nil)
	namespaces := []string{nodePlainNS, nodeHardenedNS}
	t.Cleanup(func() { removeNodeWorkloads(t, namespaces) })

	created := map[string]time.Time{}
	for _, ns := range namespaces {
		for _, a := range arch {
			if _, err := admin.AppsV1().Deployments(ns).Create(ctx, nodeDeployment(a, refs[a.Name], n.Name), metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating %s in %s: %v", a.Name, ns, err)
			}
			created[ns+"/"+a.Name] = time.Now()
		}
	}
	got, pending := waitOutcomes(ctx, created, 4*time.Minute)
	if len(pending) > 0 {
		t.Fatalf("no outcome after 4 minutes for %s (kubelet log %s)", strings.Join(pending, "; "), filepath.Join(env.Dir, "logs", "kubelet.log"))
	}

	for _, a := range arch {
		plain, hardened := got[nodePlainNS+"/"+a.Name], got[nodeHardenedNS+"/"+a.Name]
		t.Logf("%-16s plain: %-60s hardened: %s", a.Name, describe(plain), describe(hardened))
		if !matches(plain.result, a.plain) {
			t.Errorf("%s without pod-hardener: got %q, today's outcome is %q", a.Name, plain.result, a.plain)
		}
		if !matches(hardened.result, a.hardened) {
			t.Errorf("%s hardened: got %q, today's outcome is %q", a.Name, hardened.result, a.hardened)
		}
		if plain.pod.Annotations["pod-hardener.io/hardened"] != "" {
			t.Errorf("%s in %s was hardened: the namespace is meant to be left out of the webhook", a.Name, nodePlainNS)
		}
		if hardened.pod.Annotations["pod-hardener.io/hardened"] == "" {
			t.Errorf("%s in %s carries no pod-hardener.io/hardened annotation", a.Name, nodeHardenedNS)
		}
		// A Ready server answers from the host, across the veth pair and
		// the node's CNI bridge.
		if plain.result == outcomeOK && a.Port != 0 {
			if err := httpOK(ctx, fmt.Sprintf("http://%s:%d/healthz", plain.podIP, a.Port)); err != nil {
				t.Errorf("%s: %v", a.Name, err)
			}
		}
	}
	if path := os.Getenv("POD_HARDENER_NODE_DOC"); path != "" {
		if err := writeArchetypeTable(path, arch, got); err != nil {
			t.Fatal(err)
		}
	}
}

func matches(got, want string) bool {
	if want == outcomeOK {
		return got == outcomeOK
	}
	return strings.Contains(got, want)
}

func describe(o outcome) string {
	if o.result == outcomeOK {
		return fmt.Sprintf("Ready in %s", o.toReady.Round(100*time.Millisecond))
	}
	return o.result
}

func nodeDeployment(a archetype, image, node string) *appsv1.Deployment {
	labels := map[string]string{"app": a.Name}
	one, grace := int32(1), int64(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: a.Name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{a.Container(image)},
					NodeSelector:                  map[string]string{corev1.LabelHostname: node},
					Tolerations:                   []corev1.Toleration{{Key: cluster.NodeTaint, Operator: corev1.TolerationOpExists}},
					TerminationGracePeriodSeconds: &grace,
				},
			},
		},
	}
}

// waitOutcomes polls each Deployment's pod until the kubelet has decided:
// Ready, a CreateContainerConfigError, or a crash (exit and last log
// line). It returns what is still undecided at the timeout, with the
// last state seen.
func waitOutcomes(ctx context.Context, created map[string]time.Time, timeout time.Duration) (map[string]outcome, []string) {
	got := map[string]outcome{}
	last := map[string]string{}
	deadline := time.Now().Add(timeout)
	for len(got) < len(created) && time.Now().Before(deadline) && ctx.Err() == nil {
		for key, start := range created {
			if _, done := got[key]; done {
				continue
			}
			ns, name, _ := strings.Cut(key, "/")
			pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
			if err != nil || len(pods.Items) == 0 {
				last[key] = fmt.Sprintf("no pod yet (%v)", err)
				continue
			}
			p := &pods.Items[0]
			if o, ok := decide(ctx, p); ok {
				o.toReady = time.Since(start)
				got[key] = o
			} else {
				last[key] = o.result
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	var pending []string
	for key := range created {
		if _, done := got[key]; !done {
			pending = append(pending, key+": "+last[key])
		}
	}
	return got, pending
}

func decide(ctx context.Context, p *corev1.Pod) (outcome, bool) {
	o := outcome{podIP: p.Status.PodIP, pod: p}
	var ok bool
	o.result, ok = cluster.PodOutcome(ctx, admin, p)
	return o, ok
}

func httpOK(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 3 * time.Second}
	var last error
	for i := 0; i < 5 && ctx.Err() == nil; i++ {
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == "ok" {
				return nil
			}
			err = fmt.Errorf("%s: %d %q", url, resp.StatusCode, b)
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("GET from the host: %w", last)
}

// removeNodeWorkloads deletes the Deployments and waits until the kubelet
// has stopped their pods, so teardown finds nothing left running.
func removeNodeWorkloads(t *testing.T, namespaces []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bg := metav1.DeletePropagationBackground
	for _, ns := range namespaces {
		_ = admin.AppsV1().Deployments(ns).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &bg}, metav1.ListOptions{})
		_ = admin.AppsV1().ReplicaSets(ns).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &bg}, metav1.ListOptions{})
		_ = admin.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	}
	for ctx.Err() == nil {
		left := 0
		for _, ns := range namespaces {
			pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err == nil {
				left += len(pods.Items)
			}
		}
		if left == 0 {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("pods of the node tests still present after 2 minutes; the node's teardown kills them")
}

// writeArchetypeTable rewrites the table between the markers in path.
func writeArchetypeTable(path string, arch []archetype, got map[string]outcome) error {
	var b strings.Builder
	b.WriteString("| archetype | behaves like | image | no Pod Security, no webhook | restricted, with pod-hardener |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, a := range arch {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", a.Name, a.Like, imageSummary(a),
			cell(got[nodePlainNS+"/"+a.Name].result), cell(got[nodeHardenedNS+"/"+a.Name].result))
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	const begin, end = "<!-- archetype table: begin -->\n", "<!-- archetype table: end -->"
	i, j := strings.Index(string(doc), begin), strings.Index(string(doc), end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q ... %q markers", path, strings.TrimSpace(begin), end)
	}
	out := string(doc[:i+len(begin)]) + b.String() + string(doc[j:])
	return os.WriteFile(path, []byte(out), 0o644)
}

func imageSummary(a archetype) string {
	parts := []string{"no USER (root)"}
	if a.Image.User != "" {
		parts[0] = "USER " + a.Image.User
	}
	if a.Port != 0 {
		parts = append(parts, fmt.Sprintf("listens :%d", a.Port))
	}
	for _, e := range a.Image.Env {
		if w, ok := strings.CutPrefix(e, cluster.ArchetypeEnv+"WRITE="); ok {
			parts = append(parts, "writes "+w)
		}
	}
	if len(a.Image.Volumes) > 0 {
		parts = append(parts, "VOLUME "+strings.Join(a.Image.Volumes, ","))
	}
	return strings.Join(parts, ", ")
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
