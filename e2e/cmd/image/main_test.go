package main

import (
	"archive/tar"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pod-hardener/pod-hardener/internal/ociimage"
)

// The tarball is an OCI layout holding a non-root image with the binary
// and no shell; the pushed image is the same image.
func TestImageTarballAndPush(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "pod-hardener")
	if err := os.WriteFile(bin, []byte("static binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	push := strings.TrimPrefix(srv.URL, "http://") + "/pod-hardener:test"
	out := filepath.Join(dir, "image.tar")
	if err := run(bin, out, "example/pod-hardener:test", push, true); err != nil {
		t.Fatal(err)
	}

	// Unpack the tarball and read it as an OCI layout.
	layoutDir := filepath.Join(dir, "layout")
	untar(t, out, layoutDir)
	p, err := layout.FromPath(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index: %v %+v", err, im)
	}
	desc := im.Manifests[0]
	if desc.Annotations["org.opencontainers.image.ref.name"] != "example/pod-hardener:test" || desc.MediaType != types.OCIManifestSchema1 {
		t.Errorf("descriptor %+v", desc)
	}
	img, err := p.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/pod-hardener" {
		t.Errorf("config %+v", cf.Config)
	}
	files, err := ociimage.Files(img)
	if err != nil {
		t.Fatal(err)
	}
	_, sh := files["bin/sh"]
	_, binDir := files["bin"]
	if files["pod-hardener"].Mode != 0o755 || files["etc/passwd"].Body == "" || sh || binDir {
		t.Errorf("files %v: want the binary and /etc/passwd, no shell", files)
	}

	// The pushed image has the tarball's digest.
	ref, err := name.ParseReference(push, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != desc.Digest {
		t.Errorf("pushed %s, tarball holds %s", got.Digest, desc.Digest)
	}
	var m struct{ MediaType string }
	if err := json.Unmarshal(got.Manifest, &m); err != nil || m.MediaType != string(types.OCIManifestSchema1) {
		t.Errorf("pushed manifest media type %q (%v)", m.MediaType, err)
	}
}

func untar(t *testing.T, file, dir string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
