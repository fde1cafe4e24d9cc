// Package e2e proves pod-hardener against a real kube-apiserver v1.37.2:
// the API server calls the real `pod-hardener serve` binary over HTTPS,
// and its own PodSecurity admission judges the result.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pod-hardener/pod-hardener/e2e/cluster"
)

// The suite's shared cluster, started once in TestMain.
var (
	env       *cluster.Cluster
	hook      *cluster.Webhook
	admin     *kubernetes.Clientset
	adminCfg  *rest.Config
	skipWhy   string
	withNodes bool
	// nodeSkip is why the suite runs without a real node ("" when it asked
	// for one; env.NodeErr then says whether it started).
	nodeSkip string
)

// The webhook's config in the suite: a deny profile, a namespace rule, and
// one namespace allowed to carry exemptions by config.
const suiteConfig = `defaultProfile: restricted
profiles:
  - name: strict-deny
    extends: restricted
    onConflict: deny
  - name: strict-enforce
    extends: restricted
    onConflict: enforce
namespaces:
  - names: ["legacy-*"]
    profile: baseline
exemptions:
  namespaces: ["exempt-by-config"]
`

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin := cluster.DefaultBinDir()
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			skipWhy = fmt.Sprintf("%s not built in %s: run e2e/build-binaries.sh (make test does)", b, bin)
		}
	}
	if skipWhy != "" {
		if e2eRequired() {
			fmt.Fprintln(os.Stderr, "e2e:", skipWhy)
			return 1
		}
		return m.Run() // each test skips with the reason
	}
	withNodes = true
	for _, b := range []string{"kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			withNodes = false
		}
	}
	dir, err := os.MkdirTemp("", "pod-hardener-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	start := time.Now()
	opts := cluster.Options{BinDir: bin, Dir: dir, Controllers: withNodes, Log: os.Stderr}
	if opts.Node, nodeSkip = nodeOptions(dir); nodeSkip == "" && !withNodes {
		opts.Node, nodeSkip = nil, "the real node's tests run Deployments: kube-controller-manager and kube-scheduler are not built (run e2e/build-binaries.sh)"
	}
	env, err = cluster.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the control plane:", err)
		return 1
	}
	code := 1
	defer func() {
		env.Stop()
		if code == 0 && os.Getenv("POD_HARDENER_E2E_KEEP") == "" {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "e2e: logs kept in", filepath.Join(dir, "logs"))
		}
	}()
	if err := setup(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: control plane and webhook ready in %s (controllers and kwok node: %v)\n", time.Since(start).Round(time.Millisecond), withNodes)
	if n := env.Node(); n != nil {
		fmt.Fprintf(os.Stderr, "e2e: real node %s Ready %s after kubelet start (network namespace %s, registry %s)\n", n.Name, n.Ready.Round(time.Millisecond), n.NetNS, n.Registry.Addr)
	} else if env.NodeErr != nil {
		fmt.Fprintln(os.Stderr, "e2e: real node tests will skip or fail:", env.NodeErr)
	}
	code = m.Run()
	return code
}

func setup(ctx context.Context, dir string) error {
	var err error
	if adminCfg, err = cluster.RestConfig(env.Kubeconfig); err != nil {
		return err
	}
	// Tests that read warnings use clientWithWarnings; the rest stay quiet.
	adminCfg.WarningHandler = rest.NoWarnings{}
	if admin, err = kubernetes.NewForConfig(adminCfg); err != nil {
		return err
	}
	binary := filepath.Join(dir, "pod-hardener")
	if err := cluster.BuildPodHardener(repoRoot(), binary); err != nil {
		return err
	}
	if hook, err = env.StartWebhook(ctx, binary, suiteConfig, 0); err != nil {
		return err
	}
	if err := registerSuiteWebhook(ctx, ""); err != nil {
		return err
	}
	return waitHardening(ctx)
}

// registerSuiteWebhook (re)registers the webhook; failurePolicy "" is Fail.
func registerSuiteWebhook(ctx context.Context, failurePolicy string) error {
	ca, err := hook.CABundle()
	if err != nil {
		return err
	}
	r := cluster.Registration{Name: "pod-hardener", URL: hook.URL, CABundle: ca, ExcludeNamespaces: []string{"no-webhook", nodePlainNS, nodeImagesNS, nodeRootWarnNS}}
	if failurePolicy != "" {
		r.FailurePolicy = admissionFailurePolicy(failurePolicy)
	}
	return cluster.Register(ctx, admin, r)
}

// waitHardening waits until a new registration takes effect: a dry-run
// pod comes back hardened.
func waitHardening(ctx context.Context) error {
	ns := "webhook-probe"
	if err := ensureNamespace(ctx, ns, nil); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p, err := admin.CoreV1().Pods(ns).Create(ctx, plainPod("probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && p.Annotations["pod-hardener.io/hardened"] != "" {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the webhook registration never took effect (log %s)", hook.Proc.Log)
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(wd)
}

// e2eRequired: with POD_HARDENER_E2E=1 (make test) or under CI the suite
// must run in full, so a missing binary fails instead of skipping.
func e2eRequired() bool {
	return os.Getenv("CI") != "" || os.Getenv("POD_HARDENER_E2E") == "1"
}

// missingTool fails the test when the suite must run in full, and skips it
// otherwise; why says what to build.
func missingTool(t *testing.T, why string) {
	t.Helper()
	if e2eRequired() {
		t.Fatal(why)
	}
	t.Skip(why)
}

func requireCluster(t *testing.T) {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
}

// ensureNamespace creates a namespace with labels and a default
// ServiceAccount (the ServiceAccount admission plugin needs one).
func ensureNamespace(ctx context.Context, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", name, err)
		}
		cur, err := admin.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Labels = labels
		if _, err := admin.CoreV1().Namespaces().Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := admin.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating default ServiceAccount in %s: %w", name, err)
	}
	return nil
}

// restrictedNamespace makes a namespace where PodSecurity enforces
// restricted, plus extra labels.
func restrictedNamespace(t *testing.T, name string, extra map[string]string) {
	t.Helper()
	labels := map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}
	for k, v := range extra {
		labels[k] = v
	}
	if err := ensureNamespace(context.Background(), name, labels); err != nil {
		t.Fatal(err)
	}
}

func plainPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}}},
	}
}

// warnings collects the admission warnings a client sees, as kubectl shows.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) joined() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.list, "\n")
}

// take returns the warnings seen so far, and forgets them.
func (w *warnings) take() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.Join(w.list, "\n")
	w.list = nil
	return s
}

// clientWithWarnings returns an admin client that records warnings.
func clientWithWarnings(t *testing.T) (*kubernetes.Clientset, *warnings) {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(adminCfg)
	cfg.WarningHandler = w
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs, w
}
