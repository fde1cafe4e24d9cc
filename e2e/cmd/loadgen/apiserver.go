package main

// `loadgen apiserver`: pod-create latency through a real kube-apiserver
// (e2e/cluster: etcd and kube-apiserver on loopback, no controllers) with
// no webhook registered, with the floor registered (it answers "allowed"
// with no patch: what calling any webhook costs), with the floor answering
// a one-operation patch (floor-patch: what any mutating webhook costs the
// API server, which applies the patch and re-runs its mutating admission),
// and with the real pod-hardener registered; the configurations alternate
// within each round. The difference to "none" is what a webhook adds.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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

// The webhook configurations compared.
const (
	hookNone       = "none"
	hookFloor      = "floor"
	hookFloorPatch = "floor-patch"
	hookOurs       = "ours"
)

// CreateRun is one batch of pod creates.
type CreateRun struct {
	Concurrency int     `json:"concurrency"`
	Webhook     string  `json:"webhook"`
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
	// CPU per create, µs, of each process: etcd, kube-apiserver,
	// pod-hardener, floor, loadgen (the client).
	CPUPerCreate map[string]float64 `json:"cpuPerCreateUs"`
	// OtherCores: CPU of every other process on the machine, in cores.
	OtherCores float64 `json:"otherCores"`
	// Reviews by result (pod_hardener_reviews_total) during the run, per
	// create: more than 1 means the API server called the webhook again.
	ReviewsPerCreate map[string]float64 `json:"reviewsPerCreate,omitempty"`
	// ClosedConns counts connections to the webhook the API server closed
	// during the run (new TIME_WAIT sockets): each is a TLS handshake.
	ClosedConns int `json:"webhookConnsClosed"`
}

// CreateSummary is one concurrency: medians over rounds per configuration.
type CreateSummary struct {
	Concurrency int                           `json:"concurrency"`
	Rounds      int                           `json:"rounds"`
	By          map[string]*CreateRun         `json:"byWebhook"`
	Added       map[string]map[string]float64 `json:"addedVsNone"`
	AddedRounds map[string][]float64          `json:"addedP50msByRound"`
	Errors      int                           `json:"errors"`
	Met         bool                          `json:"targetMet"`
}

func apiserverCmd(args []string) error {
	fs := flag.NewFlagSet("apiserver", flag.ExitOnError)
	binary := fs.String("binary", "bin/pod-hardener", "the webhook binary")
	config := fs.String("config", "config.yaml", "the webhook's config.yaml")
	binDir := fs.String("bin-dir", cluster.DefaultBinDir(), "etcd and kube-apiserver (e2e/build-binaries.sh)")
	creates := fs.Int("creates", 1000, "pod creates per run")
	concs := fs.String("concurrency", "1,10,50", "concurrent creators, one run each")
	hooks := fs.String("webhooks", "none,floor,floor-patch,ours", "configurations compared: none, floor, floor-patch, ours")
	rounds := fs.Int("rounds", 3, "rounds; the configurations' order alternates")
	warm := fs.Int("warmup", 100, "creates before each run, not measured")
	http2 := fs.Bool("webhook-http2", false, "serve the webhook with HTTP/2 (server.http2 in its config)")
	jsonOut := fs.String("json", "", "write the results as JSON to FILE")
	dirFlag := fs.String("dir", "", "cluster directory (default: a temporary one, removed)")
	keep := fs.Bool("keep", false, "keep the cluster directory")
	_ = fs.Parse(args)
	if *creates < 1 || *creates > 20000 || *rounds < 1 || *rounds > 10 || *warm < 0 || *warm > 5000 {
		return errors.New("--creates must be 1..20000, --rounds 1..10, --warmup 0..5000")
	}
	var concurrency []int
	for _, s := range splitList(*concs) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			return fmt.Errorf("--concurrency: bad value %q", s)
		}
		concurrency = append(concurrency, n)
	}
	configs := splitList(*hooks)
	for _, h := range configs {
		if h != hookNone && h != hookFloor && h != hookFloorPatch && h != hookOurs {
			return fmt.Errorf("--webhooks: unknown %q", h)
		}
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
	if *http2 {
		cfgText = append(cfgText, []byte("\nserver:\n  http2: true\n")...)
	}
	self, err := os.Executable()
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
	floorPort := cluster.FreePort()
	if _, err := c.Run("floor", self, "floor-server", "--listen", fmt.Sprintf("127.0.0.1:%d", floorPort),
		"--cert", filepath.Join(hook.CertsDir, "tls.crt"), "--key", filepath.Join(hook.CertsDir, "tls.key")); err != nil {
		return err
	}
	floorURL := fmt.Sprintf("https://127.0.0.1:%d/mutate", floorPort)
	floorPatchPort := cluster.FreePort()
	if _, err := c.Run("floor-patch", self, "floor-server", "--patch", "--listen", fmt.Sprintf("127.0.0.1:%d", floorPatchPort),
		"--cert", filepath.Join(hook.CertsDir, "tls.crt"), "--key", filepath.Join(hook.CertsDir, "tls.key")); err != nil {
		return err
	}
	floorPatchURL := fmt.Sprintf("https://127.0.0.1:%d/mutate", floorPatchPort)
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
	probeCfg := rest.CopyConfig(restCfg)
	warns := &warningLog{}
	probeCfg.WarningHandler = warns
	probe, err := kubernetes.NewForConfig(probeCfg)
	if err != nil {
		return err
	}
	if err := ensureNamespace(ctx, cs, "load-probe"); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "loadgen: control plane, webhook and floor up in %s\n", time.Since(start).Round(time.Millisecond))
	pids := c.PIDs()
	pids["loadgen"] = os.Getpid()

	registered := false
	setWebhook := func(which string) error {
		switch which {
		case hookNone:
			if err := cluster.Unregister(ctx, cs, webhookName); err != nil {
				return err
			}
			registered = false
		default:
			url := map[string]string{hookOurs: hook.URL, hookFloor: floorURL, hookFloorPatch: floorPatchURL}[which]
			if err := cluster.Register(ctx, cs, cluster.Registration{Name: webhookName, URL: url, CABundle: ca}); err != nil {
				return err
			}
			registered = true
		}
		return waitRegistration(ctx, probe, warns, which)
	}
	defer func() {
		if registered {
			_ = cluster.Unregister(context.Background(), cs, webhookName)
		}
	}()

	var runs []*CreateRun
	for _, conc := range concurrency {
		for round := 1; round <= *rounds; round++ {
			order := append([]string(nil), configs...)
			if round%2 == 0 {
				for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
					order[i], order[j] = order[j], order[i]
				}
			}
			for _, which := range order {
				if err := setWebhook(which); err != nil {
					return err
				}
				if hook.Proc.Exited() {
					return fmt.Errorf("the webhook exited (log %s)", hook.Proc.Log)
				}
				ns := fmt.Sprintf("load-c%d-r%d-%s", conc, round, which)
				if err := ensureNamespace(ctx, cs, ns); err != nil {
					return err
				}
				if _, _, err := createPods(ctx, cs, ns, *warm, conc, nil); err != nil {
					return fmt.Errorf("warm-up in %s: %w", ns, err)
				}
				tw0 := timeWaits(hook.Port, floorPort, floorPatchPort)
				rev0 := reviewCounts(hook.MetricsURL)
				cpu0, p0 := cpuOf(pids), scanProcs()
				t0 := time.Now()
				r := &CreateRun{Concurrency: conc, Webhook: which, Round: round, Namespace: ns, Creates: *creates}
				lat, hardened, err := createPods(ctx, cs, ns, *creates, conc, r)
				el := time.Since(t0)
				if err != nil {
					return err
				}
				cpu1, p1 := cpuOf(pids), scanProcs()
				r.ClosedConns = timeWaits(hook.Port, floorPort, floorPatchPort) - tw0
				if which == hookOurs {
					r.ReviewsPerCreate = map[string]float64{}
					for k, v := range reviewCounts(hook.MetricsURL) {
						if d := v - rev0[k]; d > 0 {
							r.ReviewsPerCreate[k] = d / float64(*creates)
						}
					}
				}
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
				var mine []int
				for name := range cpu0 {
					mine = append(mine, pids[name])
					r.CPUPerCreate[name] = float64(cpu1[name]-cpu0[name]) / clockTicks / float64(*creates) * 1e6
				}
				r.OtherCores = otherCores(p0, p1, el, mine...)
				runs = append(runs, r)
				fmt.Fprintf(os.Stderr, "  c=%-2d round %d webhook %-5s: %5.0f creates/s  p50 %6.2f  p90 %6.2f  p99 %7.2f  max %7.2f ms  err %d  hardened %4d  CPU/create µs: apiserver %4.0f etcd %3.0f webhook %3.0f client %3.0f  conns closed %d  other %.2f cores\n",
					conc, round, which, r.PerSecond, r.P50, r.P90, r.P99, r.Max, r.Errors, r.Hardened,
					r.CPUPerCreate["kube-apiserver"], r.CPUPerCreate["etcd"], hookCPU(r),
					r.CPUPerCreate["loadgen"], r.ClosedConns, r.OtherCores)
				if len(r.ReviewsPerCreate) > 0 {
					fmt.Fprintf(os.Stderr, "      webhook reviews per create, by result: %v\n", r.ReviewsPerCreate)
				}
				if which == hookOurs && hardened != *creates-r.Errors {
					return fmt.Errorf("%s: only %d of %d created pods were hardened", ns, hardened, *creates)
				}
				if which != hookOurs && hardened != 0 {
					return fmt.Errorf("%s: %d pods hardened without our webhook registered", ns, hardened)
				}
				// Unscheduled pods go at once; etcd stays small between runs.
				zero := int64(0)
				if err := cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
					return fmt.Errorf("deleting the pods of %s: %w", ns, err)
				}
			}
		}
	}

	sums := summarizeCreates(runs, concurrency, configs, *rounds)
	printCreates(sums, configs, *creates, *rounds, *http2)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"machine": machine(), "kubernetes": cluster.Version, "creates": *creates,
			"rounds": *rounds, "webhookHTTP2": *http2, "runs": runs, "summary": sums}, "", "  ")
		return os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

func summarizeCreates(runs []*CreateRun, concurrency []int, configs []string, rounds int) []*CreateSummary {
	var sums []*CreateSummary
	for _, conc := range concurrency {
		s := &CreateSummary{Concurrency: conc, Rounds: rounds, By: map[string]*CreateRun{},
			Added: map[string]map[string]float64{}, AddedRounds: map[string][]float64{}}
		byRound := map[int]map[string]*CreateRun{}
		for _, which := range configs {
			var mine []*CreateRun
			for _, r := range runs {
				if r.Concurrency == conc && r.Webhook == which {
					mine = append(mine, r)
					s.Errors += r.Errors
					if byRound[r.Round] == nil {
						byRound[r.Round] = map[string]*CreateRun{}
					}
					byRound[r.Round][which] = r
				}
			}
			if len(mine) == 0 {
				continue
			}
			m := &CreateRun{Concurrency: conc, Webhook: which, CPUPerCreate: map[string]float64{}}
			get := func(f func(*CreateRun) float64) float64 { return medianBy(mine, f) }
			m.P50 = get(func(r *CreateRun) float64 { return r.P50 })
			m.P90 = get(func(r *CreateRun) float64 { return r.P90 })
			m.P99 = get(func(r *CreateRun) float64 { return r.P99 })
			m.Mean = get(func(r *CreateRun) float64 { return r.Mean })
			m.PerSecond = get(func(r *CreateRun) float64 { return r.PerSecond })
			m.OtherCores = get(func(r *CreateRun) float64 { return r.OtherCores })
			m.ClosedConns = int(get(func(r *CreateRun) float64 { return float64(r.ClosedConns) }))
			for name := range mine[0].CPUPerCreate {
				m.CPUPerCreate[name] = get(func(r *CreateRun) float64 { return r.CPUPerCreate[name] })
			}
			for _, r := range mine {
				m.Creates += r.Creates
				m.Errors += r.Errors
				if r.Max > m.Max {
					m.Max = r.Max
				}
			}
			s.By[which] = m
		}
		none := s.By[hookNone]
		for _, which := range []string{hookFloor, hookFloorPatch, hookOurs} {
			w := s.By[which]
			if none == nil || w == nil {
				continue
			}
			s.Added[which] = map[string]float64{"p50": w.P50 - none.P50, "p90": w.P90 - none.P90, "p99": w.P99 - none.P99,
				"mean": w.Mean - none.Mean, "apiserverCPUus": w.CPUPerCreate["kube-apiserver"] - none.CPUPerCreate["kube-apiserver"]}
			for round := 1; round <= rounds; round++ {
				if p := byRound[round]; p[hookNone] != nil && p[which] != nil {
					s.AddedRounds[which] = append(s.AddedRounds[which], p[which].P50-p[hookNone].P50)
				}
			}
		}
		if a, ok := s.Added[hookOurs]; ok {
			s.Met = a["p50"] < 2 && s.Errors == 0
		}
		sums = append(sums, s)
	}
	return sums
}

func printCreates(sums []*CreateSummary, configs []string, creates, rounds int, http2 bool) {
	proto := "HTTP/1.1"
	if http2 {
		proto = "HTTP/2"
	}
	fmt.Printf("\npod creates through kube-apiserver %s; etcd, kube-apiserver, webhook and client share %s\n", cluster.Version, machine())
	fmt.Printf("%d creates per run, closed loop; medians over %d rounds, configurations alternating; webhook served over %s\n", creates, rounds, proto)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\twebhook\tcreates/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\tapiserver µs/create\twebhook µs/create\tconns closed\tadded p50 ms\tadded p99 ms\tother cores\t")
	for _, s := range sums {
		for _, which := range configs {
			r := s.By[which]
			if r == nil {
				continue
			}
			added50, added99 := "-", "-"
			if a, ok := s.Added[which]; ok {
				added50, added99 = fmt.Sprintf("%+.2f", a["p50"]), fmt.Sprintf("%+.2f", a["p99"])
			}
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%.0f\t%.0f\t%d\t%s\t%s\t%.2f\t\n", s.Concurrency, which, r.PerSecond,
				r.P50, r.P90, r.P99, r.Max, r.Errors, r.CPUPerCreate["kube-apiserver"], hookCPU(r), r.ClosedConns, added50, added99, r.OtherCores)
		}
	}
	tw.Flush()
	for _, s := range sums {
		a, ok := s.Added[hookOurs]
		if !ok {
			continue
		}
		v := "MET   "
		if !s.Met {
			v = "MISSED"
		}
		fmt.Printf("  %s target at concurrency %d: pod-hardener adds < 2 ms to p50 (adds %+.2f ms; by round %s; floor adds %+.2f, floor-patch %+.2f)\n",
			v, s.Concurrency, a["p50"], fmtList(s.AddedRounds[hookOurs]), s.Added[hookFloor]["p50"], s.Added[hookFloorPatch]["p50"])
	}
}

// hookCPU is the CPU per create of the webhook process registered.
func hookCPU(r *CreateRun) float64 {
	switch r.Webhook {
	case hookOurs:
		return r.CPUPerCreate["pod-hardener"]
	case hookFloor, hookFloorPatch:
		return r.CPUPerCreate[r.Webhook]
	}
	return 0
}

func fmtList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%+.2f", x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// medianBy is the median of one field over runs.
func medianBy[T any](runs []T, field func(T) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = field(r)
	}
	return median(v)
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

// reviewCounts reads pod_hardener_reviews_total by result from the
// webhook's /metrics.
func reviewCounts(metricsURL string) map[string]float64 {
	out := map[string]float64{}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(metricsURL + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "pod_hardener_reviews_total{") {
			continue
		}
		i := strings.Index(l, `result="`)
		j := strings.LastIndexByte(l, ' ')
		if i < 0 || j < 0 {
			continue
		}
		res := l[i+len(`result="`):]
		res = res[:strings.IndexByte(res, '"')]
		v, _ := strconv.ParseFloat(l[j+1:], 64)
		out[res] += v
	}
	return out
}

// timeWaits counts loopback TCP sockets in TIME_WAIT whose remote port is
// one of ports: connections to that server the client side closed.
func timeWaits(ports ...int) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0
	}
	want := map[string]bool{}
	for _, p := range ports {
		want[strings.ToUpper(hex.EncodeToString([]byte{byte(p >> 8), byte(p)}))] = true
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 4 || f[3] != "06" {
			continue
		}
		if i := strings.LastIndexByte(f[2], ':'); i >= 0 && want[f[2][i+1:]] {
			n++
		}
	}
	return n
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

// warningLog keeps the warnings of the last request.
type warningLog struct {
	mu   sync.Mutex
	list []string
}

func (w *warningLog) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warningLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// waitRegistration waits until the API server calls the configured
// webhook: a dry-run create comes back hardened (ours), with the floor's
// dry-run warning (floor), that and its annotation (floor-patch), or none
// of these (none), three times in a row.
func waitRegistration(ctx context.Context, cs kubernetes.Interface, warns *warningLog, which string) error {
	deadline := time.Now().Add(60 * time.Second)
	streak := 0
	for time.Now().Before(deadline) {
		warns.take()
		p, err := cs.CoreV1().Pods("load-probe").Create(ctx, loadPod(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		floor := false
		for _, w := range warns.take() {
			if strings.Contains(w, floorWarning) {
				floor = true
			}
		}
		ok := err == nil
		if ok {
			hardened := p.Annotations[mutate.AnnotationHardened] != ""
			seen := p.Annotations[floorAnnotation] != ""
			ok = hardened == (which == hookOurs) && floor == (which == hookFloor || which == hookFloorPatch) && seen == (which == hookFloorPatch)
		}
		if ok {
			if streak++; streak == 3 {
				return nil
			}
		} else {
			streak = 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the webhook registration %q never took effect", which)
}

// createPods creates n pods with conc workers and returns each create's
// latency and how many came back hardened. Errors go into r (when given)
// or fail the call.
func createPods(ctx context.Context, cs kubernetes.Interface, ns string, n, conc int, r *CreateRun) ([]time.Duration, int, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var hardened, errs int
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
