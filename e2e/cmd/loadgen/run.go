package main

// `loadgen run`: the webhook binary and the floor side by side, driven in
// alternating runs, every figure also given as a ratio to the floor's in
// the same run.

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

type runOptions struct {
	binary, config            string
	conns, rounds, openRounds int
	modes, pods               []string
	singleDur, closedDur      time.Duration
	closedCount               int
	openRate                  float64
	openDur                   time.Duration
	openPod                   string
	sweepRates                []float64
	sweepDur                  time.Duration
	sweepPod                  string
	warmup                    time.Duration
	quietBelow                float64
	quietWait                 time.Duration
	noisyAbove                float64
	retries                   int
	jsonOut, csvOut, dir      string
	samplesOut                string
	oursEnv, floorEnv         []string
	keep                      bool
}

// Report is the machine-readable output of `loadgen run`.
type Report struct {
	Machine Machine            `json:"machine"`
	Started time.Time          `json:"started"`
	Options any                `json:"options"`
	Pods    []podInfo          `json:"pods"`
	IdleRSS map[string]float64 `json:"idleRSSMiB"`
	Runs    []*Result          `json:"runs"`
	Summary []*Summary         `json:"summary"`
	Targets []Target           `json:"targets"`
}

type podInfo struct {
	Name      string `json:"name"`
	Desc      string `json:"desc"`
	PodBytes  int    `json:"podBytes"`
	BodyBytes int    `json:"reviewBytes"`
}

// Summary is one (mode, pod, connections, rate) for both servers: the
// median over rounds (max for max latency and peak RSS, sums for counts)
// and ours as a ratio to the floor.
type Summary struct {
	Mode       string             `json:"mode"`
	Pod        string             `json:"pod"`
	Conns      int                `json:"conns"`
	TargetRate float64            `json:"targetRate,omitempty"`
	Rounds     int                `json:"rounds"`
	Floor      *Result            `json:"floor"`
	Ours       *Result            `json:"ours"`
	Ratio      map[string]float64 `json:"oursOverFloor"`
}

// Target is one of the targets, judged.
type Target struct {
	Name   string `json:"name"`
	Met    bool   `json:"met"`
	Detail string `json:"detail"`
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var o runOptions
	var modes, pods, rates string
	fs.StringVar(&o.binary, "binary", "bin/pod-hardener", "the webhook binary (make build)")
	fs.StringVar(&o.config, "config", "config.yaml", "config.yaml for the webhook and for the hardened review")
	fs.IntVar(&o.conns, "conns", 8, "HTTPS keep-alive connections (closed, open and sweep modes)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of each single and closed run, floor and ours alternating")
	fs.IntVar(&o.openRounds, "open-rounds", 1, "rounds of the open-loop run")
	fs.StringVar(&modes, "modes", "single,closed,open", "what to run, in order: single (closed loop, 1 connection), closed, open, sweep")
	fs.StringVar(&pods, "pods", strings.Join(podKindNames, ","), "review kinds for single and closed runs")
	fs.DurationVar(&o.singleDur, "single-duration", time.Second, "length of each single-connection run")
	fs.DurationVar(&o.closedDur, "closed-duration", 3*time.Second, "length of each closed-loop run")
	fs.IntVar(&o.closedCount, "closed-count", 0, "single and closed runs also stop after this many requests (0: duration only)")
	fs.Float64Var(&o.openRate, "open-rate", 2000, "open loop: reviews per second")
	fs.DurationVar(&o.openDur, "open-duration", 60*time.Second, "open loop: length")
	fs.StringVar(&o.openPod, "open-pod", "small", "open loop and sweep: review kind")
	fs.StringVar(&rates, "sweep-rates", "250,500,1000,2000,3000", "sweep: open-loop rates, reviews per second")
	fs.DurationVar(&o.sweepDur, "sweep-duration", 10*time.Second, "sweep: length of each rate")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "closed-loop warm-up before each run (connections open, not measured)")
	fs.Float64Var(&o.quietBelow, "quiet-below", 0.25, "before each run, wait until other processes use fewer cores than this (0: do not wait)")
	fs.DurationVar(&o.quietWait, "quiet-wait", 2*time.Second, "the longest wait for a quiet machine before each run")
	fs.Float64Var(&o.noisyAbove, "noisy-above", 0.5, "a floor/ours pair during which other processes used more cores than this is excluded and run again (0: never)")
	fs.IntVar(&o.retries, "retries", 1, "how many times a noisy pair is run again")
	fs.StringVar(&o.jsonOut, "json", "", "write every run, the summary and the targets as JSON to FILE")
	fs.StringVar(&o.csvOut, "csv", "", "write the summary as CSV to FILE (docs/plot-latency.gp reads it)")
	fs.StringVar(&o.samplesOut, "samples", "", "write every open-loop and sweep request (server, mode, pod, rate, attempt, s into the run, latency ms, send lag ms) as CSV to FILE")
	oursEnv := fs.String("ours-env", "", "extra environment of the webhook only, comma-separated KEY=VALUE (what-if runs, e.g. GOGC=400)")
	floorEnv := fs.String("floor-env", "", "extra environment of the floor server only, e.g. GOGC=400,GOMEMLIMIT=48MiB (the GC setting serve applies to itself)")
	fs.StringVar(&o.dir, "dir", "", "work directory: certificates, server logs (default: a temporary one, removed)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	_ = fs.Parse(args)
	o.modes = splitList(modes)
	o.oursEnv = splitList(*oursEnv)
	o.floorEnv = splitList(*floorEnv)
	o.pods = splitList(pods)
	o.sweepPod = o.openPod
	for _, r := range splitList(rates) {
		f, err := strconv.ParseFloat(r, 64)
		if err != nil || f <= 0 {
			return fmt.Errorf("--sweep-rates: bad rate %q", r)
		}
		o.sweepRates = append(o.sweepRates, f)
	}
	for _, m := range o.modes {
		if !contains([]string{"single", "closed", "open", "sweep"}, m) {
			return fmt.Errorf("--modes: unknown mode %q", m)
		}
	}
	if o.conns < 1 || o.rounds < 1 {
		return errors.New("--conns and --rounds must be at least 1")
	}
	return run(o)
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func run(o runOptions) error {
	ctx := context.Background()
	cfg, err := loadConfig(o.config)
	if err != nil {
		return err
	}
	kinds, err := buildPods(cfg, nil)
	if err != nil {
		return err
	}
	byName := map[string]*podKind{}
	for _, k := range kinds {
		byName[k.Name] = k
	}
	for _, n := range append(append([]string{}, o.pods...), o.openPod) {
		if byName[n] == nil {
			return fmt.Errorf("unknown pod kind %q (known: %s)", n, strings.Join(podKindNames, ", "))
		}
	}
	bin, err := filepath.Abs(o.binary)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("webhook binary: %w (run `make build`)", err)
	}
	configPath, _ := filepath.Abs(o.config)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "pod-hardener-load-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	certs := filepath.Join(dir, "certs")

	// Ours first: --dev-certs makes the certificates the floor serves too.
	port, _ := freePort()
	mport, _ := freePort()
	ours, err := startProc("pod-hardener", filepath.Join(dir, "pod-hardener.log"), o.oursEnv, bin, "serve", "--dev-certs", certs,
		"--config", configPath, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", mport))
	if err != nil {
		return err
	}
	defer ours.stop()
	if err := waitReady(ctx, ours, fmt.Sprintf("http://127.0.0.1:%d/readyz", mport), 30*time.Second); err != nil {
		return err
	}
	fport, _ := freePort()
	floor, err := startProc("floor", filepath.Join(dir, "floor.log"), o.floorEnv, self, "floor-server",
		"--listen", fmt.Sprintf("127.0.0.1:%d", fport), "--cert", filepath.Join(certs, "tls.crt"), "--key", filepath.Join(certs, "tls.key"))
	if err != nil {
		return err
	}
	defer floor.stop()
	if err := waitReady(ctx, floor, fmt.Sprintf("https://127.0.0.1:%d/healthz", fport), 30*time.Second); err != nil {
		return err
	}
	targets := map[string]target{
		"floor": {Name: "floor", URL: fmt.Sprintf("https://127.0.0.1:%d/mutate", fport), PID: floor.pid()},
		"ours":  {Name: "ours", URL: fmt.Sprintf("https://127.0.0.1:%d/mutate", port), PID: ours.pid()},
	}
	ca := filepath.Join(certs, "ca.crt")

	rep := &Report{Machine: machine(), Started: time.Now().UTC(), IdleRSS: map[string]float64{}}
	rep.Options = map[string]any{"conns": o.conns, "rounds": o.rounds, "modes": o.modes, "pods": o.pods,
		"singleDuration": o.singleDur.String(), "closedDuration": o.closedDur.String(), "closedCount": o.closedCount, "openRate": o.openRate,
		"openDuration": o.openDur.String(), "openRounds": o.openRounds, "openPod": o.openPod, "sweepRates": o.sweepRates,
		"sweepDuration": o.sweepDur.String(), "warmup": o.warmup.String(), "quietBelow": o.quietBelow, "quietWait": o.quietWait.String(), "noisyAbove": o.noisyAbove, "retries": o.retries, "binary": o.binary, "config": o.config, "oursEnv": o.oursEnv, "floorEnv": o.floorEnv}
	for _, k := range kinds {
		rep.Pods = append(rep.Pods, podInfo{Name: k.Name, Desc: k.Desc, PodBytes: len(k.pod), BodyBytes: len(k.body)})
	}
	_, rep.IdleRSS["floor"] = memory(floor.pid())
	_, rep.IdleRSS["ours"] = memory(ours.pid())
	fmt.Fprintf(os.Stderr, "loadgen: %s\nloadgen: ours pid %d, floor pid %d, work dir %s\n", rep.Machine, ours.pid(), floor.pid(), dir)

	var samples io.Writer
	if o.samplesOut != "" {
		f, err := os.Create(o.samplesOut)
		if err != nil {
			return err
		}
		defer f.Close()
		bw := bufio.NewWriter(f)
		defer bw.Flush()
		fmt.Fprintln(bw, "server,mode,pod,rate,attempt,t_s,latency_ms,lag_ms")
		samples = bw
	}
	// measure runs floor and ours once each, the order alternating by round.
	// measure runs floor and ours once each, the order alternating by
	// round. On a shared machine, a pair during which other processes used
	// more than --noisy-above cores is kept in the JSON but excluded from
	// the summary, and run again (at most --retries times).
	measure := func(round int, s loadSpec) error {
		order := []string{"floor", "ours"}
		if round%2 == 0 {
			order = []string{"ours", "floor"}
		}
		for attempt := 0; ; attempt++ {
			var pair []*Result
			for _, name := range order {
				if ours.exited() || floor.exited() {
					return fmt.Errorf("a server exited (logs in %s)", dir)
				}
				other := targets["floor"].PID
				if name == "floor" {
					other = targets["ours"].PID
				}
				if o.quietBelow > 0 {
					wait := o.quietWait
					if attempt > 0 {
						wait *= 5
					}
					waitQuiet([]int{ours.pid(), floor.pid()}, o.quietBelow, wait)
				}
				if s.Rate > 0 {
					s.Samples = samples
				}
				s.Attempt = attempt
				r, err := drive(targets[name], other, ca, s)
				if err != nil {
					return err
				}
				r.Round, r.Attempt = round, attempt
				rep.Runs = append(rep.Runs, r)
				pair = append(pair, r)
				fmt.Fprintf(os.Stderr, "  %-6s %-12s %-5s c=%-2d rate=%-5.0f round %d: %8.0f req/s  p50 %6.2f  p99 %7.2f  max %7.2f ms  err %d  cpu/req %6.0f µs  peak RSS %5.1f MiB  client %.2f other %.2f cores  send lag p50 %.3f p99 %.3f ms\n",
					r.Mode, r.Pod, r.Server, r.Conns, r.TargetRate, round, r.RPS, r.P50, r.P99, r.Max, r.Errors, r.CPUPerReq, r.PeakRSSMiB, r.ClientCores, r.OtherCores, r.LagP50, r.LagP99)
			}
			noisy := false
			for _, r := range pair {
				if o.noisyAbove > 0 && r.OtherCores > o.noisyAbove {
					noisy = true
				}
			}
			if !noisy || attempt >= o.retries {
				return nil
			}
			for _, r := range pair {
				r.Excluded = true
			}
			fmt.Fprintf(os.Stderr, "  (other processes used more than %.2f cores: this pair is excluded and run again)\n", o.noisyAbove)
		}
	}
	for _, mode := range o.modes {
		switch mode {
		case "single", "closed":
			conns, d := 1, o.singleDur
			if mode == "closed" {
				conns, d = o.conns, o.closedDur
			}
			for _, pn := range o.pods {
				for round := 1; round <= o.rounds; round++ {
					if err := measure(round, loadSpec{Mode: mode, Pod: byName[pn], Conns: conns, Duration: d, Max: o.closedCount, Warmup: o.warmup}); err != nil {
						return err
					}
				}
			}
		case "open":
			for round := 1; round <= o.openRounds; round++ {
				if err := measure(round, loadSpec{Mode: mode, Pod: byName[o.openPod], Conns: o.conns, Rate: o.openRate, Duration: o.openDur, Warmup: o.warmup}); err != nil {
					return err
				}
			}
		case "sweep":
			for i, rate := range o.sweepRates {
				if err := measure(i+1, loadSpec{Mode: mode, Pod: byName[o.sweepPod], Conns: o.conns, Rate: rate, Duration: o.sweepDur, Warmup: o.warmup}); err != nil {
					return err
				}
			}
		}
	}
	if ours.exited() {
		return fmt.Errorf("the webhook exited during the load (log %s)", ours.log)
	}
	rep.Summary = summarize(rep.Runs)
	rep.Targets = judge(rep.Summary, o)
	printReport(os.Stdout, rep)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.csvOut != "" {
		if err := writeCSV(o.csvOut, rep.Summary); err != nil {
			return err
		}
	}
	return nil
}

// summarize groups the runs by (mode, pod, conns, rate).
func summarize(runs []*Result) []*Summary {
	type key struct {
		mode, pod string
		conns     int
		rate      float64
	}
	groups := map[key]map[string][]*Result{}
	var order []key
	for _, r := range runs {
		if r.Excluded {
			continue
		}
		k := key{r.Mode, r.Pod, r.Conns, r.TargetRate}
		if groups[k] == nil {
			groups[k] = map[string][]*Result{}
			order = append(order, k)
		}
		groups[k][r.Server] = append(groups[k][r.Server], r)
	}
	var out []*Summary
	for _, k := range order {
		s := &Summary{Mode: k.mode, Pod: k.pod, Conns: k.conns, TargetRate: k.rate,
			Floor: combine(groups[k]["floor"]), Ours: combine(groups[k]["ours"]), Rounds: len(groups[k]["ours"])}
		if s.Floor != nil && s.Ours != nil {
			s.Ratio = map[string]float64{
				"rps": div(s.Ours.RPS, s.Floor.RPS), "p50": div(s.Ours.P50, s.Floor.P50), "p95": div(s.Ours.P95, s.Floor.P95),
				"p99": div(s.Ours.P99, s.Floor.P99), "max": div(s.Ours.Max, s.Floor.Max),
				"cpuPerReq": div(s.Ours.CPUPerReq, s.Floor.CPUPerReq), "peakRSS": div(s.Ours.PeakRSSMiB, s.Floor.PeakRSSMiB),
			}
		}
		out = append(out, s)
	}
	return out
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// combine: medians over rounds; max of max latency and peak RSS; sums of
// counts.
func combine(rs []*Result) *Result {
	if len(rs) == 0 {
		return nil
	}
	c := *rs[0]
	c.Round = 0
	med := func(f func(*Result) float64) float64 { return medianBy(rs, f) }
	c.RPS = med(func(r *Result) float64 { return r.RPS })
	c.P50 = med(func(r *Result) float64 { return r.P50 })
	c.P95 = med(func(r *Result) float64 { return r.P95 })
	c.P99 = med(func(r *Result) float64 { return r.P99 })
	c.CPUPerReq = med(func(r *Result) float64 { return r.CPUPerReq })
	c.OtherCores = med(func(r *Result) float64 { return r.OtherCores })
	c.ClientCores = med(func(r *Result) float64 { return r.ClientCores })
	c.LagP50 = med(func(r *Result) float64 { return r.LagP50 })
	c.LagP99 = med(func(r *Result) float64 { return r.LagP99 })
	c.Seconds, c.Requests, c.Errors, c.CPUSeconds, c.Max, c.PeakRSSMiB, c.EndRSSMiB = 0, 0, 0, 0, 0, 0, 0
	for _, r := range rs {
		c.Seconds += r.Seconds
		c.Requests += r.Requests
		c.Errors += r.Errors
		c.CPUSeconds += r.CPUSeconds
		if r.Max > c.Max {
			c.Max = r.Max
		}
		if r.PeakRSSMiB > c.PeakRSSMiB {
			c.PeakRSSMiB = r.PeakRSSMiB
		}
		if r.EndRSSMiB > c.EndRSSMiB {
			c.EndRSSMiB = r.EndRSSMiB
		}
		if c.FirstError == "" {
			c.FirstError = r.FirstError
		}
	}
	return &c
}

// judge checks the targets that `run` measures.
func judge(sums []*Summary, o runOptions) []Target {
	var ts []Target
	for _, s := range sums {
		if s.Ours == nil || s.Floor == nil {
			continue
		}
		switch {
		case s.Mode == "closed" && s.Conns == 8:
			r := s.Ratio["rps"]
			ts = append(ts, Target{
				Name: "closed loop, 8 connections, " + s.Pod + ": throughput >= 0.8x floor, 0 errors, p99 < 5 ms",
				Met:  r >= 0.8 && s.Ours.Errors == 0 && s.Ours.P99 < 5,
				Detail: fmt.Sprintf("%.0f req/s = %.2fx floor (%.0f), %d errors, p99 %.2f ms (floor %.2f)",
					s.Ours.RPS, r, s.Floor.RPS, s.Ours.Errors, s.Ours.P99, s.Floor.P99),
			})
		case s.Mode == "open" && s.TargetRate == 2000:
			ts = append(ts, Target{
				Name: fmt.Sprintf("open loop, 2,000 reviews/s for %s, %s: p99 < 5 ms, 0 errors, RSS < 60 MiB", o.openDur, s.Pod),
				Met:  s.Ours.P99 < 5 && s.Ours.Errors == 0 && s.Ours.PeakRSSMiB < 60,
				Detail: fmt.Sprintf("p99 %.2f ms (floor %.2f, %.2fx), %d errors of %d, peak RSS %.1f MiB (floor %.1f)",
					s.Ours.P99, s.Floor.P99, s.Ratio["p99"], s.Ours.Errors, s.Ours.Requests, s.Ours.PeakRSSMiB, s.Floor.PeakRSSMiB),
			})
		case s.Mode == "single" && s.Pod == "1000env":
			ts = append(ts, Target{
				Name: "1,000-env-var pod: < 2 ms per review (server CPU per review and unloaded p50)",
				Met:  s.Ours.CPUPerReq < 2000 && s.Ours.P50 < 2,
				Detail: fmt.Sprintf("server CPU %.0f µs per review (floor %.0f, %.2fx); 1 connection: p50 %.2f ms, p99 %.2f ms (floor p50 %.2f)",
					s.Ours.CPUPerReq, s.Floor.CPUPerReq, s.Ratio["cpuPerReq"], s.Ours.P50, s.Ours.P99, s.Floor.P50),
			})
		}
	}
	return ts
}

func printReport(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "\nmachine: %s\n", rep.Machine)
	fmt.Fprintf(w, "idle RSS: ours %.1f MiB, floor %.1f MiB\n", rep.IdleRSS["ours"], rep.IdleRSS["floor"])
	fmt.Fprintln(w, "reviews:")
	for _, p := range rep.Pods {
		fmt.Fprintf(w, "  %-13s %-40s pod %6d B, review %6d B\n", p.Name, p.Desc, p.PodBytes, p.BodyBytes)
	}
	fmt.Fprintln(w, "\nmedians over rounds (max: the largest; peak RSS: the largest VmHWM of a run); ratio = ours / floor;")
	fmt.Fprintln(w, "client cores: loadgen's own CPU; other cores: every other process on the machine during the run")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tpod\tconns\trate/s\tserver\treq/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors\tCPU/req µs\tpeak RSS MiB\tclient cores\tother cores\t")
	for _, s := range rep.Summary {
		rate := "-"
		if s.TargetRate > 0 {
			rate = fmt.Sprintf("%.0f", s.TargetRate)
		}
		for _, r := range []*Result{s.Floor, s.Ours} {
			if r == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%.0f\t%.1f\t%.2f\t%.2f\t\n",
				s.Mode, s.Pod, s.Conns, rate, r.Server, r.RPS, r.P50, r.P95, r.P99, r.Max, r.Errors, r.CPUPerReq, r.PeakRSSMiB, r.ClientCores, r.OtherCores)
		}
		if s.Ratio != nil {
			x := s.Ratio
			fmt.Fprintf(tw, "\t\t\t\tratio\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t\t%.2fx\t%.2fx\t\t\t\n",
				x["rps"], x["p50"], x["p95"], x["p99"], x["max"], x["cpuPerReq"], x["peakRSS"])
		}
	}
	tw.Flush()
	excluded := 0
	for _, r := range rep.Runs {
		if r.Excluded {
			excluded++
		}
	}
	if excluded > 0 {
		fmt.Fprintf(w, "%d runs excluded and run again: other processes were busy during them (kept in the JSON)\n", excluded)
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets:")
		for _, t := range rep.Targets {
			v := "MET   "
			if !t.Met {
				v = "MISSED"
			}
			fmt.Fprintf(w, "  %s %s\n         %s\n", v, t.Name, t.Detail)
		}
	}
	for _, s := range rep.Summary {
		for _, r := range []*Result{s.Floor, s.Ours} {
			if r != nil && r.FirstError != "" {
				fmt.Fprintf(w, "first error, %s %s %s: %s\n", r.Server, s.Mode, s.Pod, r.FirstError)
			}
		}
	}
}

func writeCSV(path string, sums []*Summary) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(f)
	_ = cw.Write([]string{"mode", "pod", "conns", "target_rate", "server", "rps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "errors", "requests", "cpu_per_req_us", "peak_rss_mib"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, s := range sums {
		for _, r := range []*Result{s.Floor, s.Ours} {
			if r == nil {
				continue
			}
			_ = cw.Write([]string{s.Mode, s.Pod, strconv.Itoa(s.Conns), g(s.TargetRate), r.Server, g(r.RPS), g(r.P50), g(r.P95), g(r.P99), g(r.Max),
				strconv.Itoa(r.Errors), strconv.Itoa(r.Requests), g(r.CPUPerReq), g(r.PeakRSSMiB)})
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
