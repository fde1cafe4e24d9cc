package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/mutate"
	"github.com/pod-hardener/pod-hardener/profiles"
)

func podCreate(raw string) *Request {
	return &Request{UID: "uid-1", Operation: "CREATE", Resource: "pods", Namespace: "apps", Object: []byte(raw)}
}

// The request's context reaches the engine: a review the API server gave
// up on stops with the context's error instead of finishing the work.
func TestDecideHonoursContext(t *testing.T) {
	d := NewDecider(profiles.Default(), NoNamespaces{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dec, err := d.Decide(ctx, podCreate(`{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app"}]}}`))
	if !errors.Is(err, context.Canceled) || dec != nil {
		t.Fatalf("cancelled review: decision %v, error %v; want no decision and context.Canceled", dec != nil, err)
	}
}

// A pod over the engine's limits is rejected (allowed: false, whatever the
// failurePolicy), with the reason.
func TestDecideRejectsTooManyWritablePaths(t *testing.T) {
	d := NewDecider(profiles.Default(), NoNamespaces{}, nil)
	ps := make([]string, 2000)
	for i := range ps {
		ps[i] = fmt.Sprintf("/w%d", i)
	}
	raw := `{"metadata":{"name":"wide","annotations":{"` + mutate.AnnotationWritablePaths + `":"` + strings.Join(ps, ",") + `"}},"spec":{"containers":[{"name":"app"}]}}`
	dec, err := d.Decide(context.Background(), podCreate(raw))
	if err != nil {
		t.Fatal(err)
	}
	if dec.Allowed || dec.Patch != nil || dec.Outcome != "denied" {
		t.Fatalf("allowed=%v outcome=%s patch=%d bytes; want a rejection", dec.Allowed, dec.Outcome, len(dec.Patch))
	}
	if want := fmt.Sprintf("more than %d writable paths", mutate.MaxWritablePaths); !strings.Contains(dec.Message, want) {
		t.Errorf("message %q lacks %q", dec.Message, want)
	}
}
