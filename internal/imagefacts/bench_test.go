package imagefacts

// Lookup latency on a loopback registry (go-containerregistry's in-process
// registry over HTTP on 127.0.0.1), one image per lookup:
//
//   - cold-numeric: a fresh cache, numeric USER: HEAD the tag, GET the
//     manifest and the config.
//   - cold-named: a fresh cache, named USER: also stream the top layer
//     holding /etc/passwd (a 3-layer image, passwd in the middle one).
//   - warm: the same lookup answered from the caches.
//   - budget-worst: a registry that never answers; the lookup returns at
//     its budget (the default 2s).
//
//	go test -run '^$' -bench Lookup -benchtime 200x ./internal/imagefacts/

import (
	"context"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pod-hardener/pod-hardener/internal/imagefacts/registrytest"
)

func BenchmarkLookup(b *testing.B) {
	reg := registrytest.New(b)
	big := map[string][]byte{"usr/lib/big": []byte(strings.Repeat("x", 1<<20))}
	reg.Push(b, "numeric:1", registrytest.Image(b, v1.Config{User: "1000"}, big))
	reg.Push(b, "named:1", registrytest.Image(b, v1.Config{User: "app"}, big,
		map[string][]byte{"etc/passwd": []byte(passwd), "etc/group": []byte("app:x:1000:\n")}, map[string][]byte{"srv/app": []byte("bin")}))
	run := func(b *testing.B, ref string, fresh bool) {
		r, err := New(Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if fresh {
				r, _ = New(Config{}, nil)
			}
			f := r.Lookup(context.Background(), Request{Refs: []string{ref}})[ref]
			if f.Err != "" || f.UID == nil {
				b.Fatalf("%+v", f)
			}
		}
	}
	b.Run("cold-numeric", func(b *testing.B) { run(b, reg.Host+"/numeric:1", true) })
	b.Run("cold-named", func(b *testing.B) { run(b, reg.Host+"/named:1", true) })
	b.Run("warm", func(b *testing.B) { run(b, reg.Host+"/named:1", false) })
	b.Run("budget-worst", func(b *testing.B) {
		stuck := registrytest.New(b)
		done := make(chan struct{})
		defer close(done)
		stuck.SetWrap(func(http.ResponseWriter, *http.Request, http.Handler) { <-done })
		r, _ := New(Config{}, nil)
		ref := stuck.Host + "/app:1"
		for b.Loop() {
			if f := r.Lookup(context.Background(), Request{Refs: []string{ref}})[ref]; f.Err == "" {
				b.Fatal("a stuck registry answered")
			}
		}
	})
}
