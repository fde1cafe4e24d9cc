package imagefacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// maxManifestBytes caps a manifest or index response. go-containerregistry
// accepts up to 100 MiB; real manifests are a few KiB, and a registry that
// sends more is treated as broken rather than buffered.
const maxManifestBytes = 4 << 20

// errTooLarge marks a response or file over its cap.
var errTooLarge = errors.New("too large")

// limitedTransport gives each registry host at most n requests at a time
// (a response body counts until it is closed) and caps manifest bodies.
// Hosts come from pod specs, so the per-host state is dropped as soon as
// no request holds it: a pod naming thousands of registries leaves nothing
// behind.
type limitedTransport struct {
	next http.RoundTripper
	n    int

	mu    sync.Mutex
	hosts map[string]*hostSlots
}

type hostSlots struct {
	slots chan struct{}
	refs  int
}

func newLimitedTransport(next http.RoundTripper, perHost int) *limitedTransport {
	if perHost < 1 {
		perHost = 1
	}
	return &limitedTransport{next: next, n: perHost, hosts: map[string]*hostSlots{}}
}

func (t *limitedTransport) acquire(ctx context.Context, host string) (func(), error) {
	t.mu.Lock()
	h := t.hosts[host]
	if h == nil {
		h = &hostSlots{slots: make(chan struct{}, t.n)}
		t.hosts[host] = h
	}
	h.refs++
	t.mu.Unlock()
	unref := func() {
		t.mu.Lock()
		h.refs--
		if h.refs == 0 {
			delete(t.hosts, host)
		}
		t.mu.Unlock()
	}
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		unref()
		return nil, fmt.Errorf("waiting for a free connection to %s: %w", host, ctx.Err())
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-h.slots
			unref()
		})
	}, nil
}

func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	release, err := t.acquire(req.Context(), req.URL.Host)
	if err != nil {
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		release()
		return nil, err
	}
	body := &releasingBody{ReadCloser: resp.Body, release: release, left: -1}
	if strings.Contains(req.URL.Path, "/manifests/") {
		body.left = maxManifestBytes
	}
	resp.Body = body
	return resp, nil
}

// releasingBody frees the host slot when the body is closed, and fails a
// read past its cap (left < 0: no cap).
type releasingBody struct {
	io.ReadCloser
	release func()
	left    int64
}

func (b *releasingBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, fmt.Errorf("manifest larger than %d bytes: %w", maxManifestBytes, errTooLarge)
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
		if b.left == 0 && err == nil {
			// One byte more tells a body of exactly the cap from a longer one.
			var one [1]byte
			if m, _ := b.ReadCloser.Read(one[:]); m == 0 {
				b.left = -1
			}
		}
	}
	return n, err
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
