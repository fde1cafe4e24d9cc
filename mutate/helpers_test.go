package mutate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/internal/jsondiff"
	"github.com/pod-hardener/pod-hardener/internal/pss"
	"github.com/pod-hardener/pod-hardener/profiles"
	"k8s.io/pod-security-admission/api"
)

// profile returns a built-in profile, optionally changed by fns.
func profile(t testing.TB, name string, fns ...func(*profiles.Profile)) *profiles.Profile {
	t.Helper()
	p, ok := profiles.Default().Profile(name)
	if !ok {
		t.Fatalf("no profile %q", name)
	}
	for _, f := range fns {
		f(p)
	}
	return p
}

func onConflict(a profiles.Action) func(*profiles.Profile) {
	return func(p *profiles.Profile) { p.OnConflict = a }
}

// harden runs the engine, with the restricted profile unless in names one.
func harden(t testing.TB, raw string, in Input) *Result {
	t.Helper()
	if in.Profile == nil {
		in.Profile = profile(t, "restricted")
	}
	r, err := hardenRaw(context.Background(), []byte(raw), in)
	if err != nil {
		t.Fatalf("Harden: %v", err)
	}
	return r
}

// apply applies operations with evanphx/json-patch, as the API server would.
func apply(t testing.TB, raw string, ops []Operation) []byte {
	t.Helper()
	out, err := Apply([]byte(raw), ops)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// get reads a value from a JSON document at a dotted path; a numeric part
// indexes an array.
func get(t testing.TB, doc []byte, path string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("decoding %s: %v", doc, err)
	}
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			i := 0
			for _, ch := range part {
				i = i*10 + int(ch-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// restrictedFailures judges a pod with the official PSS evaluator.
func restrictedFailures(t testing.TB, doc []byte) []pss.Failure {
	t.Helper()
	p, err := pss.DecodePod(doc)
	if err != nil {
		t.Fatal(err)
	}
	return pss.Evaluate(p, api.LevelRestricted)
}

// mustBeIdempotent hardens the output again and demands no operation.
func mustBeIdempotent(t testing.TB, out []byte, in Input) {
	t.Helper()
	r := harden(t, string(out), in)
	if len(r.Operations) != 0 {
		pb, _ := Patch(r.Operations)
		t.Fatalf("second pass not empty: %s\non %s", pb, out)
	}
}

// lost returns the leaf paths of orig whose value differs or is missing in
// out: what hardening removed or changed. Explicit nulls may be filled.
func lost(t testing.TB, orig, out []byte) []string {
	t.Helper()
	d, err := jsondiff.Lost(orig, out)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
