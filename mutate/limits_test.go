package mutate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// widePod is a pod of n bare containers whose writable-paths annotation
// names paths /w0 ... /w<paths-1>: the shape of a pod that made the work
// grow with containers times paths.
func widePod(n, paths int) string {
	ps := make([]string, paths)
	for i := range ps {
		ps[i] = fmt.Sprintf("/w%d", i)
	}
	cs := make([]string, n)
	for i := range cs {
		cs[i] = fmt.Sprintf(`{"name":"c%d","image":"registry.example/app:1"}`, i)
	}
	return `{"metadata":{"name":"wide","annotations":{"` + AnnotationWritablePaths + `":"` + strings.Join(ps, ",") +
		`"}},"spec":{"containers":[` + strings.Join(cs, ",") + `]}}`
}

// allocs counts the allocations of one Harden of raw.
func allocs(t *testing.T, raw string, in Input) float64 {
	t.Helper()
	return testing.AllocsPerRun(3, func() {
		if _, err := hardenRaw(context.Background(), []byte(raw), in); err != nil {
			t.Fatal(err)
		}
	})
}

// The reproduction of the review: 300 containers, 2,000 writable paths.
// It is rejected, naming the annotations and the limit, before any
// hardening: its cost does not grow with the paths past the limit (20,000
// paths cost what 2,000 do) and stays below hardening the same pod with
// no annotation at all.
func TestTooManyWritablePathsRejected(t *testing.T) {
	in := Input{Profile: profile(t, "restricted")}
	raw := widePod(300, 2000)
	r := harden(t, raw, in)
	if !r.Denied || len(r.Operations) != 0 {
		t.Fatalf("not rejected: denied=%v, %d operations", r.Denied, len(r.Operations))
	}
	for _, want := range []string{`pod "wide" rejected`, AnnotationWritablePaths, AnnotationWritablePathPrefix + "<container>", fmt.Sprintf("more than %d writable paths", MaxWritablePaths)} {
		if !strings.Contains(r.Message, want) {
			t.Errorf("message %q lacks %q", r.Message, want)
		}
	}

	at2k := allocs(t, raw, in)
	at20k := allocs(t, widePod(300, 20000), in)
	plain := allocs(t, widePod(300, 0), in)
	t.Logf("allocations: 2,000 paths %.0f, 20,000 paths %.0f, no paths (hardened) %.0f", at2k, at20k, plain)
	if at20k > at2k+8 {
		t.Errorf("rejecting 20,000 paths took %.0f allocations, 2,000 took %.0f: the work grows past the limit", at20k, at2k)
	}
	if at2k >= plain {
		t.Errorf("rejecting took %.0f allocations, hardening the pod without paths %.0f: the rejection comes too late", at2k, plain)
	}
}

// The limit counts distinct paths across the pod annotation and the
// per-container ones, bad entries included; repeats count once.
func TestWritablePathsLimitCounts(t *testing.T) {
	in := Input{Profile: profile(t, "restricted")}
	paths := func(from, to int) string {
		var ps []string
		for i := from; i < to; i++ {
			ps = append(ps, fmt.Sprintf("/p%d", i))
		}
		return strings.Join(ps, ",")
	}
	pod := func(podAnn, a, b string) string {
		return `{"metadata":{"name":"p","annotations":{"` + AnnotationWritablePaths + `":"` + podAnn + `","` +
			AnnotationWritablePathPrefix + `a":"` + a + `","` + AnnotationWritablePathPrefix + `b":"` + b +
			`"}},"spec":{"containers":[{"name":"a"},{"name":"b"}]}}`
	}
	for _, c := range []struct {
		name   string
		raw    string
		denied bool
	}{
		{"64 across pod and containers", pod(paths(0, 32), paths(32, 48), paths(48, 64)), false},
		{"65 across pod and containers", pod(paths(0, 32), paths(32, 48), paths(48, 65)), true},
		{"repeats count once", pod(paths(0, 64)+","+paths(0, 64), paths(0, 64), paths(10, 20)+","+paths(10, 20)), false},
		{"the same path for two containers counts once", pod("", paths(0, 64), paths(0, 64)), false},
		{"bad entries count", pod(paths(0, 60), "relative,also/relative,/a/../b,/c/", "/x,/y"), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := harden(t, c.raw, in)
			if r.Denied != c.denied {
				t.Fatalf("denied = %v, want %v (%s)", r.Denied, c.denied, r.Message)
			}
			if c.denied {
				return
			}
			out := apply(t, c.raw, r.Operations)
			if f := restrictedFailures(t, out); len(f) != 0 {
				t.Errorf("fails restricted: %v", f)
			}
			mustBeIdempotent(t, out, in)
		})
	}
}

// The largest pod the limits allow in the shape of the review's, 300
// containers each mounting 64 writable paths (and the profile's /tmp), is
// hardened completely, within MaxPatchBytes.
func TestWidestAllowedPodHardened(t *testing.T) {
	in := Input{Profile: profile(t, "restricted")}
	raw := widePod(300, MaxWritablePaths)
	r := harden(t, raw, in)
	if r.Denied {
		t.Fatalf("rejected: %s", r.Message)
	}
	pb, err := Patch(r.Operations)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("patch %d bytes (bound counted %d, cap %d)", len(pb), r.patchSize, MaxPatchBytes)
	if len(pb) > MaxPatchBytes || len(pb) > r.patchSize {
		t.Errorf("patch of %d bytes: bound %d, cap %d", len(pb), r.patchSize, MaxPatchBytes)
	}
	out := apply(t, raw, r.Operations)
	if f := restrictedFailures(t, out); len(f) != 0 {
		t.Errorf("fails restricted: %v", f)
	}
	for _, i := range []int{0, 299} {
		mounts, _ := get(t, out, fmt.Sprintf("spec.containers.%d.volumeMounts", i)).([]any)
		if len(mounts) != MaxWritablePaths+1 {
			t.Errorf("container %d has %d mounts, want %d", i, len(mounts), MaxWritablePaths+1)
		}
	}
	if vols, _ := get(t, out, "spec.volumes").([]any); len(vols) != MaxWritablePaths+1 {
		t.Errorf("%d volumes, want %d", len(vols), MaxWritablePaths+1)
	}
	mustBeIdempotent(t, out, in)
}

// A pod whose patch would pass MaxPatchBytes is rejected, and the engine
// stops building there: three times the containers cost about the same.
func TestPatchSizeCap(t *testing.T) {
	in := Input{Profile: profile(t, "restricted")}
	raw := widePod(1500, MaxWritablePaths)
	r := harden(t, raw, in)
	if !r.Denied || len(r.Operations) != 0 {
		t.Fatalf("not rejected: denied=%v, %d operations", r.Denied, len(r.Operations))
	}
	if want := fmt.Sprintf("a patch over %d MiB", MaxPatchBytes>>20); !strings.Contains(r.Message, want) {
		t.Errorf("message %q lacks %q", r.Message, want)
	}
	a1 := allocs(t, raw, in)
	a3 := allocs(t, widePod(4500, MaxWritablePaths), in)
	t.Logf("allocations: 1,500 containers %.0f, 4,500 containers %.0f", a1, a3)
	if a3 > 1.5*a1 {
		t.Errorf("4,500 containers took %.0f allocations, 1,500 took %.0f: the engine did not stop at the cap", a3, a1)
	}
}

// The engine stops when the request's context is done: the API server has
// given up, and the work would be for nobody.
func TestHardenHonoursContext(t *testing.T) {
	in := Input{Profile: profile(t, "restricted")}
	raw := []byte(widePod(3, 2))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := hardenRaw(ctx, raw, in)
	if !errors.Is(err, context.Canceled) || r != nil {
		t.Fatalf("cancelled: got a result: %v, error %v; want no result and context.Canceled", r != nil, err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	facts := profiles.Facts{Namespace: "apps", NamespaceKnown: true}
	if r, err := Review(ctx, profiles.Default(), raw, facts, Options{}); !errors.Is(err, context.DeadlineExceeded) || r != nil {
		t.Fatalf("deadline passed: got a result: %v, error %v; want no result and context.DeadlineExceeded", r != nil, err)
	}
}
