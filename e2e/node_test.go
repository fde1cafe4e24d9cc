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
	psaapi "k8s.io/pod-security-admission/api"

	"github.com/pod-hardener/pod-hardener/e2e/cluster"
	"github.com/pod-hardener/pod-hardener/internal/pss"
	"github.com/pod-hardener/pod-hardener/mutate"
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

// archetype is a workload shape the node runs three times: as the image
// asks, hardened in a restricted namespace, and hardened with image lookup.
type archetype struct {
	cluster.Archetype
	nodeOutcome
}

// nodeOutcome is what the node makes of an archetype per column: "Ready",
// or a part of the kubelet's reason; and the image decisions the webhook
// with image lookup makes (its pod-hardener.io/image-decisions).
type nodeOutcome struct {
	plain, hardened, images string
	decisions               string
}

const (
	runsAsRoot = "container has runAsNonRoot and image will run as root"
	nonNumeric = "container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root"
	bindEACCES = "bind: permission denied"
	readOnly   = "read-only file system"
	outcomeOK  = cluster.Ready
)

// root65532 is what rootImages: assign gives a root image under the
// default profile: its uid and gid, and the pod's fsGroup.
const root65532 = "fsGroup=65532@pod,root-assign=65532:65532@"

// nodeOutcomes are the asserted outcomes per archetype: without Pod
// Security and webhook, hardened without image lookup, hardened with it.
var nodeOutcomes = map[string]nodeOutcome{
	"web-root": {outcomeOK, runsAsRoot, "exit 1: archetype: open /var/cache/app/archetype-started: " + readOnly,
		root65532 + "web-root,unprivileged-port-start=80@pod"},
	"app-root":        {outcomeOK, runsAsRoot, outcomeOK, root65532 + "app-root"},
	"named-user":      {outcomeOK, fmt.Sprintf(nonNumeric, "node"), outcomeOK, "user=1000:1000@named-user"},
	"numeric-nonroot": {outcomeOK, outcomeOK, outcomeOK, ""},
	"volume-root":     {outcomeOK, runsAsRoot, outcomeOK, root65532 + "volume-root,volume=/data@volume-root"},
	"nonroot-port-80": {bindEACCES, bindEACCES, outcomeOK, "unprivileged-port-start=80@pod"},
	"sleeper-root":    {outcomeOK, runsAsRoot, outcomeOK, root65532 + "sleeper-root"},
	"db-root-drop": {outcomeOK, runsAsRoot, "exit 1: archetype: could not change permissions of the data directory: chmod /var/lib/postgresql/data: operation not permitted",
		root65532 + "db-root-drop,volume=/var/lib/postgresql/data@db-root-drop"},
	"named-user-layered": {outcomeOK, fmt.Sprintf(nonNumeric, "jenkins"), outcomeOK,
		"user=1001:1001@named-user-layered,volume=/var/jenkins_home@named-user-layered"},
	// containerd mounts an image's VOLUMEs itself, writable under a
	// read-only root: without lookup the VOLUME is writable already.
	"numeric-user-volume": {outcomeOK, outcomeOK, outcomeOK, "volume=/var/lib/grafana@numeric-user-volume"},
}

func archetypes(binary string) []archetype {
	var out []archetype
	for _, a := range cluster.Archetypes(binary) {
		want, ok := nodeOutcomes[a.Name]
		if !ok {
			panic("no expected outcome for archetype " + a.Name)
		}
		out = append(out, archetype{a, want})
	}
	return out
}

// nodeHardenedNS enforces Pod Security restricted, with the webhook.
const nodeHardenedNS = "node-hardened"

// nodeImagesNS enforces restricted too; only the webhook that looks up
// images (imagesConfig) sees it.
const nodeImagesNS = "node-images"

// nodeRootWarnNS is seen by that webhook only, under a profile whose
// rootImages is warn: the prediction of a refusal, against the kubelet's.
const nodeRootWarnNS = "node-images-rootwarn"

// imagesConfig is the suite's config with image lookup on, plain HTTP to
// the node's registry, and a profile keeping root images as they are.
func imagesConfig(registry string) string {
	c := strings.Replace(suiteConfig, "\nprofiles:\n", "\nprofiles:\n  - name: restricted-rootwarn\n    extends: restricted\n    rootImages: warn\n", 1)
	c = strings.Replace(c, "\nnamespaces:\n", "\nnamespaces:\n  - names: [\""+nodeRootWarnNS+"\"]\n    profile: restricted-rootwarn\n", 1)
	return c + "server:\n  imageLookup: true\n  imageLookupInsecureRegistries: [\"" + registry + "\"]\n"
}

// outcome is what the kubelet made of one Deployment's pod.
type outcome struct {
	result  string        // "Ready", or the kubelet's reason
	toReady time.Duration // Deployment created to pod Ready
	podIP   string
	pod     *corev1.Pod
}

// userFixes are what a user adds to a pod whose image no admission-time
// decision can fix, and the archetype each is for: the annotation naming
// the paths nginx writes, and postgres's documented PGDATA in a
// subdirectory of its volume, which initdb creates and owns.
var userFixes = []struct {
	name, archetype, fix string
	edit                 func(*corev1.Pod)
}{
	{"web-root-paths", "web-root", "annotation pod-hardener.io/writable-paths: /var/cache/app,/var/run", func(p *corev1.Pod) {
		p.Annotations = map[string]string{"pod-hardener.io/writable-paths": "/var/cache/app,/var/run"}
	}},
	{"db-root-drop-pgdata", "db-root-drop", "env PGDATA=/var/lib/postgresql/data/pgdata", func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Env = append(c.Env, corev1.EnvVar{Name: "PGDATA", Value: "/var/lib/postgresql/data/pgdata"})
	}},
}

// TestRealNodeArchetypes runs each workload archetype on the real node:
// as a Deployment plain and hardened by the suite's webhook (no image
// lookup), and as a pod hardened by a second webhook that looks up images
// in the node's registry, created directly so that the warnings the API
// server returns are the ones of the pod the kubelet runs. It asserts the
// outcome of each (Ready, or the kubelet's reason: the
// CreateContainerConfigError message, or the crash's exit code and the
// program's last log line), the image decisions and their warnings; then
// what a user's fix does for the archetypes no image decision fixes, and
// that a refusal the webhook predicts (rootImages: warn) is the kubelet's.
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
	images := startImagesWebhook(t, ctx, n.Registry.Addr)
	fetched0, cached0 := lookups(t, images, "fetched"), lookups(t, images, "cached")
	lookupLatency(t, images)
	if err := ensureNamespace(ctx, nodePlainNS, nil); err != nil {
		t.Fatal(err)
	}
	restrictedNamespace(t, nodeHardenedNS, nil)
	restrictedNamespace(t, nodeImagesNS, nil)
	restrictedNamespace(t, nodeRootWarnNS, nil)
	namespaces := []string{nodePlainNS, nodeHardenedNS, nodeImagesNS, nodeRootWarnNS}
	t.Cleanup(func() { removeNodeWorkloads(t, namespaces) })

	created := map[string]time.Time{}
	for _, ns := range namespaces[:2] {
		for _, a := range arch {
			if _, err := admin.AppsV1().Deployments(ns).Create(ctx, nodeDeployment(a, refs[a.Name], n.Name), metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating %s in %s: %v", a.Name, ns, err)
			}
			created[ns+"/"+a.Name] = time.Now()
		}
	}
	// One client per column, warnings taken after each create: the
	// warnings of exactly that pod.
	cs, warned := clientWithWarnings(t)
	warns := map[string]string{}
	createPod := func(ns string, p *corev1.Pod) {
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod %s in %s: %v", p.Name, ns, err)
		}
		created[ns+"/"+p.Name] = time.Now()
		warns[ns+"/"+p.Name] = warned.take()
	}
	byName := map[string]archetype{}
	for _, a := range arch {
		byName[a.Name] = a
		createPod(nodeImagesNS, nodePod(a.Name, a, refs[a.Name], n.Name))
	}
	cold := lookupLatency(t, images)
	for _, f := range userFixes {
		a := byName[f.archetype]
		p := nodePod(f.name, a, refs[a.Name], n.Name)
		f.edit(p)
		createPod(nodeImagesNS, p)
	}
	// The same pods again, dry-run: every image is in the cache now.
	for _, a := range arch {
		if _, err := cs.CoreV1().Pods(nodeImagesNS).Create(ctx, nodePod(a.Name+"-again", a, refs[a.Name], n.Name),
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Fatalf("dry-run %s again: %v", a.Name, err)
		}
	}
	warned.take()
	warm := lookupLatency(t, images)
	if f, c := lookups(t, images, "fetched")-fetched0, lookups(t, images, "cached")-cached0; f != float64(len(arch)) || c != float64(len(arch)+len(userFixes)) {
		t.Errorf("image lookups: %v fetched, %v cached; want each of the %d images fetched once, then %d answered from the cache",
			f, c, len(arch), len(arch)+len(userFixes))
	}
	// Another namespace's pull credentials differ: the tag is resolved
	// again (a fetch), its digest's facts come from the cache.
	rootWarn := byName["app-root"]
	createPod(nodeRootWarnNS, nodePod(rootWarn.Name, rootWarn, refs[rootWarn.Name], n.Name))
	otherNS := lookupLatency(t, images)

	got, pending := waitOutcomes(ctx, created, 4*time.Minute)
	if len(pending) > 0 {
		t.Fatalf("no outcome after 4 minutes for %s (kubelet log %s)", strings.Join(pending, "; "), filepath.Join(env.Dir, "logs", "kubelet.log"))
	}

	for _, a := range arch {
		plain, hardened, withImages := got[nodePlainNS+"/"+a.Name], got[nodeHardenedNS+"/"+a.Name], got[nodeImagesNS+"/"+a.Name]
		t.Logf("%-18s plain: %-28s hardened: %-28s with image lookup: %s", a.Name, describe(plain), describe(hardened), describe(withImages))
		if !matches(plain.result, a.plain) {
			t.Errorf("%s without pod-hardener: got %q, want %q", a.Name, plain.result, a.plain)
		}
		if !matches(hardened.result, a.hardened) {
			t.Errorf("%s hardened without image lookup: got %q, want %q", a.Name, hardened.result, a.hardened)
		}
		if !matches(withImages.result, a.images) {
			t.Errorf("%s hardened with image lookup: got %q, want %q", a.Name, withImages.result, a.images)
		}
		if plain.pod.Annotations["pod-hardener.io/hardened"] != "" {
			t.Errorf("%s in %s was hardened: the namespace is meant to be left out of the webhook", a.Name, nodePlainNS)
		}
		for _, o := range []outcome{hardened, withImages} {
			if o.pod.Annotations["pod-hardener.io/hardened"] == "" {
				t.Errorf("%s in %s carries no pod-hardener.io/hardened annotation", a.Name, o.pod.Namespace)
			}
			if f := pss.Evaluate(o.pod, psaapi.LevelRestricted); len(f) > 0 {
				t.Errorf("%s in %s as admitted fails restricted: %v", a.Name, o.pod.Namespace, f)
			}
		}
		if d, ok := hardened.pod.Annotations[mutate.AnnotationImageDecisions]; ok {
			t.Errorf("%s hardened without image lookup has image decisions %q", a.Name, d)
		}
		if d := withImages.pod.Annotations[mutate.AnnotationImageDecisions]; d != a.decisions {
			t.Errorf("%s image decisions: got %q, want %q", a.Name, d, a.decisions)
		}
		checkDecisionWarnings(t, a.Name, refs[a.Name], a.decisions, warns[nodeImagesNS+"/"+a.Name])
		// A Ready server answers from the host, across the veth pair and
		// the node's CNI bridge.
		for _, o := range []outcome{plain, withImages} {
			if o.result == outcomeOK && a.Port != 0 {
				if err := httpOK(ctx, fmt.Sprintf("http://%s:%d/healthz", o.podIP, a.Port)); err != nil {
					t.Errorf("%s in %s: %v", a.Name, o.pod.Namespace, err)
				}
			}
		}
	}
	for _, f := range userFixes {
		o := got[nodeImagesNS+"/"+f.name]
		t.Logf("%-18s with image lookup and %s: %s", f.archetype, f.fix, describe(o))
		if o.result != outcomeOK {
			t.Errorf("%s with %s, hardened with image lookup: got %q, want Ready", f.archetype, f.fix, o.result)
		}
	}
	// rootImages: warn admits the root image as it is, predicting the
	// refusal the kubelet then makes.
	o, w := got[nodeRootWarnNS+"/"+rootWarn.Name], warns[nodeRootWarnNS+"/"+rootWarn.Name]
	t.Logf("%-18s with image lookup, rootImages: warn: %s", rootWarn.Name, describe(o))
	prediction := fmt.Sprintf("container %s will not start: image %q runs as root", rootWarn.Name, refs[rootWarn.Name])
	if !matches(o.result, runsAsRoot) || !strings.Contains(w, prediction) {
		t.Errorf("rootImages: warn: kubelet %q, warnings %q; want the kubelet's %q predicted by %q", o.result, w, runsAsRoot, prediction)
	}
	t.Logf("image lookup, mean per review: cold (fetched): %s; warm (cached): %s; tag resolved again for other credentials: %s", cold, warm, otherNS)
	if path := os.Getenv("POD_HARDENER_NODE_DOC"); path != "" {
		if err := writeArchetypeTable(path, arch, got); err != nil {
			t.Fatal(err)
		}
	}
}

// startImagesWebhook runs a second pod-hardener with image lookup on,
// registered for the image-lookup namespaces only (the suite's webhook
// leaves them out), and removes it when the test ends.
func startImagesWebhook(t *testing.T, ctx context.Context, registry string) *cluster.Webhook {
	t.Helper()
	w, err := env.StartWebhookNamed(ctx, "pod-hardener-images", hook.Binary, imagesConfig(registry), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	ca, err := w.CABundle()
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.Register(ctx, admin, cluster.Registration{Name: "pod-hardener-images", URL: w.URL, CABundle: ca,
		Namespaces: []string{nodeImagesNS, nodeRootWarnNS}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Unregister(context.Background(), admin, "pod-hardener-images") })
	// Registrations take effect shortly after they are written.
	restrictedNamespace(t, nodeImagesNS, nil)
	for deadline := time.Now().Add(30 * time.Second); ; {
		p, err := admin.CoreV1().Pods(nodeImagesNS).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: registry + "/probe/none:e2e"}}}},
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && p.Annotations["pod-hardener.io/hardened"] != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the image-lookup webhook's registration never took effect: %v (log %s)", err, w.Proc.Log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return w
}

// latency is what a webhook's reviews spent since the last read: n
// reviews, their lookups' total and the reviews' total, in seconds.
type latency struct {
	n, lookup, review float64
}

func (l latency) String() string {
	if l.n == 0 {
		return "no reviews"
	}
	mean := func(s float64) time.Duration {
		return time.Duration(s / l.n * float64(time.Second)).Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("lookup %s of %s per review over %d reviews (%.2fx the review without its lookup)",
		mean(l.lookup), mean(l.review), int(l.n), l.review/(l.review-l.lookup))
}

var lastLookup = map[string]latency{}

// lookupLatency reads the webhook's lookup and review histograms, less
// what the previous read saw.
func lookupLatency(t *testing.T, w *cluster.Webhook) latency {
	t.Helper()
	now := latency{metricSumAt(t, w.MetricsURL, "pod_hardener_image_lookup_duration_seconds_count"),
		metricSumAt(t, w.MetricsURL, "pod_hardener_image_lookup_duration_seconds_sum"),
		metricSumAt(t, w.MetricsURL, "kubewebhook_mutating_webhook_review_duration_seconds_sum")}
	prev := lastLookup[w.MetricsURL]
	lastLookup[w.MetricsURL] = now
	return latency{now.n - prev.n, now.lookup - prev.lookup, now.review - prev.review}
}

func lookups(t *testing.T, w *cluster.Webhook, result string) float64 {
	t.Helper()
	return metricSumAt(t, w.MetricsURL, "pod_hardener_image_lookups_total", `result="`+result+`"`)
}

// decisionWarnings are what a warning of each image decision says.
var decisionWarnings = map[string]string{
	"root-assign":             "runs as root, which runAsNonRoot refuses",
	"user":                    "runs as the named user",
	"volume":                  "writable emptyDir",
	"fsGroup":                 "pod: fsGroup=",
	"unprivileged-port-start": "net.ipv4.ip_unprivileged_port_start=",
}

// checkDecisionWarnings checks that each image decision came back as a
// warning on the pod's create, naming the image where it is the
// container's.
func checkDecisionWarnings(t *testing.T, name, ref, decisions, warnings string) {
	t.Helper()
	if decisions == "" {
		return
	}
	for _, d := range strings.Split(decisions, ",") {
		kind, _, _ := strings.Cut(d, "=")
		phrase := decisionWarnings[kind]
		found := false
		for _, w := range strings.Split(warnings, "\n") {
			if strings.Contains(w, phrase) && (strings.HasSuffix(d, "@pod") || strings.Contains(w, fmt.Sprintf("%q", ref))) {
				found = true
			}
		}
		if phrase == "" || !found {
			t.Errorf("%s: no warning for the image decision %s on create; warnings:\n%s", name, d, warnings)
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
	one := int32(1)
	tmpl := nodePodTemplate(a.Name, a, image, node)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: a.Name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels},
			Template: tmpl,
		},
	}
}

// nodePod is the archetype's pod on its own, named and labelled app=name.
func nodePod(name string, a archetype, image, node string) *corev1.Pod {
	tmpl := nodePodTemplate(name, a, image, node)
	tmpl.ObjectMeta.Name = name
	return &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
}

func nodePodTemplate(name string, a archetype, image, node string) corev1.PodTemplateSpec {
	grace := int64(1)
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{a.Container(image)},
			NodeSelector:                  map[string]string{corev1.LabelHostname: node},
			Tolerations:                   []corev1.Toleration{{Key: cluster.NodeTaint, Operator: corev1.TolerationOpExists}},
			TerminationGracePeriodSeconds: &grace,
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

// writeArchetypeTable rewrites the tables between the markers in path:
// the archetypes' three columns, and the user's fixes.
func writeArchetypeTable(path string, arch []archetype, got map[string]outcome) error {
	var b strings.Builder
	b.WriteString("| archetype | behaves like | image | no Pod Security, no webhook | restricted, pod-hardener without image lookup | restricted, pod-hardener with image lookup | image decisions |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, a := range arch {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", a.Name, a.Like, imageSummary(a),
			cell(got[nodePlainNS+"/"+a.Name].result), cell(got[nodeHardenedNS+"/"+a.Name].result),
			cell(got[nodeImagesNS+"/"+a.Name].result), cell(strings.ReplaceAll(got[nodeImagesNS+"/"+a.Name].pod.Annotations[mutate.AnnotationImageDecisions], ",", ", ")))
	}
	b.WriteString("\nWhat a user adds where no image decision is enough, hardened with image lookup:\n\n")
	b.WriteString("| archetype | the user adds | restricted, pod-hardener with image lookup |\n| --- | --- | --- |\n")
	for _, f := range userFixes {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", f.archetype, cell(f.fix), cell(got[nodeImagesNS+"/"+f.name].result))
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
	if _, ok := a.Image.Base["etc/passwd"]; ok {
		parts[0] += " (renumbered: /etc/passwd of the base layer and of the upper one differ)"
	}
	for _, e := range a.Image.Env {
		k, v, _ := strings.Cut(strings.TrimPrefix(e, cluster.ArchetypeEnv), "=")
		switch k {
		case "WRITE":
			parts = append(parts, "writes "+v)
		case "DATA_ENV":
			parts = append(parts, "makes $"+v+" mode 0700 and writes it")
		case "DROP_TO":
			parts = append(parts, "as root gives its data directory to "+v+" and switches to them")
		case "NOT_ROOT":
			parts = append(parts, "refuses uid 0")
		}
	}
	if len(a.Image.Volumes) > 0 {
		parts = append(parts, "VOLUME "+strings.Join(a.Image.Volumes, ","))
	}
	return strings.Join(parts, ", ")
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
