package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
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

// Image describes an image built from one static binary on an empty base,
// with the config fields the kubelet and the runtime act on.
type Image struct {
	Repo       string // e.g. "archetype/web-root"
	Tag        string // default "e2e"
	Binary     string // static binary on this machine, installed as /app
	Entrypoint []string
	User       string
	Ports      []string // "80/tcp"
	Volumes    []string
	WorkingDir string
	Env        []string
	// Dirs are created in the image (mode 0755, or 01777 for /tmp), owned
	// by root unless DirOwner names their uid.
	Dirs     []string
	DirOwner map[string]int
	// Passwd and Group, when set, become /etc/passwd and /etc/group.
	Passwd, Group string
}

// Push builds the image and pushes it, returning its reference.
func (r *Registry) Push(ctx context.Context, im Image) (string, error) {
	img, err := im.build()
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

func (im Image) build() (v1.Image, error) {
	bin, err := os.ReadFile(im.Binary)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"app": bin}
	if im.Passwd != "" {
		files["etc/passwd"] = []byte(im.Passwd)
	}
	if im.Group != "" {
		files["etc/group"] = []byte(im.Group)
	}
	layerTar, err := tarOf(files, im.Dirs, im.DirOwner)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	ep := im.Entrypoint
	if ep == nil {
		ep = []string{"/app"}
	}
	cf.Config = v1.Config{Entrypoint: ep, User: im.User, WorkingDir: im.WorkingDir, Env: im.Env}
	if len(im.Ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range im.Ports {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	if len(im.Volumes) > 0 {
		cf.Config.Volumes = map[string]struct{}{}
		for _, v := range im.Volumes {
			cf.Config.Volumes[v] = struct{}{}
		}
	}
	return mutate.ConfigFile(img, cf)
}

// tarOf writes a layer: the directories (with their parents), then the
// files, /app executable and the rest readable.
func tarOf(files map[string][]byte, dirs []string, owner map[string]int) ([]byte, error) {
	all := map[string]bool{}
	addParents := func(p string) {
		for d := path.Dir(p); d != "." && d != "/" && d != ""; d = path.Dir(d) {
			all[d] = true
		}
	}
	for _, d := range dirs {
		d = strings.Trim(d, "/")
		all[d] = true
		addParents(d)
	}
	for f := range files {
		addParents(f)
	}
	names := make([]string, 0, len(all))
	for d := range all {
		names = append(names, d)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, d := range names {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		uid := owner["/"+d]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	fnames := make([]string, 0, len(files))
	for f := range files {
		fnames = append(fnames, f)
	}
	sort.Strings(fnames)
	for _, f := range fnames {
		mode := int64(0o644)
		if f == "app" {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f, Mode: mode, Size: int64(len(files[f])), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[f]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// BuildStatic builds a Go package of the repository at root as a static
// binary (no cgo), which runs on an empty image base.
func BuildStatic(root, pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", pkg, err, b)
	}
	return nil
}
