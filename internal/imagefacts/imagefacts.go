// Package imagefacts reads what a container image says about itself (its
// config's USER, exposed ports, volumes, working directory, HOME, and the
// numeric ids of a named USER) from its registry, for image-aware
// hardening. It is fast and bounded: facts are cached by digest (they never
// change) and tags by a short TTL, concurrent lookups of one image share a
// fetch, each registry gets a few requests at a time, and a lookup gives
// up at its budget with the facts' Err set, never holding admission longer.
package imagefacts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/pod-hardener/pod-hardener/mutate"
)

// Config bounds the lookups; zero values take the defaults below.
type Config struct {
	// Budget is the most a Lookup waits for all a pod's images (default
	// 2s, well inside the webhook's 5s timeout). Facts not ready by then
	// carry Err; their fetch goes on in the background (up to
	// FetchTimeout) so that the next pod of the same image finds it cached.
	Budget time.Duration
	// FetchTimeout bounds one image's fetch (default 10s).
	FetchTimeout time.Duration
	// CacheSize is how many digests' facts are kept (default 1000).
	CacheSize int
	// TagTTL is how long a tag's digest is trusted (default 30s).
	TagTTL time.Duration
	// RegistryConcurrency is the most requests in flight to one registry
	// host (default 4).
	RegistryConcurrency int
	// MaxImages is the most distinct images looked up for one pod (default
	// 16); the others get Err, so a pod naming thousands of images costs
	// no more than one naming 16.
	MaxImages int
	// MaxFetches is the most fetches in flight at once, across all pods
	// (default 64); a lookup beyond it gets Err at once.
	MaxFetches int
	// InsecureRegistries are registry hosts (host[:port]) reached over
	// plain HTTP. Loopback and private addresses already are, as
	// go-containerregistry reaches them.
	InsecureRegistries []string
	// Transport is the HTTP transport (default remote.DefaultTransport).
	Transport http.RoundTripper
}

func (c *Config) defaults() {
	if c.Budget <= 0 {
		c.Budget = 2 * time.Second
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 10 * time.Second
	}
	if c.CacheSize <= 0 {
		c.CacheSize = 1000
	}
	if c.TagTTL <= 0 {
		c.TagTTL = 30 * time.Second
	}
	if c.RegistryConcurrency <= 0 {
		c.RegistryConcurrency = 4
	}
	if c.MaxImages <= 0 {
		c.MaxImages = 16
	}
	if c.MaxFetches <= 0 {
		c.MaxFetches = 64
	}
	if c.Transport == nil {
		c.Transport = remote.DefaultTransport
	}
}

// DefaultPlatform is the platform looked up when the pod selects none.
var DefaultPlatform = v1.Platform{OS: "linux", Architecture: "amd64"}

// Resolver looks up image facts; one serves every review.
type Resolver struct {
	cfg       Config
	insecure  map[string]bool
	transport http.RoundTripper
	// digests holds facts by digest and platform; tags holds a tag's
	// digest by credentials and tag.
	digests *lru[digestKey, *mutate.ImageFacts]
	tags    *lru[tagKey, string]
	flight  singleflight.Group
	fetches chan struct{}
	metrics *metrics
}

// New makes a Resolver and registers its metrics on reg (nil: none).
func New(cfg Config, reg prometheus.Registerer) (*Resolver, error) {
	cfg.defaults()
	r := &Resolver{
		cfg:       cfg,
		insecure:  map[string]bool{},
		transport: newLimitedTransport(cfg.Transport, cfg.RegistryConcurrency),
		digests:   newLRU[digestKey, *mutate.ImageFacts](cfg.CacheSize, 0),
		tags:      newLRU[tagKey, string](cfg.CacheSize, cfg.TagTTL),
		fetches:   make(chan struct{}, cfg.MaxFetches),
	}
	for _, h := range cfg.InsecureRegistries {
		r.insecure[h] = true
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	return r, nil
}

// tagKey keys a tag's digest: the reference as written and the
// credentials that resolved it.
type tagKey struct{ keychainID, ref string }

// digestKey keys facts: an index's digest gives one image per platform.
type digestKey struct{ digest, platform string }

// Budget is the most one Lookup waits.
func (r *Resolver) Budget() time.Duration { return r.cfg.Budget }

// Request is one pod's lookup.
type Request struct {
	// Refs are the images as the containers name them; duplicates are
	// looked up once.
	Refs []string
	// Platform is the node's platform (DefaultPlatform when zero).
	Platform v1.Platform
	// Keychain holds the pod's pull credentials; nil is anonymous.
	Keychain authn.Keychain
	// KeychainID names those credentials (namespace and secret names, ""
	// for anonymous). Lookups share a fetch and a tag's digest only with
	// lookups holding the same credentials, so a pod without them never
	// gets a private tag resolved through another pod's.
	KeychainID string
}

// Lookup returns the facts of each distinct image in q.Refs, within the
// budget and never failing: an image whose facts could not be read has
// Err set. Facts are shared with the cache: read them, never change them.
func (r *Resolver) Lookup(ctx context.Context, q Request) mutate.ImageSet {
	start := time.Now()
	defer func() { r.metrics.observe(time.Since(start)) }()
	if q.Platform.OS == "" || q.Platform.Architecture == "" {
		q.Platform = DefaultPlatform
	}
	if q.Keychain == nil {
		q.Keychain = authn.NewMultiKeychain()
	}
	plat := q.Platform.String()
	set := mutate.ImageSet{}
	var misses []string
	n := 0
	for _, ref := range q.Refs {
		if _, dup := set[ref]; dup {
			continue
		}
		if n == r.cfg.MaxImages {
			set[ref] = r.failed(ref, "skipped", fmt.Errorf("not looked up: the pod names more than %d distinct images", r.cfg.MaxImages))
			continue
		}
		n++
		// The warm path, nearly every review: answered here, with no
		// parsing, goroutine or timer.
		if f := r.cached(ref, q.KeychainID, plat); f != nil {
			r.metrics.lookup("cached")
			set[ref] = withRef(f, ref)
			continue
		}
		set[ref] = nil
		misses = append(misses, ref)
	}
	if len(misses) == 0 {
		return set
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Budget)
	defer cancel()
	type answer struct {
		ref string
		f   *mutate.ImageFacts
	}
	answers := make(chan answer, len(misses))
	for _, ref := range misses {
		go func() { answers <- answer{ref, r.lookup(ctx, ref, plat, q)} }()
	}
	for range misses {
		a := <-answers
		set[a.ref] = a.f
	}
	return set
}

// lookup answers one image the caches did not hold, from a fetch shared
// with every lookup of the same image, platform and credentials.
func (r *Resolver) lookup(ctx context.Context, ref, plat string, q Request) *mutate.ImageFacts {
	parsed, err := r.parse(ref)
	if err != nil {
		return r.failed(ref, "invalid_reference", err)
	}
	tk := tagKey{q.KeychainID, ref}
	ch := r.flight.DoChan(q.KeychainID+"\x00"+ref+"\x00"+plat, func() (any, error) {
		return r.fetch(parsed, tk, q)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return r.failed(ref, reason(res.Err), res.Err)
		}
		r.metrics.lookup("fetched")
		return withRef(res.Val.(*mutate.ImageFacts), ref)
	case <-ctx.Done():
		return r.failed(ref, "timeout", fmt.Errorf("no answer within the %s budget (the lookup goes on in the background for the next pod)", r.cfg.Budget))
	}
}

func (r *Resolver) parse(ref string) (name.Reference, error) {
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("not an image reference: %w", err)
	}
	if r.insecure[parsed.Context().RegistryStr()] {
		return name.ParseReference(ref, name.Insecure)
	}
	return parsed, nil
}

// cached returns the facts when the caches hold them, counting hits. The
// tag cache is keyed by the reference as written, so a hit needs no
// parsing; a reference with a digest needs no tag.
func (r *Resolver) cached(ref, keychainID, plat string) *mutate.ImageFacts {
	var digest string
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		digest = ref[i+1:]
	} else {
		d, ok := r.tags.get(tagKey{keychainID, ref})
		r.metrics.cache("tag", ok)
		if !ok {
			return nil
		}
		digest = d
	}
	f, ok := r.digests.get(digestKey{digest, plat})
	r.metrics.cache("digest", ok)
	return f
}

// withRef returns the facts as the container names the image: the cached
// ones when they were fetched under that name, else a copy.
func withRef(f *mutate.ImageFacts, ref string) *mutate.ImageFacts {
	if f.Ref == ref {
		return f
	}
	c := *f
	c.Ref = ref
	return &c
}

// errBusy: too many fetches in flight.
var errBusy = errors.New("too many image lookups in flight")

// fetch reads one image's facts from its registry under its own timeout,
// detached from the review that asked: reviews wait for it only up to
// their budget, and it fills the caches for the next.
func (r *Resolver) fetch(ref name.Reference, tk tagKey, q Request) (*mutate.ImageFacts, error) {
	select {
	case r.fetches <- struct{}{}:
		defer func() { <-r.fetches }()
	default:
		return nil, fmt.Errorf("%w (%d): try again", errBusy, r.cfg.MaxFetches)
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.FetchTimeout)
	defer cancel()
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(q.Keychain),
		remote.WithTransport(r.transport),
		remote.WithPlatform(q.Platform),
		// One quick retry of a network flake: the budget is short.
		remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 2}),
		remote.WithUserAgent("pod-hardener"),
	}
	var digest string
	if d, ok := ref.(name.Digest); ok {
		digest = d.DigestStr()
	} else {
		desc, err := remote.Head(ref, opts...)
		if err != nil && !definite(err) {
			// Some registries answer HEAD badly; GET says more.
			var d *remote.Descriptor
			if d, err = remote.Get(ref, opts...); err == nil {
				desc = &d.Descriptor
			}
		}
		if err != nil {
			return nil, fmt.Errorf("resolving the tag: %w", err)
		}
		digest = desc.Digest.String()
		r.tags.put(tk, digest)
	}
	key := digestKey{digest, q.Platform.String()}
	if f, ok := r.digests.get(key); ok {
		return f, nil
	}
	desc, err := remote.Get(ref.Context().Digest(digest), opts...)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("reading the image for %s: %w", q.Platform, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading the image manifest: %w", err)
	}
	if m.Config.Size > maxManifestBytes {
		return nil, fmt.Errorf("image config is %d bytes, over the %d-byte limit: %w", m.Config.Size, maxManifestBytes, errTooLarge)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	f := factsOf(cf)
	f.Ref, f.Digest = tk.ref, digest
	if resolveUser(ctx, f, img) {
		r.metrics.failure("user")
		return f, nil // a retry may succeed: not cached
	}
	if f.UserErr != "" {
		r.metrics.failure("user")
	}
	r.digests.put(key, f)
	return f, nil
}

// definite: an answer a GET would repeat (no access, no such image, out
// of time), so HEAD's is final.
func definite(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusTooManyRequests:
			return true
		}
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// factsOf reads the config's facts; ports and volumes sorted, so equal
// images give equal facts.
func factsOf(cf *v1.ConfigFile) *mutate.ImageFacts {
	c := cf.Config
	f := &mutate.ImageFacts{User: c.User, WorkingDir: c.WorkingDir}
	for p := range c.ExposedPorts {
		num, _, _ := strings.Cut(p, "/")
		if n, err := strconv.ParseInt(num, 10, 32); err == nil && n > 0 && n <= 65535 && !slices.Contains(f.ExposedPorts, int32(n)) {
			f.ExposedPorts = append(f.ExposedPorts, int32(n))
		}
	}
	slices.Sort(f.ExposedPorts)
	for v := range c.Volumes {
		f.Volumes = append(f.Volumes, v)
	}
	slices.Sort(f.Volumes)
	for _, e := range c.Env {
		if v, ok := strings.CutPrefix(e, "HOME="); ok {
			f.Home = v // the last one wins, as the runtime sets them in order
		}
	}
	return f
}

// maxErrLen caps Err: a registry's error text goes into the warnings the
// API server shows, and a registry chooses it.
const maxErrLen = 240

func (r *Resolver) failed(ref, why string, err error) *mutate.ImageFacts {
	r.metrics.lookup("error")
	r.metrics.failure(why)
	msg := strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, err.Error())
	if len(msg) > maxErrLen {
		msg = strings.ToValidUTF8(msg[:maxErrLen], "") + "..."
	}
	return &mutate.ImageFacts{Ref: ref, Err: msg}
}

// reason classifies a fetch error into the closed set the errors metric
// is labelled with.
func reason(err error) string {
	var te *transport.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, errBusy):
		return "busy"
	case errors.Is(err, errTooLarge):
		return "too_large"
	case errors.As(err, &te):
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return "unauthorized"
		case http.StatusNotFound:
			return "not_found"
		case http.StatusTooManyRequests:
			return "rate_limited"
		}
		return "registry_error"
	case strings.Contains(err.Error(), "no child with platform"):
		return "platform"
	case isNetwork(err):
		return "unreachable"
	}
	return "malformed"
}
