package cluster

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pod-hardener/pod-hardener/internal/ociimage"
)

// Registry is an OCI registry served from this process, in memory: the
// node's only image source, since nothing may be pulled from outside the
// machine.
type Registry struct {
	// Addr is host:port, the name images are pushed and pulled by.
	Addr string
	srv  *http.Server
}

// StartRegistry serves a registry on addr (host:port; port 0 picks one).
func StartRegistry(addr string) (*Registry, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("registry: listening on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	return &Registry{Addr: l.Addr().String(), srv: srv}, nil
}

// Close stops serving.
func (r *Registry) Close() {
	if r != nil {
		_ = r.srv.Close()
	}
}

// Image is an image to push under Repo:Tag (default tag "e2e").
type Image struct {
	Repo, Tag string
	ociimage.Spec
}

// Push builds the image and pushes it, returning its reference.
func (r *Registry) Push(ctx context.Context, im Image) (string, error) {
	img, err := ociimage.Build(im.Spec)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", im.Repo, err)
	}
	tag := im.Tag
	if tag == "" {
		tag = "e2e"
	}
	refStr := r.Addr + "/" + im.Repo + ":" + tag
	ref, err := name.ParseReference(refStr, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing %s: %w", refStr, err)
	}
	return refStr, nil
}

// BuildStatic builds a Go package of the repository at root as a static
// binary (no cgo), which runs on an empty image base.
func BuildStatic(root, pkg, out string) error {
	return goBuild(root, pkg, out, []string{"CGO_ENABLED=0"})
}
