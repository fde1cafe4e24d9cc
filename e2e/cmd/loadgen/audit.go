package main

// `loadgen audit`: wall time and peak RSS of `pod-hardener audit` over N
// pods on a real kube-apiserver (etcd and kube-apiserver on loopback, no
// controllers: the pods stay Pending, which is all an audit reads), beside
// a bare paginated list of the same pods (`loadgen list-pods`: the same
// client, the same page size, every page decoded and dropped) in the same
// run. The two alternate within each round. Then the continuous audit
// (serve --audit-interval) on the same pods (auditlive.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/pod-hardener/pod-hardener/e2e/cluster"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// AuditRun is one timed process.
type AuditRun struct {
	What      string  `json:"what"` // audit or list
	Round     int     `json:"round"`
	WallSec   float64 `json:"wallSeconds"`
	CPUSec    float64 `json:"cpuSeconds"`
	MaxRSSMiB float64 `json:"maxRSSMiB"`
}

func auditCmd(args []string) error {
	fs := flag.NewFlagSet("audit", flag.ExitOnError)
	binary := fs.String("binary", "bin/pod-hardener", "the pod-hardener binary")
	config := fs.String("config", "config.yaml", "config.yaml for the audit")
	binDir := fs.String("bin-dir", cluster.DefaultBinDir(), "etcd and kube-apiserver (e2e/build-binaries.sh)")
	pods := fs.Int("pods", 10000, "pods to create (10 namespaces)")
	rounds := fs.Int("rounds", 3, "rounds of list and audit, alternating")
	pageSize := fs.Int("page-size", 500, "list page size, for both")
	jsonOut := fs.String("json", "", "write the results as JSON to FILE")
	liveInterval := fs.Duration("live-interval", 10*time.Second, "serve --audit-interval for the continuous audit's figures (0: skip them)")
	livePasses := fs.Int("live-passes", 3, "passes of the continuous audit measured after the first")
	_ = fs.Parse(args)
	if *pods < 100 || *pods > 50000 || *rounds < 1 || *rounds > 10 {
		return errors.New("--pods must be 100..50000, --rounds 1..10")
	}
	bin, err := filepath.Abs(*binary)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("binary: %w (run `make build`)", err)
	}
	cfg, err := loadConfig(*config)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "pod-hardener-audit-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{BinDir: *binDir, Dir: dir, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer c.Stop()
	restCfg, err := cluster.RestConfig(c.Kubeconfig)
	if err != nil {
		return err
	}
	restCfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	restCfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := populate(ctx, cs, cfg, *pods); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "audit load: %d pods created in %s\n", *pods, time.Since(t0).Round(time.Millisecond))

	page := fmt.Sprint(*pageSize)
	// GNU time forks the measured process from its own small one: a child
	// of this process would inherit this process's peak RSS in its rusage
	// (Go starts children with vfork, and Linux carries the old memory's
	// high-water mark across exec into ru_maxrss).
	timeBin, err := exec.LookPath("time")
	if _, err2 := os.Stat("/usr/bin/time"); err2 == nil {
		timeBin, err = "/usr/bin/time", nil
	}
	if err != nil {
		return fmt.Errorf("GNU time is needed for the peak RSS (apt-get install time): %w", err)
	}
	rssFile := filepath.Join(dir, "maxrss")
	runOne := func(what string, round int) (*AuditRun, []byte, error) {
		args := []string{"-f", "%M %U %S", "-o", rssFile}
		if what == "audit" {
			args = append(args, bin, "audit", "--kubeconfig", c.Kubeconfig, "--config", *config, "--page-size", page, "-o", "json")
		} else {
			args = append(args, self, "list-pods", "--kubeconfig", c.Kubeconfig, "--page-size", page)
		}
		cmd := exec.Command(timeBin, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return nil, nil, fmt.Errorf("%s: %v\n%.2000s", what, err, errb.String())
		}
		wall := time.Since(start)
		b, err := os.ReadFile(rssFile)
		if err != nil {
			return nil, nil, err
		}
		var kib, user, sys float64
		if _, err := fmt.Sscan(string(b), &kib, &user, &sys); err != nil {
			return nil, nil, fmt.Errorf("reading GNU time's output %q: %w", b, err)
		}
		return &AuditRun{What: what, Round: round, WallSec: wall.Seconds(), CPUSec: user + sys, MaxRSSMiB: kib / 1024}, out.Bytes(), nil
	}
	var runs []*AuditRun
	for round := 1; round <= *rounds; round++ {
		order := []string{"list", "audit"}
		if round%2 == 0 {
			order = []string{"audit", "list"}
		}
		for _, what := range order {
			r, out, err := runOne(what, round)
			if err != nil {
				return err
			}
			if err := checkCount(what, out, *pods); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "  round %d %-5s wall %.3f s, CPU %.3f s, max RSS %.1f MiB\n", round, what, r.WallSec, r.CPUSec, r.MaxRSSMiB)
			runs = append(runs, r)
		}
	}
	byWhat := map[string][]*AuditRun{}
	for _, r := range runs {
		byWhat[r.What] = append(byWhat[r.What], r)
	}
	med := func(what string, f func(*AuditRun) float64) float64 { return medianBy(byWhat[what], f) }
	wall := func(r *AuditRun) float64 { return r.WallSec }
	rss := func(r *AuditRun) float64 { return r.MaxRSSMiB }
	cpu := func(r *AuditRun) float64 { return r.CPUSec }
	aw, lw := med("audit", wall), med("list", wall)
	fmt.Printf("audit over %d pods (page size %d), median of %d rounds:\n", *pods, *pageSize, *rounds)
	fmt.Printf("  bare paginated list: wall %.3f s, CPU %.3f s, max RSS %.1f MiB\n", lw, med("list", cpu), med("list", rss))
	fmt.Printf("  pod-hardener audit:  wall %.3f s, CPU %.3f s, max RSS %.1f MiB\n", aw, med("audit", cpu), med("audit", rss))
	// Each round's two runs are close in time: on a shared machine their
	// ratio drifts less than the ratio of the medians.
	var paired []float64
	for i, l := range byWhat["list"] {
		paired = append(paired, byWhat["audit"][i].WallSec/l.WallSec)
	}
	fmt.Printf("  audit / list wall time: %.2fx of the medians, %.2fx the median of each round's ratio (%s) (target within 2x)\n",
		aw/lw, median(paired), fmtList(paired))
	fmt.Printf("  audit / list CPU: %.2fx; audit max RSS %.1f MiB (target under 150)\n", med("audit", cpu)/med("list", cpu), med("audit", rss))
	var live *LiveAudit
	if *liveInterval > 0 {
		if live, err = measureLive(ctx, bin, c.Kubeconfig, *config, dir, *pods, *liveInterval, *livePasses); err != nil {
			return err
		}
		lc := med("list", cpu)
		fmt.Printf("continuous audit (serve --audit-interval %s) over the same pods:\n", live.Interval)
		fmt.Printf("  informer filled and every pod evaluated once: wall %.3f s, CPU %.3f s (%.2fx the one-shot audit's CPU, %.2fx the list's)\n",
			live.FirstWallSec, live.FirstCPUSec, live.FirstCPUSec/med("audit", cpu), live.FirstCPUSec/lc)
		fmt.Printf("  each further pass: CPU %.3f s (%.2fx the list's; %.1f%% of a core at this interval), reported pass time %.3f s\n",
			live.PassCPUSec, live.PassCPUSec/lc, 100*live.CPUShareSteady, live.PassReportSec)
		fmt.Printf("  the pass after a config reload (every pod evaluated again): CPU %.3f s (%.2fx the one-shot audit's), reported pass time %.3f s\n",
			live.ReloadCPUSec, live.ReloadCPUSec/med("audit", cpu), live.ReloadReportSec)
		fmt.Printf("  RSS %.1f MiB steady, %.1f MiB peak; the webhook without the audit %.1f MiB (+%.1f MiB); one-shot audit peak %.1f MiB\n",
			live.SteadyRSSMiB, live.PeakRSSMiB, live.BareRSSMiB, live.SteadyRSSMiB-live.BareRSSMiB, med("audit", rss))
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"machine": machine(), "pods": *pods, "pageSize": *pageSize, "runs": runs,
			"wallRatio": aw / lw, "pairedWallRatios": paired, "live": live}, "", "  ")
		return os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

// checkCount makes sure each process saw every pod: a fast run that read
// less is no measurement.
func checkCount(what string, out []byte, want int) error {
	var got int
	if what == "audit" {
		var r struct {
			Totals struct {
				Pods int `json:"pods"`
			} `json:"totals"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("audit output: %w", err)
		}
		got = r.Totals.Pods
	} else if _, err := fmt.Sscan(string(out), &got); err != nil {
		return fmt.Errorf("list-pods output %q: %w", out, err)
	}
	if got != want {
		return fmt.Errorf("%s saw %d pods, want %d", what, got, want)
	}
	return nil
}

// listPodsCmd is the baseline: a paginated list of every pod, each page
// decoded and dropped; it prints how many pods it read.
func listPodsCmd(args []string) error {
	fs := flag.NewFlagSet("list-pods", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig")
	pageSize := fs.Int64("page-size", 500, "list page size")
	_ = fs.Parse(args)
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	// The audit command's defaults, so both pay the same client.
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	n, token := 0, ""
	for {
		l, err := cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{Limit: *pageSize, Continue: token})
		if err != nil {
			return err
		}
		n += len(l.Items)
		if token = l.Continue; token == "" {
			break
		}
	}
	fmt.Println(n)
	return nil
}

// populate creates n pods over 10 namespaces, each namespace holding
// Deployments (a ReplicaSet owned by a Deployment, 40 pods each), Jobs of
// a CronJob (20 pods each) and bare pods in the ratio 8:1:1. Pods of the
// odd namespaces are stored as the webhook would have hardened them
// (the engine's patch applied with json-patch), the rest as written.
func populate(ctx context.Context, cs kubernetes.Interface, cfg *profiles.Config, n int) error {
	type job struct {
		ns  string
		pod *corev1.Pod
	}
	var jobs []job
	yes := true
	owner := func(apiVersion, kind, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: "x", Controller: &yes}}
	}
	perNS := n / 10
	for i := 0; i < 10; i++ {
		ns := fmt.Sprintf("audit-load-%d", i)
		if err := ensureNamespace(ctx, cs, ns); err != nil {
			return err
		}
		deployPods, jobPods := perNS*8/10, perNS/10
		for d := 0; d*40 < deployPods; d++ {
			rs := fmt.Sprintf("web-%d-7d9f8c6b5d", d)
			if _, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{Name: rs, OwnerReferences: owner("apps/v1", "Deployment", fmt.Sprintf("web-%d", d))},
				Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: loadPod().Spec}},
			}, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating ReplicaSet: %w", err)
			}
			for p := 0; p < 40 && d*40+p < deployPods; p++ {
				pod := loadPod()
				pod.GenerateName = rs + "-"
				pod.OwnerReferences = owner("apps/v1", "ReplicaSet", rs)
				jobs = append(jobs, job{ns, pod})
			}
		}
		for j := 0; j*20 < jobPods; j++ {
			name := fmt.Sprintf("nightly-%d", j)
			if _, err := cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owner("batch/v1", "CronJob", "nightly")},
				Spec: batchv1.JobSpec{Suspend: &yes, Template: corev1.PodTemplateSpec{Spec: func() corev1.PodSpec {
					s := loadPod().Spec
					s.RestartPolicy = corev1.RestartPolicyNever
					return s
				}()}},
			}, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating Job: %w", err)
			}
			for p := 0; p < 20 && j*20+p < jobPods; p++ {
				pod := loadPod()
				pod.GenerateName = name + "-"
				pod.OwnerReferences = owner("batch/v1", "Job", name)
				jobs = append(jobs, job{ns, pod})
			}
		}
		for b := 0; b < perNS-deployPods-jobPods; b++ {
			pod := loadPod()
			pod.GenerateName = "bare-"
			jobs = append(jobs, job{ns, pod})
		}
	}
	for i := range jobs {
		if ns := jobs[i].ns; ns[len(ns)-1]%2 == 1 {
			raw, err := json.Marshal(jobs[i].pod)
			if err != nil {
				return err
			}
			h, err := hardenLikeWebhook(cfg, profiles.Facts{Namespace: ns, NamespaceKnown: true}, raw, false)
			if err != nil {
				return err
			}
			jobs[i].pod = h
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				if _, err := cs.CoreV1().Pods(jobs[i].ns).Create(ctx, jobs[i].pod, metav1.CreateOptions{}); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("creating pod in %s: %w", jobs[i].ns, err)
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
