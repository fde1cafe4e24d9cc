package imagefacts

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/pod-hardener/pod-hardener/internal/imagefacts/registrytest"
	"github.com/pod-hardener/pod-hardener/mutate"
)

const passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"

func newResolver(t *testing.T, cfg Config) (*Resolver, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := New(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	return r, reg
}

func lookupOne(t *testing.T, r *Resolver, ref string, q Request) *mutate.ImageFacts {
	t.Helper()
	q.Refs = []string{ref}
	set := r.Lookup(context.Background(), q)
	f := set[ref]
	if f == nil {
		t.Fatalf("no facts for %s in %v", ref, set)
	}
	if f.Ref != ref {
		t.Fatalf("Ref = %q, want %q", f.Ref, ref)
	}
	return f
}

func wantIDs(t *testing.T, f *mutate.ImageFacts, uid, gid int64) {
	t.Helper()
	if f.Err != "" || f.UserErr != "" {
		t.Fatalf("%s: Err %q UserErr %q", f.Ref, f.Err, f.UserErr)
	}
	if f.UID == nil || *f.UID != uid || f.GID == nil || *f.GID != gid {
		t.Fatalf("%s: USER %q resolved to uid %v gid %v, want %d:%d", f.Ref, f.User, deref(f.UID), deref(f.GID), uid, gid)
	}
}

// wantErr checks that a lookup failed with Err containing want, and was
// counted once under reason.
func wantErr(t *testing.T, r *Resolver, f *mutate.ImageFacts, want, reason string) {
	t.Helper()
	if !strings.Contains(f.Err, want) || f.User != "" || f.Digest != "" || f.UID != nil {
		t.Fatalf("facts %+v, want only Err containing %q", f, want)
	}
	if len(f.Err) > maxErrLen+3 {
		t.Fatalf("Err is %d bytes, over the cap", len(f.Err))
	}
	if n := testutil.ToFloat64(r.metrics.failures.WithLabelValues(reason)); n != 1 {
		t.Fatalf("errors{reason=%q} = %v, want 1; Err %q", reason, n, f.Err)
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestFactsFromConfig(t *testing.T) {
	reg := registrytest.New(t)
	img := registrytest.Image(t, v1.Config{User: "1000", WorkingDir: "/srv",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}, "80/udp": {}, "junk": {}},
		Volumes:      map[string]struct{}{"/data": {}, "/cache": {}},
		Env:          []string{"PATH=/bin", "HOME=/first", "HOME=/home/app"}},
		map[string][]byte{"etc/passwd": []byte(passwd)})
	digest := reg.Push(t, "app:1", img)
	r, _ := newResolver(t, Config{})
	blobs := reg.Requests("GET /v2/app/blobs/")
	f := lookupOne(t, r, reg.Host+"/app:1", Request{})
	if f.Err != "" {
		t.Fatal(f.Err)
	}
	if f.Digest != digest || f.User != "1000" || f.WorkingDir != "/srv" || f.Home != "/home/app" ||
		fmt.Sprint(f.ExposedPorts) != "[53 80]" || fmt.Sprint(f.Volumes) != "[/cache /data]" {
		t.Fatalf("facts = %+v", f)
	}
	if *f.UID != 1000 || f.GID != nil {
		t.Fatalf("numeric USER 1000: uid %v gid %v, want 1000 and unknown", deref(f.UID), deref(f.GID))
	}
	// A numeric USER needs no account file: no layer is fetched.
	if n := reg.Requests("GET /v2/app/blobs/") - blobs - 1; n != 0 {
		t.Fatalf("%d layer blobs fetched for a numeric USER, want 0", n)
	}
}

// A later layer's /etc/passwd and /etc/group override the base's, as the
// container's filesystem does.
func TestNamedUserTopMostLayer(t *testing.T) {
	reg := registrytest.New(t)
	base := map[string][]byte{"etc/passwd": []byte(passwd), "etc/group": []byte("root:x:0:\napp:x:1000:\n"), "bin/sh": []byte("x")}
	top := map[string][]byte{"etc/passwd": []byte("root:x:0:0::/root:/bin/sh\n# comment\nbroken line\napp:x:2000:2001::/home/app:/bin/sh\n"),
		"etc/group": []byte("root:x:0:\nstaff:x:50:app\n")}
	noise := map[string][]byte{"srv/index.html": []byte("hi")}
	for _, c := range []struct {
		user     string
		uid, gid int64
	}{{"app", 2000, 2001}, {"app:staff", 2000, 50}, {"app:7", 2000, 7}, {"3000:staff", 3000, 50}, {"root", 0, 0}, {"", 0, 0}, {"5:6", 5, 6}} {
		repo := "named:" + strings.NewReplacer(":", "-").Replace(c.user) + "x"
		reg.Push(t, repo, registrytest.Image(t, v1.Config{User: c.user}, base, top, noise))
		r, _ := newResolver(t, Config{})
		wantIDs(t, lookupOne(t, r, reg.Host+"/"+repo, Request{}), c.uid, c.gid)
	}
}

func TestNamedUserFailures(t *testing.T) {
	reg := registrytest.New(t)
	base := map[string][]byte{"etc/passwd": []byte(passwd), "etc/group": []byte("app:x:1000:\n")}
	huge := []byte(strings.Repeat("u:x:1:1::/:/bin/sh\n", (maxAccountFileBytes/19)+10))
	for _, c := range []struct {
		name, user string
		layers     []map[string][]byte
		want       string
	}{
		{"deleted by a whiteout", "app", []map[string][]byte{base, {"etc/.wh.passwd": nil}}, "has no /etc/passwd"},
		{"hidden by an opaque /etc", "app", []map[string][]byte{base, {"etc/.wh..wh..opq": nil, "etc/hostname": []byte("x")}}, "has no /etc/passwd"},
		{"no passwd", "app", []map[string][]byte{{"bin/sh": []byte("x")}}, "has no /etc/passwd"},
		{"unknown user", "nobody", []map[string][]byte{base}, `user "nobody" is not in the image's /etc/passwd`},
		{"unknown group", "app:wheel", []map[string][]byte{base}, `group "wheel" is not in the image's /etc/group`},
		{"huge passwd", "app", []map[string][]byte{base, {"etc/passwd": huge}}, "over the 1048576-byte limit"},
		{"uid not a number", "app", []map[string][]byte{{"etc/passwd": []byte("app:x:abc:1::/:/bin/sh\n")}}, `has uid "abc", not a number`},
		{"uid out of range", "app", []map[string][]byte{{"etc/passwd": []byte("app:x:99999999999:1::/:/bin/sh\n")}}, `not a number`},
		{"binary passwd", "app", []map[string][]byte{{"etc/passwd": []byte("app:x:1:1\x00\x01")}}, "NUL bytes"},
		{"numeric uid out of range", "99999999999", nil, "out of range"},
		{"group only", ":app", nil, "names a group but no user"},
	} {
		t.Run(c.name, func(t *testing.T) {
			repo := "fail:" + strings.NewReplacer(" ", "-", "/", "-").Replace(c.name)
			reg.Push(t, repo, registrytest.Image(t, v1.Config{User: c.user}, c.layers...))
			r, prom := newResolver(t, Config{})
			f := lookupOne(t, r, reg.Host+"/"+repo, Request{})
			if f.Err != "" || f.User != c.user || f.UID != nil || f.GID != nil || !strings.Contains(f.UserErr, c.want) {
				t.Fatalf("facts %+v, want UserErr containing %q and no ids", f, c.want)
			}
			if n := testutil.ToFloat64(r.metrics.failures.WithLabelValues("user")); n != 1 {
				t.Fatalf("user errors metric = %v, want 1", n)
			}
			_ = prom
		})
	}
}

func TestRefForms(t *testing.T) {
	reg := registrytest.New(t)
	img := registrytest.Image(t, v1.Config{User: "7"})
	digest := reg.Push(t, "forms:latest", img)
	r, _ := newResolver(t, Config{})
	for _, ref := range []string{reg.Host + "/forms", reg.Host + "/forms:latest", reg.Host + "/forms@" + digest, reg.Host + "/forms:latest@" + digest} {
		f := lookupOne(t, r, ref, Request{})
		if f.Err != "" || f.Digest != digest || f.User != "7" {
			t.Fatalf("%s: %+v, want digest %s", ref, f, digest)
		}
	}
	// A digest only: no tag to resolve, so no HEAD.
	r2, _ := newResolver(t, Config{})
	before := reg.Requests("HEAD ")
	lookupOne(t, r2, reg.Host+"/forms@"+digest, Request{})
	if reg.Requests("HEAD ") != before {
		t.Fatal("a digest reference was resolved with HEAD")
	}
	f := lookupOne(t, r2, "UPPER/Case:!!", Request{})
	if !strings.Contains(f.Err, "not an image reference") {
		t.Fatalf("invalid reference: Err = %q", f.Err)
	}
}

func TestRegistryFaults(t *testing.T) {
	reg := registrytest.New(t)
	reg.Push(t, "fault:1", registrytest.Image(t, v1.Config{User: "app"}, map[string][]byte{"etc/passwd": []byte(passwd)}))
	ref := reg.Host + "/fault:1"
	for _, c := range []struct {
		name   string
		wrap   func(w http.ResponseWriter, r *http.Request, next http.Handler)
		reason string
		want   string
	}{
		{"404", nil, "not_found", "404 Not Found"},
		{"401", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		}, "unauthorized", "401 Unauthorized"},
		{"malformed manifest", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if strings.Contains(r.URL.Path, "/manifests/sha256:") && r.Method == http.MethodGet {
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				fmt.Fprint(w, `{"schemaVersion": 2, "config": "oops"`)
				return
			}
			next.ServeHTTP(w, r)
		}, "malformed", "manifest"},
		{"manifest too large", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if strings.Contains(r.URL.Path, "/manifests/sha256:") && r.Method == http.MethodGet {
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				fmt.Fprint(w, `{"schemaVersion": 2, "annotations": {"x": "`+strings.Repeat("a", maxManifestBytes)+`"}}`)
				return
			}
			next.ServeHTTP(w, r)
		}, "too_large", "manifest larger than"},
		{"500", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			// A registry chooses its error text: a long one is cut.
			http.Error(w, strings.Repeat("boom\n", 5000), http.StatusInternalServerError)
		}, "registry_error", "500"},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg.SetWrap(c.wrap)
			defer reg.SetWrap(nil)
			r, _ := newResolver(t, Config{})
			q := ref
			if c.name == "404" {
				q = reg.Host + "/missing:1"
			}
			wantErr(t, r, lookupOne(t, r, q, Request{}), c.want, c.reason)
		})
	}
	t.Run("down", func(t *testing.T) {
		down := registrytest.New(t)
		host := down.Host
		down.Close()
		r, _ := newResolver(t, Config{})
		wantErr(t, r, lookupOne(t, r, host+"/fault:1", Request{}), "connection refused", "unreachable")
	})
}

// A private registry: anonymous gets 401, the pod's pull secret gets in.
func TestPullSecretCredentials(t *testing.T) {
	reg := registrytest.New(t)
	reg.Push(t, "private:1", registrytest.Image(t, v1.Config{User: "42"}))
	reg.RequireBasicAuth("puller", "s3cret")
	ref := reg.Host + "/private:1"
	r, _ := newResolver(t, Config{})
	if f := lookupOne(t, r, ref, Request{}); !strings.Contains(f.Err, "401") && !strings.Contains(f.Err, "UNAUTHORIZED") {
		t.Fatalf("anonymous: Err = %q, want a 401", f.Err)
	}
	other := &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"other.example":{"username":"x","password":"y"}}}`)}}
	good := &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(
		`{"auths":{"http://` + reg.Host + `/v1/":{"auth":"cHVsbGVyOnMzY3JldA=="}},"credsStore":"evil"}`)}}
	kc, err := NewSecretKeychain([]*corev1.Secret{other, good})
	if err != nil {
		t.Fatal(err)
	}
	f := lookupOne(t, r, ref, Request{Keychain: kc, KeychainID: "ns/sa"})
	if f.Err != "" || *f.UID != 42 {
		t.Fatalf("with the pull secret: %+v", f)
	}
	if _, err := NewSecretKeychain([]*corev1.Secret{{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"x":{"auth":"!!"}}}`)}}}); err == nil {
		t.Fatal("a malformed pull secret was accepted")
	}
}

func TestManifestListPlatform(t *testing.T) {
	reg := registrytest.New(t)
	amd := registrytest.Image(t, v1.Config{User: "amd"}, map[string][]byte{"etc/passwd": []byte("amd:x:11:11::/:/bin/sh\n")})
	arm := registrytest.Image(t, v1.Config{User: "arm"}, map[string][]byte{"etc/passwd": []byte("arm:x:22:22::/:/bin/sh\n")})
	digest := reg.PushIndex(t, "multi:1",
		registrytest.PlatformImage{Platform: v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, Image: arm},
		registrytest.PlatformImage{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Image: amd})
	ref := reg.Host + "/multi:1"
	r, _ := newResolver(t, Config{})
	f := lookupOne(t, r, ref, Request{})
	wantIDs(t, f, 11, 11)
	if f.User != "amd" || f.Digest != digest {
		t.Fatalf("default platform: %+v, want the amd64 image of index %s", f, digest)
	}
	f = lookupOne(t, r, ref, Request{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}})
	wantIDs(t, f, 22, 22)
	if f.User != "arm" {
		t.Fatalf("arm64: User %q", f.User)
	}
	wantErr(t, r, lookupOne(t, r, ref, Request{Platform: v1.Platform{OS: "linux", Architecture: "s390x"}}), "s390x", "platform")
}

// A slow registry: the lookup answers at its budget with Err, and its
// fetch goes on, so the next pod finds the facts cached.
func TestSlowRegistryBudget(t *testing.T) {
	reg := registrytest.New(t)
	reg.Push(t, "slow:1", registrytest.Image(t, v1.Config{User: "9"}))
	release := make(chan struct{})
	reg.SetWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		<-release
		next.ServeHTTP(w, r)
	})
	budget := 100 * time.Millisecond
	r, _ := newResolver(t, Config{Budget: budget})
	ref := reg.Host + "/slow:1"
	start := time.Now()
	f := lookupOne(t, r, ref, Request{})
	if took := time.Since(start); took > budget+time.Second {
		t.Fatalf("lookup took %v with a %v budget", took, budget)
	}
	wantErr(t, r, f, "no answer within the 100ms budget", "timeout")
	close(release)
	// The background fetch fills the cache: a later lookup is answered
	// without the registry.
	deadline := time.Now().Add(10 * time.Second)
	for {
		before := reg.Requests("")
		f = lookupOne(t, r, ref, Request{})
		if f.Err == "" && reg.Requests("") == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("facts never cached: %+v", f)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCacheHitNoRequest(t *testing.T) {
	reg := registrytest.New(t)
	reg.Push(t, "hit:1", registrytest.Image(t, v1.Config{User: "app"}, map[string][]byte{"etc/passwd": []byte(passwd)}))
	r, _ := newResolver(t, Config{TagTTL: time.Hour})
	ref := reg.Host + "/hit:1"
	wantIDs(t, lookupOne(t, r, ref, Request{}), 1000, 1000)
	before := reg.Requests("")
	wantIDs(t, lookupOne(t, r, ref, Request{}), 1000, 1000)
	if n := reg.Requests("") - before; n != 0 {
		t.Fatalf("cache hit made %d registry requests", n)
	}
	if h := testutil.ToFloat64(r.metrics.cacheReq.WithLabelValues("digest", "hit")); h != 1 {
		t.Fatalf("digest cache hits = %v", h)
	}
	// Other credentials resolve the tag themselves (HEAD), and share the
	// digest's facts (no manifest GET).
	heads, gets := reg.Requests("HEAD "), reg.Requests("GET ")
	lookupOne(t, r, ref, Request{KeychainID: "other"})
	if reg.Requests("HEAD ") != heads+1 || reg.Requests("GET /v2/hit/manifests") != 1 {
		t.Fatalf("other credentials: HEAD %d->%d, GET %d->%d", heads, reg.Requests("HEAD "), gets, reg.Requests("GET "))
	}
	// An expired tag is resolved again.
	r.tags.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	heads = reg.Requests("HEAD ")
	lookupOne(t, r, ref, Request{})
	if reg.Requests("HEAD ") != heads+1 {
		t.Fatal("an expired tag was not resolved again")
	}
}

func TestConcurrentLookupsCoalesced(t *testing.T) {
	reg := registrytest.New(t)
	reg.Push(t, "co:1", registrytest.Image(t, v1.Config{User: "app"}, map[string][]byte{"etc/passwd": []byte(passwd)}))
	gate := make(chan struct{})
	reg.SetWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		<-gate
		next.ServeHTTP(w, r)
	})
	r, _ := newResolver(t, Config{Budget: 10 * time.Second})
	ref := reg.Host + "/co:1"
	heads := reg.Requests("HEAD /v2/co/manifests")
	const n = 20
	var wg sync.WaitGroup
	facts := make([]*mutate.ImageFacts, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			facts[i] = r.Lookup(context.Background(), Request{Refs: []string{ref, ref}})[ref]
		}()
	}
	// Let every lookup reach the registry gate before opening it.
	time.Sleep(200 * time.Millisecond)
	close(gate)
	wg.Wait()
	for _, f := range facts {
		wantIDs(t, f, 1000, 1000)
	}
	if h, g := reg.Requests("HEAD /v2/co/manifests")-heads, reg.Requests("GET /v2/co/manifests"); h != 1 || g != 1 {
		t.Fatalf("%d concurrent lookups made %d HEAD and %d manifest GET, want 1 each", n, h, g)
	}
}

func TestLRUEviction(t *testing.T) {
	reg := registrytest.New(t)
	r, _ := newResolver(t, Config{CacheSize: 2})
	var refs []string
	for i := range 3 {
		repo := fmt.Sprintf("lru%d:1", i)
		reg.Push(t, repo, registrytest.Image(t, v1.Config{User: fmt.Sprint(i + 1)}))
		refs = append(refs, reg.Host+"/"+repo)
		lookupOne(t, r, refs[i], Request{})
	}
	if n := r.digests.len(); n != 2 {
		t.Fatalf("digest cache holds %d entries, bound 2", n)
	}
	if n := r.tags.len(); n != 2 {
		t.Fatalf("tag cache holds %d entries, bound 2", n)
	}
	before := reg.Requests("GET /v2/lru0/manifests")
	lookupOne(t, r, refs[0], Request{})
	if reg.Requests("GET /v2/lru0/manifests") != before+1 {
		t.Fatal("the least recently used image was not evicted")
	}
}

// A pod naming many images costs no more than MaxImages lookups.
func TestMaxImagesPerReview(t *testing.T) {
	reg := registrytest.New(t)
	reg.Push(t, "many:1", registrytest.Image(t, v1.Config{User: "1"}))
	r, _ := newResolver(t, Config{MaxImages: 3})
	var refs []string
	for i := range 50 {
		refs = append(refs, fmt.Sprintf("%s/many%d:1", reg.Host, i))
	}
	heads := reg.Requests("HEAD ")
	set := r.Lookup(context.Background(), Request{Refs: refs})
	skipped := 0
	for _, f := range set {
		if strings.Contains(f.Err, "more than 3 distinct images") {
			skipped++
		}
	}
	if len(set) != 50 || skipped != 47 {
		t.Fatalf("%d facts, %d skipped; want 50 and 47", len(set), skipped)
	}
	if n := reg.Requests("HEAD ") - heads; n != 3 {
		t.Fatalf("%d tag lookups reached the registry, want 3", n)
	}
}

// Each registry gets at most RegistryConcurrency requests at a time.
func TestRegistryConcurrencyLimit(t *testing.T) {
	reg := registrytest.New(t)
	var mu sync.Mutex
	inFlight, peak := 0, 0
	var refs []string
	for i := range 12 {
		repo := fmt.Sprintf("lim%d:1", i)
		reg.Push(t, repo, registrytest.Image(t, v1.Config{User: "1"}))
		refs = append(refs, reg.Host+"/"+repo)
	}
	reg.SetWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		next.ServeHTTP(w, r)
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	r, _ := newResolver(t, Config{RegistryConcurrency: 2, MaxImages: 12, Budget: 30 * time.Second})
	for _, f := range r.Lookup(context.Background(), Request{Refs: refs}) {
		if f.Err != "" {
			t.Fatal(f.Err)
		}
	}
	if peak > 2 || peak == 0 {
		t.Fatalf("peak concurrent requests to one registry = %d, limit 2", peak)
	}
	if n := len(r.transport.(*limitedTransport).hosts); n != 0 {
		t.Fatalf("%d per-host entries left after the lookups", n)
	}
}

func TestInsecureRegistryParsed(t *testing.T) {
	r, _ := newResolver(t, Config{InsecureRegistries: []string{"registry.internal:5000"}})
	for ref, scheme := range map[string]string{"registry.internal:5000/a:1": "http", "registry.example:5000/a:1": "https"} {
		p, err := r.parse(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Context().Scheme(); got != scheme {
			t.Fatalf("%s: scheme %s, want %s", ref, got, scheme)
		}
	}
}
