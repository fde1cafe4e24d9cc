// Command demo runs `make demo`: a local control plane with pod-hardener
// registered and, where the machine can run containers, a real node
// (kubelet, containerd) with a registry. It shows a plain pod hardened in a
// restricted namespace, before and after, and what the kubelet makes of
// it. `demo up` starts a process that holds the cluster (the node's
// registry and API forwarder live in it) and returns once all is shown;
// `demo down` asks that process to tear everything down, as the e2e suite
// does.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/pod-hardener/pod-hardener/e2e/cluster"
)

const (
	stateFile = "state.json"
	logFile   = "demo.log"
	// readyLine ends what `demo up` shows; the holder keeps running.
	readyLine = "demo: ready"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: demo up|down DIR")
		os.Exit(2)
	}
	dir, _ := filepath.Abs(os.Args[2])
	var err error
	switch os.Args[1] {
	case "up":
		err = up(dir)
	case "hold":
		err = hold(dir)
	case "down":
		err = down(dir)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type state struct {
	Holder     int            `json:"holder"`
	PIDs       map[string]int `json:"pids"`
	Kubeconfig string         `json:"kubeconfig"`
	NetNS      string         `json:"netns,omitempty"`
}

// up starts the holder in a session of its own, shows its output until it
// is ready, and returns; the holder keeps the cluster running.
func up(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return fmt.Errorf("a demo is already running from %s: run `make demo-down` first", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, logFile)
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(self, "hold", dir)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the demo: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	in, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer in.Close()
	r := bufio.NewReader(in)
	var partial string
	for {
		line, err := r.ReadString('\n')
		partial += line
		if err == io.EOF {
			select {
			case werr := <-exited:
				rest, _ := io.ReadAll(r)
				fmt.Print(partial + string(rest))
				return fmt.Errorf("the demo stopped before it was ready (%v); its log: %s", werr, logPath)
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return err
		}
		if strings.TrimSpace(partial) == readyLine {
			return nil
		}
		fmt.Print(partial)
		partial = ""
	}
}

// hold runs the demo and keeps it running until SIGTERM or SIGINT, then
// stops every process and tears the node down.
func hold(dir string) error {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP)
	c, err := show(dir)
	if c != nil {
		defer teardown(c)
	}
	if err != nil {
		return err
	}
	fmt.Println(readyLine)
	<-stop
	fmt.Println("demo: stopping")
	return nil
}

func teardown(c *cluster.Cluster) {
	n, pids := c.Node(), c.PIDs()
	c.Stop()
	for name, pid := range pids {
		fmt.Printf("demo: stopped %s (pid %d)\n", name, pid)
	}
	if n != nil {
		if _, err := os.Stat("/run/netns/" + n.NetNS); err == nil {
			fmt.Printf("demo: network namespace %s is still there\n", n.NetNS)
		} else {
			fmt.Printf("demo: node torn down: pods, containerd and kubelet stopped, mounts and network namespace %s removed\n", n.NetNS)
		}
		for k, was := range n.HostSysctls() {
			fmt.Printf("demo: host sysctl %s = %s (was %s before the kubelet started)\n", k, cluster.ReadSysctl(k), was)
		}
	}
	_ = os.Remove(filepath.Join(c.Dir, stateFile))
	fmt.Println("demo: stopped")
}

// show starts the cluster and shows what pod-hardener does; the cluster it
// returns runs on.
func show(dir string) (*cluster.Cluster, error) {
	ctx := context.Background()
	root, _ := os.Getwd()
	fmt.Println("==> starting etcd, kube-apiserver v1.37.2 (PodSecurity on), controller-manager, scheduler and pod-hardener on 127.0.0.1")
	opts := cluster.Options{Dir: dir, Controllers: true, Log: os.Stdout}
	if os.Getenv("POD_HARDENER_NODE") == "0" {
		fmt.Println("==> no real node: POD_HARDENER_NODE=0 leaves it out; pods are admitted but not started")
	} else if nodeOpts, err := cluster.PrepareNode(root, dir); err != nil {
		fmt.Println("==> no real node:", err)
	} else {
		nodeOpts.Untainted = true
		opts.Node = nodeOpts
		fmt.Println("==> and a real node: kubelet v1.37.2 and containerd in a network namespace of its own, images from a registry on this machine")
	}
	c, err := cluster.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	n := c.Node()
	if n == nil && c.NodeErr != nil {
		fmt.Println("==> pods are admitted but not started:", c.NodeErr)
	}
	config := mustRead(filepath.Join(root, "config.yaml"))
	if n != nil {
		// Image-aware hardening: the webhook reads each image's config
		// from the node's registry (config.yaml has no server: section).
		config += "\nserver:\n  imageLookup: true\n  imageLookupInsecureRegistries: [\"" + n.Registry.Addr + "\"]\n"
		fmt.Println("==> pod-hardener looks images up in the node's registry (server.imageLookup: true): it hardens for what each image's config says")
	}
	w, err := c.StartWebhook(ctx, filepath.Join(root, "bin", "pod-hardener"), config, 0)
	if err != nil {
		return c, err
	}
	ca, err := w.CABundle()
	if err != nil {
		return c, err
	}
	adminCfg, err := cluster.RestConfig(c.Kubeconfig)
	if err != nil {
		return c, err
	}
	// The warnings worth showing are printed below, once.
	adminCfg.WarningHandler = rest.NoWarnings{}
	admin, err := kubernetes.NewForConfig(adminCfg)
	if err != nil {
		return c, err
	}
	if err := cluster.Register(ctx, admin, cluster.Registration{Name: "pod-hardener", URL: w.URL, CABundle: ca, ExcludeNamespaces: []string{"demo-unprotected", "demo-plain"}}); err != nil {
		return c, err
	}
	restricted := map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}
	for ns, labels := range map[string]map[string]string{"demo": restricted, "demo-unprotected": restricted, "demo-plain": nil} {
		if err := namespace(ctx, admin, ns, labels); err != nil {
			return c, err
		}
	}
	web := corev1.Container{Name: "nginx", Image: "nginx:1.27"}
	var images map[string]string
	var arch map[string]cluster.Archetype
	if n != nil {
		if images, arch, err = pushArchetypes(ctx, root, dir, n.Registry); err != nil {
			return c, err
		}
		web = arch["web-root"].Container(images["web-root"])
		web.Name = "web"
	}
	grace := int64(1)
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{web}, TerminationGracePeriodSeconds: &grace},
	}
	if n != nil {
		// What nginx writes is in neither its image config nor its pod:
		// the one thing its user has to say.
		pod.Annotations = map[string]string{"pod-hardener.io/writable-paths": "/var/cache/app,/var/run"}
		fmt.Println("\n==> the pod a user submits (BEFORE); its image behaves like nginx: no USER (root), listens on :80, writes /var/cache/app and /var/run, which its annotation names:")
	} else {
		fmt.Println("\n==> the pod a user submits (BEFORE):")
	}
	printYAML(pod.Spec)

	fmt.Println("\n==> without pod-hardener, PodSecurity `restricted` rejects it:")
	if _, err := admin.CoreV1().Pods("demo-unprotected").Create(ctx, pod.DeepCopy(), metav1.CreateOptions{}); err != nil {
		fmt.Println("   ", err)
	} else {
		fmt.Println("    (unexpectedly admitted)")
	}

	cfg, _ := cluster.RestConfig(c.Kubeconfig)
	var warns []string
	cfg.WarningHandler = warningFunc(func(s string) { warns = append(warns, s) })
	cs, _ := kubernetes.NewForConfig(cfg)
	var stored *corev1.Pod
	deadline := time.Now().Add(30 * time.Second)
	for {
		warns = nil
		stored, err = cs.CoreV1().Pods("demo").Create(ctx, pod.DeepCopy(), metav1.CreateOptions{})
		if err == nil && stored.Annotations["pod-hardener.io/hardened"] != "" {
			break
		}
		if err == nil {
			_ = cs.CoreV1().Pods("demo").Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("the webhook never hardened the demo pod: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	fmt.Println("\n==> with pod-hardener, the same pod is admitted; kubectl shows these warnings:")
	for _, w := range warns {
		fmt.Println("    Warning:", w)
	}
	fmt.Println("\n==> the pod as stored (AFTER), spec and annotations:")
	printYAML(map[string]any{"annotations": stored.Annotations, "spec": trim(stored.Spec)})

	kubectl := filepath.Join(cluster.DefaultBinDir(), "kubectl") + " --kubeconfig " + c.Kubeconfig
	if n != nil {
		if err := runOnNode(ctx, admin, n, pod, arch, images); err != nil {
			return c, err
		}
	}
	s := state{Holder: os.Getpid(), PIDs: c.PIDs(), Kubeconfig: c.Kubeconfig}
	if n != nil {
		s.NetNS = n.NetNS
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, stateFile), b, 0o644); err != nil {
		return c, err
	}
	fmt.Printf("\n==> the cluster keeps running. kubectl v1.37.2 (built by make demo) with the demo's admin kubeconfig:\n")
	for _, cmd := range []string{
		"get pods -A -o wide",
		"-n demo describe pod web",
		"create namespace mine",
		"label namespace mine pod-security.kubernetes.io/enforce=restricted",
	} {
		fmt.Printf("    %s %s\n", kubectl, cmd)
	}
	if n != nil {
		fmt.Printf("    %s -n mine run app --image=%s\n", kubectl, images["numeric-nonroot"])
		fmt.Printf("    %s -n mine get pod app -o yaml\n", kubectl)
		fmt.Printf(`
==> the node pulls from a registry at %[1]s (plain HTTP, on this machine only). Push your own image there and run it:
    make image IMAGE=%[1]s/pod-hardener:dev
    %[2]s -n mine run mine --restart=Never --image=%[1]s/pod-hardener:dev -- --help
    %[2]s -n mine logs mine
    (any OCI client works: crane push image.tar %[1]s/me/app:1 --insecure)
    images already there: %[3]s
`, n.Registry.Addr, kubectl, strings.Join(sortedValues(images), ", "))
	} else {
		fmt.Printf("    %s -n mine run nginx --image=nginx\n", kubectl)
		fmt.Printf("    %s -n mine get pod nginx -o yaml\n", kubectl)
		fmt.Println("    (no kubelet runs here: pods are stored and admitted, not started)")
	}
	fmt.Printf(`    logs: %s
    stop it all: make demo-down
`, filepath.Join(dir, "logs"))
	return c, nil
}

// pushArchetypes builds the archetype program and pushes its images to
// the node's registry, returning their references by name.
func pushArchetypes(ctx context.Context, root, dir string, reg *cluster.Registry) (map[string]string, map[string]cluster.Archetype, error) {
	bin := filepath.Join(dir, "archetype")
	if err := cluster.BuildStatic(root, "./e2e/cmd/archetype", bin); err != nil {
		return nil, nil, err
	}
	refs, byName := map[string]string{}, map[string]cluster.Archetype{}
	for _, a := range cluster.Archetypes(bin) {
		ref, err := reg.Push(ctx, a.Image)
		if err != nil {
			return nil, nil, err
		}
		refs[a.Name], byName[a.Name] = ref, a
	}
	return refs, byName, nil
}

// runOnNode shows what the kubelet makes of the nginx-like pod and of a
// distroless-like one (numeric non-root USER), each without pod-hardener
// (no Pod Security, no webhook) and hardened, and of the nginx-like pod
// hardened without the annotation naming the paths it writes.
func runOnNode(ctx context.Context, admin kubernetes.Interface, n *cluster.Node, web *corev1.Pod, arch map[string]cluster.Archetype, images map[string]string) error {
	app := web.DeepCopy()
	app.Name = "app"
	c := arch["numeric-nonroot"].Container(images["numeric-nonroot"])
	c.Name = "app"
	app.Spec.Containers = []corev1.Container{c}
	plainWeb := web.DeepCopy()
	bare := web.DeepCopy()
	bare.Name, bare.Annotations = "web-bare", nil
	for _, p := range []*corev1.Pod{plainWeb, app.DeepCopy()} {
		if _, err := admin.CoreV1().Pods("demo-plain").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating %s in demo-plain: %w", p.Name, err)
		}
	}
	for _, p := range []*corev1.Pod{app.DeepCopy(), bare} {
		if _, err := admin.CoreV1().Pods("demo").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating %s in demo: %w", p.Name, err)
		}
	}
	rows := []struct{ ns, name, what string }{
		{"demo-plain", "web", "nginx-like (root), no Pod Security, no pod-hardener"},
		{"demo", "web", "nginx-like (root), restricted, hardened by pod-hardener"},
		{"demo", "web-bare", "the same without its writable-paths annotation, hardened"},
		{"demo-plain", "app", "distroless-like (USER 65532), no Pod Security, no pod-hardener"},
		{"demo", "app", "distroless-like (USER 65532), restricted, hardened by pod-hardener"},
	}
	fmt.Printf("\n==> on the real node %s (kubelet v1.37.2, containerd; network namespace %s), what the kubelet makes of them:\n", n.Name, n.NetNS)
	results := make([]string, len(rows))
	deadline := time.Now().Add(2 * time.Minute)
	for done := 0; done < len(rows) && time.Now().Before(deadline); {
		done = 0
		for i, r := range rows {
			p, err := admin.CoreV1().Pods(r.ns).Get(ctx, r.name, metav1.GetOptions{})
			if err != nil {
				results[i] = err.Error()
				continue
			}
			res, decided := cluster.PodOutcome(ctx, admin, p)
			if decided {
				done++
				if res == cluster.Ready {
					res = "Running, Ready (pod IP " + p.Status.PodIP + ")"
				} else {
					res = "NOT running: " + res
				}
			}
			results[i] = res
		}
		time.Sleep(500 * time.Millisecond)
	}
	for i, r := range rows {
		fmt.Printf("    %-15s %-68s %s\n", r.ns+"/"+r.name, r.what, results[i])
	}
	return nil
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

func down(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("no demo running")
		return nil
	}
	if err != nil {
		return err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("reading %s: %w", stateFile, err)
	}
	logPath := filepath.Join(dir, logFile)
	offset := fileSize(logPath)
	if s.Holder > 0 && syscall.Kill(s.Holder, syscall.SIGTERM) == nil {
		// The holder stops every process by PID and tears the node down.
		deadline := time.Now().Add(2 * time.Minute)
		for alive(s.Holder) && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if f, err := os.Open(logPath); err == nil {
			_, _ = f.Seek(offset, io.SeekStart)
			_, _ = io.Copy(os.Stdout, f)
			f.Close()
		}
	}
	// What is still running (a holder that died, or did not finish) is
	// killed by PID, and the node's namespace removed.
	for name, pid := range s.PIDs {
		if syscall.Kill(-pid, syscall.SIGKILL) == nil {
			fmt.Printf("killed %s (pid %d)\n", name, pid)
		}
	}
	if s.Holder > 0 && alive(s.Holder) {
		_ = syscall.Kill(s.Holder, syscall.SIGKILL)
	}
	if s.NetNS != "" {
		if _, err := os.Stat("/run/netns/" + s.NetNS); err == nil {
			if out, err := exec.Command("ip", "netns", "del", s.NetNS).CombinedOutput(); err != nil {
				fmt.Printf("removing network namespace %s: %v %s\n", s.NetNS, err, out)
			} else {
				fmt.Printf("removed network namespace %s\n", s.NetNS)
			}
		}
	}
	return os.RemoveAll(dir)
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie is gone for our purpose.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

func fileSize(p string) int64 {
	if fi, err := os.Stat(p); err == nil {
		return fi.Size()
	}
	return 0
}

func namespace(ctx context.Context, cs kubernetes.Interface, name string, labels map[string]string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = cs.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// trim drops what the API server adds on its own, so AFTER shows what
// pod-hardener changed.
func trim(s corev1.PodSpec) corev1.PodSpec {
	s = *s.DeepCopy()
	var vols []corev1.Volume
	for _, v := range s.Volumes {
		if !strings.HasPrefix(v.Name, "kube-api-access-") {
			vols = append(vols, v)
		}
	}
	s.Volumes = vols
	for i := range s.Containers {
		var ms []corev1.VolumeMount
		for _, m := range s.Containers[i].VolumeMounts {
			if !strings.HasPrefix(m.Name, "kube-api-access-") {
				ms = append(ms, m)
			}
		}
		s.Containers[i].VolumeMounts = ms
		s.Containers[i].TerminationMessagePath, s.Containers[i].TerminationMessagePolicy, s.Containers[i].ImagePullPolicy = "", "", ""
	}
	s.Tolerations, s.RestartPolicy, s.DNSPolicy, s.SchedulerName, s.ServiceAccountName, s.DeprecatedServiceAccount = nil, "", "", "", "", ""
	s.TerminationGracePeriodSeconds, s.Priority, s.EnableServiceLinks, s.PreemptionPolicy = nil, nil, nil, nil
	return s
}

func printYAML(v any) {
	b, err := yaml.Marshal(v)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		fmt.Println("    " + l)
	}
}

func mustRead(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	return string(b)
}

type warningFunc func(string)

func (f warningFunc) HandleWarningHeader(_ int, _ string, text string) { f(text) }

var _ rest.WarningHandler = warningFunc(nil)
