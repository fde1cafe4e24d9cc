package cluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pod-hardener/pod-hardener/internal/ociimage"
)

// An image pushed to the loopback registry comes back with the config the
// kubelet acts on and the files the program needs.
func TestRegistryPushPull(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("#!static"), 0o755); err != nil {
		t.Fatal(err)
	}
	reg, err := StartRegistry("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ref, err := reg.Push(context.Background(), Image{Repo: "t/named", Spec: ociimage.Spec{
		Binary: bin, User: "node", Ports: []string{"3000/tcp"}, Volumes: []string{"/data"},
		WorkingDir: "/home/node", Env: []string{"A=1"}, Dirs: []string{"/home/node", "/tmp"},
		DirOwner: map[string]int{"/home/node": 1000}, Passwd: "node:x:1000:1000::/home/node:/sbin/nologin\n",
	}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "node" || c.WorkingDir != "/home/node" || len(c.Env) != 1 || c.Env[0] != "A=1" ||
		len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/app" || cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("config: %+v (os %q arch %q)", c, cf.OS, cf.Architecture)
	}
	if _, ok := c.ExposedPorts["3000/tcp"]; !ok {
		t.Errorf("ExposedPorts %v", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("Volumes %v", c.Volumes)
	}
	files, err := ociimage.Files(img)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ociimage.File{
		"app":        {Mode: 0o755, UID: 0, Body: "#!static"},
		"etc/passwd": {Mode: 0o644, UID: 0, Body: "node:x:1000:1000::/home/node:/sbin/nologin\n"},
		"home/node":  {Mode: 0o755, UID: 1000, Body: ""},
		"home":       {Mode: 0o755, UID: 0, Body: ""},
		"tmp":        {Mode: 0o1777, UID: 0, Body: ""},
	}
	for p, w := range want {
		if got, ok := files[p]; !ok || got != w {
			t.Errorf("%s: got %+v (present %v), want %+v", p, got, ok, w)
		}
	}
}

// A Base layer lies below the binary's: the flattened image shows the
// upper layer's /etc/passwd, and the lower one is still in the image, as
// after a base image's user is renumbered by a later layer.
func TestImageBaseLayer(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(bin, []byte("#!static"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.Build(ociimage.Spec{Binary: bin, User: "app",
		Base:   map[string]string{"/etc/passwd": "app:x:1000:1000::/:/sbin/nologin\n", "etc/motd": "base\n"},
		Passwd: "app:x:1001:1001::/:/sbin/nologin\n"})
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers: %d, %v; want the base's and the binary's", len(layers), err)
	}
	files, err := ociimage.Files(img)
	if err != nil {
		t.Fatal(err)
	}
	if got := files["etc/passwd"].Body; got != "app:x:1001:1001::/:/sbin/nologin\n" {
		t.Errorf("flattened /etc/passwd %q, want the upper layer's", got)
	}
	if got := files["etc/motd"].Body; got != "base\n" {
		t.Errorf("flattened /etc/motd %q, want the base layer's", got)
	}
}
