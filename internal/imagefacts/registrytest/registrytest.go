// Package registrytest runs go-containerregistry's in-process registry for
// tests, counting requests, and builds the images the lookups read.
package registrytest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggmutate "github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is a registry on a loopback httptest server.
type Registry struct {
	Host string
	srv  *httptest.Server

	mu sync.Mutex
	// Wrap, when set, handles each request instead of the registry (the
	// registry itself is passed as next). Set it after pushing.
	Wrap     func(w http.ResponseWriter, r *http.Request, next http.Handler)
	requests []string
}

// New starts a registry, closed when the test ends.
func New(t testing.TB) *Registry {
	t.Helper()
	reg := &Registry{}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	reg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.mu.Lock()
		reg.requests = append(reg.requests, r.Method+" "+r.URL.Path)
		wrap := reg.Wrap
		reg.mu.Unlock()
		if wrap != nil {
			wrap(w, r, inner)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.srv.Close)
	reg.Host = strings.TrimPrefix(reg.srv.URL, "http://")
	return reg
}

// Close stops the registry now (a registry that is down).
func (r *Registry) Close() { r.srv.Close() }

// SetWrap sets Wrap safely while lookups may run.
func (r *Registry) SetWrap(f func(w http.ResponseWriter, r *http.Request, next http.Handler)) {
	r.mu.Lock()
	r.Wrap = f
	r.mu.Unlock()
}

// Requests returns how many requests reached the registry whose
// "METHOD path" contains substr ("" counts all).
func (r *Registry) Requests(substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.requests {
		if strings.Contains(q, substr) {
			n++
		}
	}
	return n
}

// Image builds an image with cfg from layers given as file maps, bottom first.
func Image(t testing.TB, cfg v1.Config, layers ...map[string][]byte) v1.Image {
	t.Helper()
	img := empty.Image
	for _, files := range layers {
		l, err := crane.Layer(files)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = ggmutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	img, err := ggmutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Push writes img as host/repo (a tag or digest reference) and returns
// its digest.
func (r *Registry) Push(t testing.TB, repo string, img v1.Image) string {
	t.Helper()
	return r.push(t, repo, img.Digest, func(ref name.Reference) error { return remote.Write(ref, img) })
}

func (r *Registry) push(t testing.TB, repo string, digest func() (v1.Hash, error), write func(name.Reference) error) string {
	t.Helper()
	ref, err := name.ParseReference(r.Host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(ref); err != nil {
		t.Fatal(err)
	}
	d, err := digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// PlatformImage is one entry of an index.
type PlatformImage struct {
	Platform v1.Platform
	Image    v1.Image
}

// PushIndex writes an index of images, one per platform, and returns its
// digest.
func (r *Registry) PushIndex(t testing.TB, repo string, imgs ...PlatformImage) string {
	t.Helper()
	var adds []ggmutate.IndexAddendum
	for _, pi := range imgs {
		adds = append(adds, ggmutate.IndexAddendum{Add: pi.Image, Descriptor: v1.Descriptor{Platform: &pi.Platform}})
	}
	idx := ggmutate.AppendManifests(empty.Index, adds...)
	return r.push(t, repo, idx.Digest, func(ref name.Reference) error { return remote.WriteIndex(ref, idx) })
}

// RequireBasicAuth makes the registry answer 401 to any request without
// these credentials.
func (r *Registry) RequireBasicAuth(user, password string) {
	r.SetWrap(func(w http.ResponseWriter, req *http.Request, next http.Handler) {
		if u, p, ok := req.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, req)
	})
}
