package main

// The load itself: N HTTPS keep-alive connections, closed loop (N workers
// back to back) or open loop (a fixed schedule; each latency counts from
// the request's intended send time, so a stalled server is charged for the
// requests it delayed: no coordinated omission), and the server process's
// CPU time and peak RSS read from /proc.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
const clockTicks = 100

// requestTimeout is the API server's timeoutSeconds in our registration.
const requestTimeout = 5 * time.Second

// lateLimit bounds an open loop that falls behind: requests whose turn
// comes more than this after the end of the schedule are not sent and
// count as errors.
const lateLimit = 10 * time.Second

// target is one server under load.
type target struct {
	Name string // floor | ours
	URL  string
	PID  int
}

// loadSpec is one measured run.
type loadSpec struct {
	Mode     string // single | closed | open | sweep
	Pod      *podKind
	Conns    int
	Duration time.Duration
	Max      int     // closed loop: stop after this many (0: duration only)
	Rate     float64 // open loop: requests per second
	Warmup   time.Duration
	// Samples, when set, gets one line per open-loop request: seconds
	// into the run, latency and send lag in ms.
	Samples io.Writer
	Attempt int
}

// Result is one measured run of one server.
type Result struct {
	Server  string `json:"server"`
	Mode    string `json:"mode"`
	Pod     string `json:"pod"`
	Round   int    `json:"round"`
	Attempt int    `json:"attempt,omitempty"`
	// Excluded: run again because other processes were busy during it.
	Excluded   bool    `json:"excluded,omitempty"`
	Conns      int     `json:"conns"`
	TargetRate float64 `json:"targetRate,omitempty"`
	Seconds    float64 `json:"seconds"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"firstError,omitempty"`
	RPS        float64 `json:"rps"`
	P50        float64 `json:"p50ms"`
	P95        float64 `json:"p95ms"`
	P99        float64 `json:"p99ms"`
	Max        float64 `json:"maxms"`
	CPUSeconds float64 `json:"cpuSeconds"`
	CPUPerReq  float64 `json:"cpuPerReqUs"`
	PeakRSSMiB float64 `json:"peakRSSMiB"`
	EndRSSMiB  float64 `json:"endRSSMiB"`
	// OtherCores is the CPU used during the run by everything but loadgen
	// and the two servers, in cores: other work on a shared machine.
	OtherCores float64 `json:"otherCores"`
	// LagP50 and LagP99: open loop, how late requests were sent after
	// their due time (the pacer's precision, plus queueing when every
	// connection is busy), in ms.
	LagP50 float64 `json:"sendLagP50ms,omitempty"`
	LagP99 float64 `json:"sendLagP99ms,omitempty"`
	// ClientCores is loadgen's own CPU during the run, in cores.
	ClientCores float64 `json:"clientCores"`
}

// newClient is a fresh HTTP/1.1 client with at most conns connections,
// trusting the dev CA, as the API server's webhook client keeps them.
func newClient(caFile string, conns int) (*http.Client, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: requestTimeout}, nil
}

// answer is the part of the response we check.
type answer struct {
	Response *struct {
		UID     string `json:"uid"`
		Allowed bool   `json:"allowed"`
		Patch   []byte `json:"patch"`
	} `json:"response"`
}

// send posts one review and checks the answer: 200, the review's uid,
// allowed, and a patch exactly when one is expected (ours only).
func send(c *http.Client, url string, k *podKind, checkPatch bool) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(k.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("decoding answer: %w", err)
	}
	if a.Response == nil || a.Response.UID != reviewUID || !a.Response.Allowed {
		return fmt.Errorf("answer does not allow the review with its uid: %.200s", b)
	}
	if checkPatch && (len(a.Response.Patch) > 0) != k.wantPatch {
		return fmt.Errorf("patch present=%v, want %v: %.200s", len(a.Response.Patch) > 0, k.wantPatch, b)
	}
	return nil
}

// recorder collects one worker's latencies and errors.
type recorder struct {
	lat      []time.Duration
	lag      []time.Duration // open loop: sent - due
	at       []time.Duration // open loop: due - start, with lat and lag
	errors   int
	firstErr error
}

func (r *recorder) record(d time.Duration, err error) {
	if err != nil {
		r.errors++
		if r.firstErr == nil {
			r.firstErr = err
		}
		return
	}
	r.lat = append(r.lat, d)
}

// drive runs one measured load against t and returns its result; idle
// lists the other server's PID, counted apart from the machine's other
// work.
func drive(t target, idle int, caFile string, s loadSpec) (*Result, error) {
	client, err := newClient(caFile, s.Conns)
	if err != nil {
		return nil, err
	}
	defer client.Transport.(*http.Transport).CloseIdleConnections()
	check := t.Name == "ours"
	// Warm up: open the N connections (TLS handshakes are not measured)
	// and let the server reach its steady state.
	warm := make([]*recorder, s.Conns)
	closedLoop(client, t.URL, s.Pod, check, s.Conns, s.Warmup, 0, warm)
	for _, w := range warm {
		if w.errors > 0 {
			return nil, fmt.Errorf("%s %s warm-up: %d errors, first: %v", t.Name, s.Pod.Name, w.errors, w.firstErr)
		}
	}
	resetPeakRSS(t.PID)
	cpu0, err := cpuTicks(t.PID)
	if err != nil {
		return nil, err
	}
	self0, p0 := cpuTicksSelf(), scanProcs()
	recs := make([]*recorder, s.Conns)
	start := time.Now()
	notSent := 0
	if s.Rate > 0 {
		notSent = openLoop(client, t.URL, s.Pod, check, s.Conns, s.Rate, s.Duration, recs)
	} else {
		closedLoop(client, t.URL, s.Pod, check, s.Conns, s.Duration, s.Max, recs)
	}
	elapsed := time.Since(start)
	cpu1, err := cpuTicks(t.PID)
	if err != nil {
		return nil, err
	}
	self1, p1 := cpuTicksSelf(), scanProcs()
	hwm, rss := memory(t.PID)

	r := &Result{Server: t.Name, Mode: s.Mode, Pod: s.Pod.Name, Conns: s.Conns, TargetRate: s.Rate,
		Seconds: elapsed.Seconds(), PeakRSSMiB: hwm, EndRSSMiB: rss}
	var all, lag []time.Duration
	for _, rec := range recs {
		all = append(all, rec.lat...)
		lag = append(lag, rec.lag...)
		r.Errors += rec.errors
		if rec.firstErr != nil && r.FirstError == "" {
			r.FirstError = rec.firstErr.Error()
		}
	}
	if notSent > 0 {
		r.Errors += notSent
		if r.FirstError == "" {
			r.FirstError = fmt.Sprintf("%d requests not sent: more than %s behind schedule", notSent, lateLimit)
		}
	}
	r.Requests = len(all) + r.Errors
	r.RPS = float64(len(all)) / elapsed.Seconds()
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r.P50, r.P95, r.P99 = pct(all, 0.50), pct(all, 0.95), pct(all, 0.99)
	if len(all) > 0 {
		r.Max = ms(all[len(all)-1])
	}
	if s.Samples != nil {
		for _, rec := range recs {
			for i := range rec.at {
				fmt.Fprintf(s.Samples, "%s,%s,%s,%.0f,%d,%.4f,%.3f,%.3f\n", r.Server, r.Mode, r.Pod, r.TargetRate, s.Attempt,
					rec.at[i].Seconds(), ms(rec.lat[i]), ms(rec.lag[i]))
			}
		}
	}
	if len(lag) > 0 {
		sort.Slice(lag, func(i, j int) bool { return lag[i] < lag[j] })
		r.LagP50, r.LagP99 = pct(lag, 0.50), pct(lag, 0.99)
	}
	r.CPUSeconds = float64(cpu1-cpu0) / clockTicks
	r.ClientCores = float64(self1-self0) / clockTicks / elapsed.Seconds()
	r.OtherCores = otherCores(p0, p1, elapsed, os.Getpid(), t.PID, idle)
	if n := len(all) + r.Errors; n > 0 {
		r.CPUPerReq = r.CPUSeconds / float64(n) * 1e6
	}
	return r, nil
}

// closedLoop runs conns workers back to back for d (and at most max
// requests in all when max > 0).
func closedLoop(c *http.Client, url string, k *podKind, check bool, conns int, d time.Duration, max int, recs []*recorder) {
	deadline := time.Now().Add(d)
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		rec := &recorder{lat: make([]time.Duration, 0, 4096)}
		recs[w] = rec
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if max > 0 && n.Add(1) > int64(max) {
					return
				}
				t0 := time.Now()
				err := send(c, url, k, check)
				rec.record(time.Since(t0), err)
			}
		}()
	}
	wg.Wait()
}

// openLoop sends rate requests a second for d over conns connections.
// A pacer on its own OS thread sleeps with nanosleep (Go's timers wake a
// parked process only to the millisecond) until request i is due, at
// start + i/rate, and hands it to the workers; a worker free to take it
// sends it at once, or later if all connections are busy. Latency counts
// from the due time, so time queued behind a slow answer counts too; lag
// (sent - due) is kept apart to show the client's own precision. It
// returns how many requests were never sent because the schedule ran
// lateLimit behind.
func openLoop(c *http.Client, url string, k *podKind, check bool, conns int, rate float64, d time.Duration, recs []*recorder) int {
	total := int(rate * d.Seconds())
	interval := float64(time.Second) / rate
	due := make(chan time.Time, total)
	start := time.Now().Add(10 * time.Millisecond)
	giveUp := start.Add(d + lateLimit)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(due)
		for i := 0; i < total; i++ {
			t := start.Add(time.Duration(float64(i) * interval))
			if wait := time.Until(t); wait > 0 {
				ts := syscall.NsecToTimespec(int64(wait))
				for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
				}
			}
			due <- t
		}
	}()
	var skipped atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		rec := &recorder{lat: make([]time.Duration, 0, total/conns+16), lag: make([]time.Duration, 0, total/conns+16)}
		recs[w] = rec
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range due {
				sent := time.Now()
				if sent.After(giveUp) {
					skipped.Add(1)
					continue
				}
				err := send(c, url, k, check)
				rec.record(time.Since(t), err)
				if err == nil {
					rec.lag = append(rec.lag, sent.Sub(t))
					rec.at = append(rec.at, t.Sub(start))
				}
			}
		}()
	}
	wg.Wait()
	return int(skipped.Load())
}

func pct(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return ms(sorted[i])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuTicks is utime+stime of a process, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/PID/stat")
	}
	f := strings.Fields(s[i+1:])
	// After the command: state is field 3, utime 14, stime 15 (1-based).
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unreadable utime/stime")
	}
	return u + st, nil
}

func cpuTicksSelf() int64 {
	t, _ := cpuTicks(os.Getpid())
	return t
}

// memory returns VmHWM (peak RSS since the last reset) and VmRSS in MiB.
func memory(pid int) (hwm, rss float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmHWM:":
			hwm = kb / 1024
		case "VmRSS:":
			rss = kb / 1024
		}
	}
	return hwm, rss
}

// resetPeakRSS sets VmHWM back to the current RSS (clear_refs 5), so the
// peak is that of the next run alone.
func resetPeakRSS(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// procTicks is the CPU time of every process on the machine, by PID, in
// clock ticks: own (utime+stime) and reaped children's (cutime+cstime),
// so a short-lived process (a compiler, a test binary) still counts, in
// its parent, once reaped.
type procTicks map[int][2]int64

func scanProcs() procTicks {
	out := procTicks{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 15 {
			continue
		}
		var t [4]int64
		for j := range t {
			t[j], _ = strconv.ParseInt(f[11+j], 10, 64)
		}
		out[pid] = [2]int64{t[0] + t[1], t[2] + t[3]}
	}
	return out
}

// otherCores is the CPU, in cores over elapsed, that every process but
// those in exclude used between two scans. A process seen only in after
// counts with its own time alone, and the result is capped at the
// machine's cores.
func otherCores(before, after procTicks, elapsed time.Duration, exclude ...int) float64 {
	skip := map[int]bool{}
	for _, p := range exclude {
		skip[p] = true
	}
	var d int64
	for pid, t := range after {
		if skip[pid] {
			continue
		}
		if b, ok := before[pid]; ok {
			d += (t[0] - b[0]) + (t[1] - b[1])
		} else {
			d += t[0]
		}
	}
	c := float64(d) / clockTicks / elapsed.Seconds()
	if n := float64(runtime.NumCPU()); c > n {
		c = n
	}
	return c
}

// waitQuiet waits, at most max, until the machine's other work (all but
// loadgen and the given servers) uses less than threshold cores over a
// 500 ms window, and returns the last reading.
func waitQuiet(pids []int, threshold float64, max time.Duration) float64 {
	deadline := time.Now().Add(max)
	exclude := append([]int{os.Getpid()}, pids...)
	for {
		p0, t0 := scanProcs(), time.Now()
		time.Sleep(500 * time.Millisecond)
		other := otherCores(p0, scanProcs(), time.Since(t0), exclude...)
		if other < threshold || time.Now().After(deadline) {
			return other
		}
	}
}
