// Command demo runs `make demo`: a local control plane with pod-hardener
// registered, a plain pod hardened in a restricted namespace, before and
// after; `demo down` stops it all.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

const stateFile = "state.json"

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
	PIDs       map[string]int `json:"pids"`
	Kubeconfig string         `json:"kubeconfig"`
}

func up(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return fmt.Errorf("a demo is already running from %s: run `make demo-down` first", dir)
	}
	ctx := context.Background()
	root, _ := os.Getwd()
	fmt.Println("==> starting etcd, kube-apiserver v1.37.2 (PodSecurity on) and pod-hardener on 127.0.0.1")
	c, err := cluster.Start(ctx, cluster.Options{Dir: dir, Detach: true, Log: os.Stdout})
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	w, err := c.StartWebhook(ctx, filepath.Join(root, "bin", "pod-hardener"), mustRead(filepath.Join(root, "config.yaml")), 0)
	if err != nil {
		return err
	}
	ca, err := w.CABundle()
	if err != nil {
		return err
	}
	admin, err := cluster.Client(c.Kubeconfig)
	if err != nil {
		return err
	}
	if err := cluster.Register(ctx, admin, cluster.Registration{Name: "pod-hardener", URL: w.URL, CABundle: ca, ExcludeNamespaces: []string{"demo-unprotected"}}); err != nil {
		return err
	}
	restricted := map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}
	for _, ns := range []string{"demo", "demo-unprotected"} {
		if err := namespace(ctx, admin, ns, restricted); err != nil {
			return err
		}
	}
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}}},
	}
	fmt.Println("\n==> the pod a user submits (BEFORE):")
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
			return fmt.Errorf("the webhook never hardened the demo pod: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	fmt.Println("\n==> with pod-hardener, the same pod is admitted; kubectl shows these warnings:")
	for _, w := range warns {
		fmt.Println("    Warning:", w)
	}
	fmt.Println("\n==> the pod as stored (AFTER), spec and annotations:")
	printYAML(map[string]any{"annotations": stored.Annotations, "spec": trim(stored.Spec)})

	pids := c.PIDs()
	b, _ := json.MarshalIndent(state{PIDs: pids, Kubeconfig: c.Kubeconfig}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, stateFile), b, 0o644); err != nil {
		return err
	}
	ok = true
	fmt.Printf(`
==> the cluster keeps running. Try your own workloads:
    export KUBECONFIG=%s
    kubectl create namespace mine && kubectl label namespace mine pod-security.kubernetes.io/enforce=restricted
    kubectl -n mine create serviceaccount default   # no controller-manager runs here to make it
    kubectl -n mine run nginx --image=nginx
    kubectl -n mine get pod nginx -o yaml
    (no kubelet runs here: pods are stored and admitted, not started)
    logs: %s
    stop it all: make demo-down
`, c.Kubeconfig, filepath.Join(dir, "logs"))
	return nil
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
	for name, pid := range s.PIDs {
		if err := syscall.Kill(-pid, syscall.SIGTERM); err == nil {
			fmt.Printf("stopped %s (pid %d)\n", name, pid)
		}
	}
	time.Sleep(2 * time.Second)
	for _, pid := range s.PIDs {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	return os.RemoveAll(dir)
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
