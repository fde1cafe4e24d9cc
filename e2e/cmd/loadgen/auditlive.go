package main

// The continuous audit (`serve --audit-interval`) on the same pods as
// `loadgen audit`: the webhook started once without it and once with it,
// its CPU (utime+stime from /proc) and memory (VmRSS, VmHWM) read while
// its informer fills and evaluates every pod, then over further passes.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// LiveAudit is what `serve --audit-interval` cost.
type LiveAudit struct {
	Interval string `json:"interval"`
	// Bare: the webhook without the audit, idle, as the baseline.
	BareRSSMiB float64 `json:"bareRSSMiB"`
	// First: from start until every pod was evaluated once.
	FirstWallSec float64 `json:"firstWallSeconds"`
	FirstCPUSec  float64 `json:"firstCPUSeconds"`
	// Pass: CPU per further pass (all pods again; the process's whole CPU
	// between passes, watch and idle included) and the pass duration the
	// webhook reports.
	Passes        int     `json:"passes"`
	PassCPUSec    float64 `json:"passCPUSeconds"`
	PassReportSec float64 `json:"passReportedSeconds"`
	// Reload: the pass after config.yaml changed, which evaluates every
	// pod again under the new config (CPU from the change to its end).
	ReloadCPUSec    float64 `json:"reloadCPUSeconds"`
	ReloadReportSec float64 `json:"reloadReportedSeconds"`
	SteadyRSSMiB    float64 `json:"steadyRSSMiB"`
	PeakRSSMiB      float64 `json:"peakRSSMiB"`
	CPUShareSteady  float64 `json:"cpuShareSteady"` // CPU seconds per wall second between passes
}

// auditMetrics reads the audit's series from the webhook's /metrics: the
// pods counted over every status, the last pass time and its duration.
func auditMetrics(url string) (pods, last, dur float64, err error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		v, perr := strconv.ParseFloat(line[i+1:], 64)
		if perr != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "pod_hardener_audit_pods{"):
			pods += v
		case strings.HasPrefix(line, "pod_hardener_audit_last_run_timestamp_seconds "):
			last = v
		case strings.HasPrefix(line, "pod_hardener_audit_run_duration_seconds "):
			dur = v
		}
	}
	return pods, last, dur, sc.Err()
}

// metricValue reads one series from /metrics.
func metricValue(url, series string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s not exported", series)
}

// measureLive runs the webhook on the cluster behind kubeconfig, first
// without the continuous audit, then with it, until passes more passes
// after the first have completed.
func measureLive(ctx context.Context, bin, kubeconfig, config, dir string, pods int, interval time.Duration, passes int) (*LiveAudit, error) {
	start := func(name string, extra ...string) (*proc, string, error) {
		mport, err := freePort()
		if err != nil {
			return nil, "", err
		}
		wport, err := freePort()
		if err != nil {
			return nil, "", err
		}
		args := append([]string{"serve", "--dev-certs", filepath.Join(dir, "live-certs"), "--kubeconfig", kubeconfig, "--config", config,
			"--listen", fmt.Sprintf("127.0.0.1:%d", wport), "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", mport)}, extra...)
		p, err := startProc(name, filepath.Join(dir, name+".log"), nil, bin, args...)
		if err != nil {
			return nil, "", err
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", mport)
		if err := waitReady(ctx, p, base+"/readyz", 60*time.Second); err != nil {
			p.stop()
			return nil, "", err
		}
		return p, base, nil
	}
	r := &LiveAudit{Interval: interval.String(), Passes: passes}
	// A copy, changed later to measure a reload.
	data, err := os.ReadFile(config)
	if err != nil {
		return nil, err
	}
	config = filepath.Join(dir, "live-config.yaml")
	if err := os.WriteFile(config, data, 0o644); err != nil {
		return nil, err
	}

	bare, _, err := start("serve-bare")
	if err != nil {
		return nil, err
	}
	time.Sleep(3 * time.Second)
	_, r.BareRSSMiB = memory(bare.pid())
	bare.stop()

	t0 := time.Now()
	p, base, err := start("serve-audit", "--audit-interval", interval.String())
	if err != nil {
		return nil, err
	}
	defer p.stop()
	var last float64
	for {
		n, l, _, err := auditMetrics(base + "/metrics")
		if err == nil && l > 0 && int(n) == pods {
			last = l
			break
		}
		if time.Since(t0) > 10*time.Minute || p.exited() {
			return nil, fmt.Errorf("the continuous audit never counted %d pods (last %v pods, err %v; log %s)", pods, n, err, p.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.FirstWallSec = time.Since(t0).Seconds()
	ticks0, err := cpuTicks(p.pid())
	if err != nil {
		return nil, err
	}
	r.FirstCPUSec = float64(ticks0) / clockTicks
	t1 := time.Now()
	var durs []float64
	// Polled once a second, as a scraper would (more often, the polling
	// itself would show in the CPU).
	for done := 0; done < passes; {
		time.Sleep(time.Second)
		n, l, d, err := auditMetrics(base + "/metrics")
		if err != nil || p.exited() {
			return nil, fmt.Errorf("reading the webhook's metrics: %v (log %s)", err, p.log)
		}
		if l != last {
			if int(n) != pods {
				return nil, fmt.Errorf("a pass counted %v pods, want %d", n, pods)
			}
			last, done = l, done+1
			durs = append(durs, d)
		}
		if time.Since(t1) > time.Duration(passes+2)*interval+time.Minute {
			return nil, fmt.Errorf("only %d of %d passes in %s (log %s)", done, passes, time.Since(t1), p.log)
		}
	}
	ticks1, err := cpuTicks(p.pid())
	if err != nil {
		return nil, err
	}
	wall := time.Since(t1).Seconds()
	r.PassCPUSec = float64(ticks1-ticks0) / clockTicks / float64(passes)
	r.CPUShareSteady = float64(ticks1-ticks0) / clockTicks / wall
	r.PassReportSec = median(durs)
	r.PeakRSSMiB, r.SteadyRSSMiB = memory(p.pid())

	if err := os.WriteFile(config, append(data, "\n# changed: every pod is evaluated again\n"...), 0o644); err != nil {
		return nil, err
	}
	t2 := time.Now()
	var reloaded bool
	for {
		time.Sleep(200 * time.Millisecond)
		if !reloaded {
			if n, _ := metricValue(base+"/metrics", `pod_hardener_config_reloads_total{result="success"}`); n == 1 {
				reloaded = true
				ticks0, _ = cpuTicks(p.pid())
			}
		}
		_, l, d, err := auditMetrics(base + "/metrics")
		if err != nil || p.exited() {
			return nil, fmt.Errorf("reading the webhook's metrics: %v (log %s)", err, p.log)
		}
		if reloaded && l != last {
			ticks1, _ := cpuTicks(p.pid())
			r.ReloadCPUSec, r.ReloadReportSec = float64(ticks1-ticks0)/clockTicks, d
			break
		}
		if time.Since(t2) > 2*interval+time.Minute {
			return nil, fmt.Errorf("no pass after the config reload (reloaded: %t; log %s)", reloaded, p.log)
		}
	}
	if _, err := os.Stat(p.log); err != nil {
		return nil, err
	}
	return r, nil
}
