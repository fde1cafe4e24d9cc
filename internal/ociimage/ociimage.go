// Package ociimage builds container images without Docker: one static
// binary on an empty base, with the image config a runtime and the kubelet
// act on (User, ExposedPorts, Volumes, WorkingDir, Env) and /etc/passwd
// where a named user needs one. `make image` builds pod-hardener's image
// with it; the e2e suite builds its node's images with it.
package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Spec describes an image built from one static binary on an empty base.
type Spec struct {
	Binary string // static binary on this machine
	Path   string // where it goes in the image; default /app
	// Entrypoint defaults to the binary; Cmd are its default arguments.
	Entrypoint, Cmd []string
	User            string
	Ports           []string // "80/tcp"
	Volumes         []string
	WorkingDir      string
	Env             []string
	// Dirs are created in the image (mode 0755, or 01777 for /tmp), owned
	// by root unless DirOwner names their uid.
	Dirs     []string
	DirOwner map[string]int
	// Passwd and Group, when set, become /etc/passwd and /etc/group.
	Passwd, Group string
	// Base, when set, are the files of a layer below the binary's (path
	// without leading slash to body): what a base image gives, which the
	// upper layer's files of the same path hide, as a later RUN useradd
	// or usermod rewrites the base image's /etc/passwd.
	Base map[string]string
	// OCI gives the manifest, config and layer OCI media types instead of
	// Docker's.
	OCI bool
}

// PodHardener is pod-hardener's own image (what `make image` pushes and
// the e2e suite installs on its node): what the Dockerfile's distroless
// static nonroot stage gives, without its files. binary is a static build.
func PodHardener(binary string) Spec {
	return Spec{
		Binary: binary, Path: "/pod-hardener", User: "65532:65532",
		Ports: []string{"8443/tcp", "9090/tcp"}, OCI: true,
		Passwd: "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
		Group:  "root:x:0:\nnonroot:x:65532:\n",
	}
}

// Build makes the image: one layer on an empty base (two with Base), the
// config set.
func Build(im Spec) (v1.Image, error) {
	bin, err := os.ReadFile(im.Binary)
	if err != nil {
		return nil, err
	}
	at := strings.TrimPrefix(im.Path, "/")
	if at == "" {
		at = "app"
	}
	files := map[string][]byte{at: bin}
	if im.Passwd != "" {
		files["etc/passwd"] = []byte(im.Passwd)
	}
	if im.Group != "" {
		files["etc/group"] = []byte(im.Group)
	}
	layerTar, err := tarOf(files, at, im.Dirs, im.DirOwner)
	if err != nil {
		return nil, err
	}
	mt := types.DockerLayer
	if im.OCI {
		mt = types.OCILayer
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(mt))
	if err != nil {
		return nil, err
	}
	layers := []v1.Layer{layer}
	if len(im.Base) > 0 {
		base := map[string][]byte{}
		for p, body := range im.Base {
			base[strings.TrimPrefix(p, "/")] = []byte(body)
		}
		baseTar, err := tarOf(base, "", nil, nil)
		if err != nil {
			return nil, err
		}
		bl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(baseTar)), nil
		}, tarball.WithMediaType(mt))
		if err != nil {
			return nil, err
		}
		layers = []v1.Layer{bl, layer}
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
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
		ep = []string{"/" + at}
	}
	cf.Config = v1.Config{Entrypoint: ep, Cmd: im.Cmd, User: im.User, WorkingDir: im.WorkingDir, Env: im.Env}
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
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	if im.OCI {
		img = mutate.MediaType(mutate.ConfigMediaType(img, types.OCIConfigJSON), types.OCIManifestSchema1)
	}
	return img, nil
}

// tarOf writes a layer: the directories (with their parents), then the
// files, the binary executable and the rest readable.
func tarOf(files map[string][]byte, binary string, dirs []string, owner map[string]int) ([]byte, error) {
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
		if f == binary {
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

// WriteOCITarball writes img as an OCI image layout in a tar file, named
// ref (org.opencontainers.image.ref.name), as `skopeo copy oci-archive:`,
// `podman load` and `ctr images import` read it.
func WriteOCITarball(img v1.Image, ref, out string) error {
	dir, err := os.MkdirTemp("", "ociimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	werr := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name, h.ModTime = filepath.ToSlash(rel), time.Unix(0, 0)
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err := tw.Close(); werr == nil {
		werr = err
	}
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		return fmt.Errorf("writing %s: %w", out, werr)
	}
	return nil
}

// File is one entry of an image's flattened filesystem.
type File struct {
	Mode int64
	UID  int
	Body string
}

// Files lists an image's flattened filesystem by path (no leading slash),
// bodies of regular files up to 64 KiB: what a container would see, to
// check an image holds what it should and nothing else (no shell).
func Files(img v1.Image) (map[string]File, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]File{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the image's files: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(tr, 64<<10))
		if err != nil {
			return nil, err
		}
		out[h.Name] = File{Mode: h.Mode, UID: h.Uid, Body: string(b)}
	}
}
