package server

// CPU per review with image lookup on and its cache warm, against the
// same review with lookup off, in process. The pods of bench_test.go with
// their images on a loopback registry, so the warm cache holds every one.
//
//	go test -run '^$' -bench ImageLookupReview ./internal/server/
//	BENCH_RATIO=1 go test -run TestImageLookupBenchRatio -v ./internal/server/

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pod-hardener/pod-hardener/internal/imagefacts"
	"github.com/pod-hardener/pod-hardener/internal/imagefacts/registrytest"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// ilSetup pushes the images of the benchmark pods and returns the pods,
// named as their images are on the registry, and the two handlers.
func ilSetup(tb testing.TB) (pods []handlerBenchPod, off, warm http.Handler) {
	tb.Helper()
	reg := registrytest.New(tb)
	img := registrytest.Image(tb, v1.Config{User: "app"}, map[string][]byte{"etc/passwd": []byte("app:x:1000:1000::/:/bin/sh\n")})
	for i := range 50 {
		reg.Push(tb, fmt.Sprintf("team/app-%d:1.24.3", i), img)
	}
	reg.Push(tb, "team/init-0:1.24.3", img)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	off, err := NewHandler(NewDecider(profiles.Default(), NoNamespaces{}, nil), nil, log)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := imagefacts.New(imagefacts.Config{MaxImages: 64}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	d := NewDecider(profiles.Default(), NoNamespaces{}, nil)
	d.SetImageLookup(&ImageLookup{Resolver: res, Platform: imagefacts.DefaultPlatform})
	warm, err = NewHandler(d, nil, log)
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range []struct {
		name string
		pod  []byte
	}{{"small", hbPodObject(2, 1, 0)}, {"50containers", hbPodObject(50, 0, 0)}} {
		pod := bytes.ReplaceAll(p.pod, []byte("registry.example"), []byte(reg.Host))
		hp := handlerBenchPod{name: p.name, pod: pod, body: hbReviewBody(pod)}
		// The first review fills the cache; every image must be found.
		hbResponse(tb, hbServe(warm, hbRequest(hp.body), hp.body))
		if n := res.Lookup(tb.Context(), imagefacts.Request{Refs: []string{reg.Host + "/team/app-0:1.24.3"}}); n[reg.Host+"/team/app-0:1.24.3"].Err != "" {
			tb.Fatalf("warm-up lookup failed: %s", n[reg.Host+"/team/app-0:1.24.3"].Err)
		}
		pods = append(pods, hp)
	}
	return pods, off, warm
}

func BenchmarkImageLookupReview(b *testing.B) {
	pods, off, warm := ilSetup(b)
	for _, p := range pods {
		b.Run(p.name+"/off", hbBench(off, p))
		b.Run(p.name+"/warm", hbBench(warm, p))
	}
}

// cpuPerOp runs a benchmark and returns the process's CPU time per
// operation: on a shared machine wall time swings with the neighbours'
// load, CPU time much less.
func cpuPerOp(f func(*testing.B)) (float64, testing.BenchmarkResult) {
	before := cpuTime()
	r := testing.Benchmark(f)
	return float64(cpuTime()-before) / float64(r.N), r
}

func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestImageLookupBenchRatio measures the CPU time of a review with lookup
// on and its cache warm against lookup off, in alternating rounds; the
// ratio of the medians is the figure of docs/image-lookup.md (target at
// most 1.2x).
func TestImageLookupBenchRatio(t *testing.T) {
	if os.Getenv("BENCH_RATIO") != "1" {
		t.Skip("set BENCH_RATIO=1 to time the handlers against each other")
	}
	const target = 1.2
	pods, off, warm := ilSetup(t)
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "%-13s | %12s %7s | %12s %7s | %8s %15s\n", "pod", "off CPU ns", "allocs", "warm CPU ns", "allocs", "warm/off", "(round range)")
	for _, p := range pods {
		var offs, warms, ratios []float64
		var oa, wa int64
		for r := range 7 {
			var o, w float64
			var or, wr testing.BenchmarkResult
			if r%2 == 0 {
				o, or = cpuPerOp(hbBench(off, p))
				w, wr = cpuPerOp(hbBench(warm, p))
			} else {
				w, wr = cpuPerOp(hbBench(warm, p))
				o, or = cpuPerOp(hbBench(off, p))
			}
			offs, warms, ratios = append(offs, o), append(warms, w), append(ratios, w/o)
			oa, wa = or.AllocsPerOp(), wr.AllocsPerOp()
		}
		sort.Float64s(offs)
		sort.Float64s(warms)
		sort.Float64s(ratios)
		o, w := offs[len(offs)/2], warms[len(warms)/2]
		ratio := w / o
		fmt.Fprintf(&tbl, "%-13s | %12.0f %7d | %12.0f %7d | %7.2fx %6.2f-%.2fx\n", p.name, o, oa, w, wa, ratio, ratios[0], ratios[len(ratios)-1])
		if ratio > target {
			t.Errorf("%s: a review with lookup on and the cache warm takes %.2fx one without (target at most %.1fx)", p.name, ratio, target)
		}
	}
	t.Logf("\n%s", tbl.String())
}
