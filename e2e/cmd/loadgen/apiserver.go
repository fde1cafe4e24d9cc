package main

// `loadgen apiserver`: pod-create latency through a real kube-apiserver
// (e2e/cluster: etcd and kube-apiserver on loopback, no controllers), with
// the real webhook registered and without, alternating, at each
// concurrency; the difference is what the webhook adds.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/pod-hardener/pod-hardener/e2e/cluster"
	"github.com/pod-hardener/pod-hardener/mutate"
)

const webhookName = "pod-hardener"

// CreateRun is one batch of pod creates.
type CreateRun struct {
	Concurrency int     `json:"concurrency"`
	Webhook     bool    `json:"webhook"`
	Round       int     `json:"round"`
	Namespace   string  `json:"namespace"`
	Creates     int     `json:"creates"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"firstError,omitempty"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"createsPerSecond"`
	P50         float64 `json:"p50ms"`
	P90         float64 `json:"p90ms"`
	P99         float64 `json:"p99ms"`
	Max         float64 `json:"maxms"`
	Mean        float64 `json:"meanms"`
	Hardened    int     `json:"hardened"`
	// CPU per create, µs, of each control-plane process and the webhook.
	CPUPerCreate map[string]float64 `json:"cpuPerCreateUs"`
}

// CreateSummary compares with and without the webhook at one concurrency.
type CreateSummary struct {
	Concurrency int     `json:"concurrency"`
	Rounds      int     `json:"rounds"`
	WithoutP50  float64 `json:"withoutP50ms"`
	WithP50     float64 `json:"withP50ms"`
	AddedP50    float64 `json:"addedP50ms"`
	WithoutP99  float64 `json:"withoutP99ms"`
	WithP99     float64 `json:"withP99ms"`
	AddedP99    float64 `json:"addedP99ms"`
	WithoutRate float64 `json:"withoutCreatesPerSecond"`
	WithRate    float64 `json:"withCreatesPerSecond"`
	Errors      int     `json:"errors"`
	// AddedP50Rounds is with-minus-without of p50 in each round.
	AddedP50Rounds []float64 `json:"addedP50msByRound"`
	Met            bool      `json:"targetMet"`
}

func apiserverCmd(args []string) error {
	fs := flag.NewFlagSet("apiserver", flag.ExitOnError)
	binary := fs.String("binary", "bin/pod-hardener", "the webhook binary")
	config := fs.String("config", "config.yaml", "the webhook's config.yaml")
	binDir := fs.String("bin-dir", cluster.DefaultBinDir(), "etcd and kube-apiserver (e2e/build-binaries.sh)")
	creates := fs.Int("creates", 1000, "pod creates per run")
	concs := fs.String("concurrency", "10,50", "concurrent creators, one run each")
	rounds := fs.Int("rounds", 3, "rounds: with and without the webhook, order alternating")
	warm := fs.Int("warmup", 100, "creates before each run, not measured")
	jsonOut := fs.String("json", "", "write the results as JSON to FILE")
	dirFlag := fs.String("dir", "", "cluster directory (default: a temporary one, removed)")
	keep := fs.Bool("keep", false, "keep the cluster directory")
	_ = fs.Parse(args)
	if *creates < 1 || *creates > 20000 || *rounds < 1 || *rounds > 10 {
		return errors.New("--creates must be 1..20000 and --rounds 1..10")
	}
	var concurrency []int
	for _, s := range splitList(*concs) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			return fmt.Errorf("--concurrency: bad value %q", s)
		}
		concurrency = append(concurrency, n)
	}
	bin, err := filepath.Abs(*binary)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("webhook binary: %w (run `make build`)", err)
	}
	cfgText, err := os.ReadFile(*config)
	if err != nil {
		return err
	}
	dir := *dirFlag
	if dir == "" {
		if dir, err = os.MkdirTemp("", "pod-hardener-apiserver-load-"); err != nil {
			return err
		}
		if !*keep {
			defer os.RemoveAll(dir)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{BinDir: *binDir, Dir: dir, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer c.Stop()
	hook, err := c.StartWebhook(ctx, bin, string(cfgText), 0)
	if err != nil {
		return err
	}
	ca, err := hook.CABundle()
	if err != nil {
		return err
	}
	restCfg, err := cluster.RestConfig(c.Kubeconfig)
	if err != nil {
		return err
	}
	// No client-side throttling: the latency is the server's.
	restCfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	restCfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "loadgen: control plane and webhook up in %s\n", time.Since(start).Round(time.Millisecond))
	if err := ensureNamespace(ctx, cs, "load-probe"); err != nil {
		return err
	}
	pids := c.PIDs()

	registered := false
	setWebhook := func(on bool) error {
		if on {
			if err := cluster.Register(ctx, cs, cluster.Registration{Name: webhookName, URL: hook.URL, CABundle: ca}); err != nil {
				return err
			}
		} else if err := cluster.Unregister(ctx, cs, webhookName); err != nil {
			return err
		}
		registered = on
		return waitRegistration(ctx, cs, on)
	}
	defer func() {
		if registered {
			_ = cluster.Unregister(context.Background(), cs, webhookName)
		}
	}()

	var runs []*CreateRun
	for _, conc := range concurrency {
		for round := 1; round <= *rounds; round++ {
			order := []bool{false, true}
			if round%2 == 0 {
				order = []bool{true, false}
			}
			for _, on := range order {
				if err := setWebhook(on); err != nil {
					return err
				}
				if hook.Proc.Exited() {
					return fmt.Errorf("the webhook exited (log %s)", hook.Proc.Log)
				}
				label := "without"
				if on {
					label = "with"
				}
				ns := fmt.Sprintf("load-c%d-r%d-%s", conc, round, label)
				if err := ensureNamespace(ctx, cs, ns); err != nil {
					return err
				}
				if _, _, err := createPods(ctx, cs, ns, *warm, conc, nil); err != nil {
					return fmt.Errorf("warm-up in %s: %w", ns, err)
				}
				cpu0 := cpuOf(pids)
				t0 := time.Now()
				r := &CreateRun{Concurrency: conc, Webhook: on, Round: round, Namespace: ns, Creates: *creates}
				lat, hardened, err := createPods(ctx, cs, ns, *creates, conc, r)
				el := time.Since(t0)
				if err != nil {
					return err
				}
				cpu1 := cpuOf(pids)
				r.Seconds, r.Hardened = el.Seconds(), hardened
				r.PerSecond = float64(len(lat)) / el.Seconds()
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				r.P50, r.P90, r.P99 = pct(lat, .5), pct(lat, .9), pct(lat, .99)
				if len(lat) > 0 {
					r.Max = ms(lat[len(lat)-1])
					var sum time.Duration
					for _, l := range lat {
						sum += l
					}
					r.Mean = ms(sum / time.Duration(len(lat)))
				}
				r.CPUPerCreate = map[string]float64{}
				for name := range cpu0 {
					r.CPUPerCreate[name] = float64(cpu1[name]-cpu0[name]) / clockTicks / float64(*creates) * 1e6
				}
				runs = append(runs, r)
				fmt.Fprintf(os.Stderr, "  concurrency %2d round %d %-7s webhook: %6.0f creates/s  p50 %6.2f  p90 %6.2f  p99 %7.2f  max %7.2f ms  errors %d  hardened %d  CPU/create µs: apiserver %.0f etcd %.0f webhook %.0f\n",
					conc, round, label, r.PerSecond, r.P50, r.P90, r.P99, r.Max, r.Errors, r.Hardened,
					r.CPUPerCreate["kube-apiserver"], r.CPUPerCreate["etcd"], r.CPUPerCreate["pod-hardener"])
				if on && hardened != *creates-r.Errors {
					return fmt.Errorf("%s: only %d of %d created pods were hardened", ns, hardened, *creates)
				}
				if !on && hardened != 0 {
					return fmt.Errorf("%s: %d pods hardened with the webhook unregistered", ns, hardened)
				}
				// Unscheduled pods go at once; etcd stays small between runs.
				zero := int64(0)
				if err := cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
					return fmt.Errorf("deleting the pods of %s: %w", ns, err)
				}
			}
		}
	}

	var sums []*CreateSummary
	for _, conc := range concurrency {
		s := &CreateSummary{Concurrency: conc, Rounds: *rounds}
		var wp50, op50, wp99, op99, wr, or []float64
		byRound := map[int][2]*CreateRun{}
		for _, r := range runs {
			if r.Concurrency != conc {
				continue
			}
			s.Errors += r.Errors
			p := byRound[r.Round]
			if r.Webhook {
				wp50, wp99, wr = append(wp50, r.P50), append(wp99, r.P99), append(wr, r.PerSecond)
				p[1] = r
			} else {
				op50, op99, or = append(op50, r.P50), append(op99, r.P99), append(or, r.PerSecond)
				p[0] = r
			}
			byRound[r.Round] = p
		}
		s.WithP50, s.WithoutP50, s.WithP99, s.WithoutP99 = median(wp50), median(op50), median(wp99), median(op99)
		s.WithRate, s.WithoutRate = median(wr), median(or)
		s.AddedP50, s.AddedP99 = s.WithP50-s.WithoutP50, s.WithP99-s.WithoutP99
		for round := 1; round <= *rounds; round++ {
			if p := byRound[round]; p[0] != nil && p[1] != nil {
				s.AddedP50Rounds = append(s.AddedP50Rounds, p[1].P50-p[0].P50)
			}
		}
		s.Met = s.AddedP50 < 2 && s.Errors == 0
		sums = append(sums, s)
	}
	fmt.Printf("\npod creates through kube-apiserver %s (etcd, kube-apiserver, webhook and client on this machine: %s)\n", cluster.Version, machine())
	fmt.Printf("%d creates per run, medians over %d rounds, with/without alternating\n", *creates, *rounds)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\twithout p50 ms\twith p50 ms\tadded p50 ms\twithout p99 ms\twith p99 ms\tadded p99 ms\twithout creates/s\twith creates/s\terrors\t")
	for _, s := range sums {
		fmt.Fprintf(tw, "%d\t%.2f\t%.2f\t%+.2f\t%.2f\t%.2f\t%+.2f\t%.0f\t%.0f\t%d\t\n", s.Concurrency, s.WithoutP50, s.WithP50, s.AddedP50,
			s.WithoutP99, s.WithP99, s.AddedP99, s.WithoutRate, s.WithRate, s.Errors)
	}
	tw.Flush()
	for _, s := range sums {
		v := "MET   "
		if !s.Met {
			v = "MISSED"
		}
		fmt.Printf("  %s target at concurrency %d: the webhook adds < 2 ms to p50 (added %+.2f ms; by round %s)\n", v, s.Concurrency, s.AddedP50, fmtList(s.AddedP50Rounds))
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"machine": machine(), "kubernetes": cluster.Version, "runs": runs, "summary": sums}, "", "  ")
		return os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

func fmtList(v []float64) string {
	s := "["
	for i, x := range v {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%+.2f", x)
	}
	return s + "]"
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func cpuOf(pids map[string]int) map[string]int64 {
	out := map[string]int64{}
	for name, pid := range pids {
		if t, err := cpuTicks(pid); err == nil {
			out[name] = t
		}
	}
	return out
}

// ensureNamespace makes a namespace and its default ServiceAccount (no
// controller makes it here, and the ServiceAccount admission needs it).
func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := cs.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the default ServiceAccount of %s: %w", name, err)
	}
	return nil
}

// loadPod is the small pod as a ReplicaSet would create it.
func loadPod() *corev1.Pod {
	p := userPod("", 2, 1, 0)
	p.GenerateName = "web-"
	p.TypeMeta = metav1.TypeMeta{}
	return p
}

// waitRegistration waits until the API server calls the webhook (on) or
// no longer does (off): a dry-run create comes back hardened or not.
func waitRegistration(ctx context.Context, cs kubernetes.Interface, on bool) error {
	deadline := time.Now().Add(60 * time.Second)
	streak := 0
	for time.Now().Before(deadline) {
		p, err := cs.CoreV1().Pods("load-probe").Create(ctx, loadPod(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && (p.Annotations[mutate.AnnotationHardened] != "") == on {
			if streak++; streak == 3 {
				return nil
			}
		} else {
			streak = 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the webhook registration (on=%v) never took effect", on)
}

// createPods creates n pods with conc workers and returns each create's
// latency and how many came back hardened. Errors go into r (when given)
// or fail the call.
func createPods(ctx context.Context, cs kubernetes.Interface, ns string, n, conc int, r *CreateRun) ([]time.Duration, int, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var hardened int
	var errs int
	var first error
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, n/conc+1)
			h := 0
			for next.Add(1) <= int64(n) {
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				t0 := time.Now()
				p, err := cs.CoreV1().Pods(ns).Create(cctx, loadPod(), metav1.CreateOptions{})
				d := time.Since(t0)
				cancel()
				if err != nil {
					mu.Lock()
					errs++
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				mine = append(mine, d)
				if p.Annotations[mutate.AnnotationHardened] != "" {
					h++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			hardened += h
			mu.Unlock()
		}()
	}
	wg.Wait()
	if r != nil {
		r.Errors = errs
		if first != nil {
			r.FirstError = first.Error()
		}
		return lat, hardened, nil
	}
	if first != nil {
		return nil, 0, fmt.Errorf("%d errors, first: %w", errs, first)
	}
	return lat, hardened, nil
}
