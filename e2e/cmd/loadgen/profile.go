package main

// `loadgen profile`: the served binary has no pprof endpoint, so this
// builds the same /mutate handler in process (server.NewHandler around
// server.NewDecider with config.yaml, NoNamespaces, the Prometheus
// registry and a JSON logger at info, as `serve` does), drives it through
// httptest for a bounded time, and writes CPU and allocation profiles.
// No network, no TLS: the handler's own cost.

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pod-hardener/pod-hardener/internal/cli"
	"github.com/pod-hardener/pod-hardener/internal/server"
)

func profileCmd(args []string) error {
	fs := flag.NewFlagSet("profile", flag.ExitOnError)
	config := fs.String("config", "config.yaml", "config.yaml")
	pod := fs.String("pod", "small", "review kind: small, 50containers, 1000env, hardened")
	which := fs.String("what", "ours", "ours (the /mutate handler), floor (the floor's handler) or harden (`pod-hardener harden -f` on --pods pods, in process)")
	npods := fs.Int("pods", 1000, "harden: pods in the file")
	d := fs.Duration("duration", 10*time.Second, "how long to drive the handler (at most 2m)")
	cpuOut := fs.String("cpuprofile", "", "write the CPU profile here")
	memOut := fs.String("memprofile", "", "write the allocation profile here")
	top := fs.Int("top", 25, "print `go tool pprof -top` with this many lines (0: none)")
	logTo := fs.String("log", "file", "ours' log: file (JSON at info into a temporary file, as serve writes stderr) or discard")
	_ = fs.Parse(args)
	if *d <= 0 || *d > 2*time.Minute {
		return fmt.Errorf("--duration must be in (0, 2m]")
	}
	cfg, err := loadConfig(*config)
	if err != nil {
		return err
	}
	kinds, err := buildPods(cfg, []string{*pod})
	if err != nil {
		return err
	}
	k := kinds[0]
	var h http.Handler
	var once func() error
	switch *which {
	case "harden":
		dir, err := os.MkdirTemp("", "pod-hardener-profile-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		file := filepath.Join(dir, "pods.yaml")
		data, err := podsYAML(*npods, false)
		if err != nil {
			return err
		}
		if err := os.WriteFile(file, data, 0o644); err != nil {
			return err
		}
		once = func() error {
			root := cli.New(bytes.NewReader(nil), io.Discard, io.Discard)
			root.SetArgs([]string{"harden", "-f", file, "--config", *config})
			return root.Execute()
		}
	case "floor":
		h = floorHandler(false)
	case "ours":
		var w io.Writer = io.Discard
		if *logTo == "file" {
			f, err := os.CreateTemp("", "pod-hardener-profile-*.log")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			defer f.Close()
			w = f
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		dec := server.NewDecider(cfg, server.NoNamespaces{}, server.NewMetrics(reg))
		if h, err = server.NewHandler(dec, reg, slog.New(slog.NewJSONHandler(w, nil))); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--what: ours, floor or harden")
	}
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(k.body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if once == nil {
		once = func() error {
			if rec := serve(); rec.Code != http.StatusOK {
				return fmt.Errorf("status %d: %s", rec.Code, rec.Body.String())
			}
			return nil
		}
	}
	if err := once(); err != nil {
		return err
	}
	if *cpuOut != "" {
		f, err := os.Create(*cpuOut)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	n := 0
	for time.Since(start) < *d && n < 10_000_000 {
		if err := once(); err != nil {
			return err
		}
		n++
	}
	el := time.Since(start)
	runtime.ReadMemStats(&m1)
	if *cpuOut != "" {
		pprof.StopCPUProfile()
	}
	what := fmt.Sprintf("%s handler, %s review (%d B)", *which, k.Name, len(k.body))
	if *which == "harden" {
		what = fmt.Sprintf("harden -f on %d pods", *npods)
	}
	fmt.Printf("%s: %d runs in %s: %.1f µs/run, %.0f allocs/run, %.0f B/run\n",
		what, n, el.Round(time.Millisecond), float64(el.Microseconds())/float64(n),
		float64(m1.Mallocs-m0.Mallocs)/float64(n), float64(m1.TotalAlloc-m0.TotalAlloc)/float64(n))
	if *memOut != "" {
		f, err := os.Create(*memOut)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			f.Close()
			return err
		}
		f.Close()
	}
	if *cpuOut != "" && *top > 0 {
		for _, mode := range []string{"-top", "-top -cum"} {
			args := []string{"tool", "pprof", fmt.Sprintf("-nodecount=%d", *top)}
			if mode == "-top -cum" {
				args = append(args, "-top", "-cum")
			} else {
				args = append(args, "-top")
			}
			cmd := exec.Command("go", append(args, *cpuOut)...)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "go tool pprof: %v\n", err)
			}
		}
	}
	return nil
}
