package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pod-hardener/pod-hardener/internal/imagefacts/registrytest"
)

func TestServeRejectsBadImageLookupSettings(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ server, want string }{
		{"imageLookup: true\n  imageLookupBudget: soon", `server.imageLookupBudget: "soon", want a positive duration`},
		{"imageLookup: true\n  imageLookupBudget: 45s", "not inside the API server's 30s webhook limit"},
		{"imageLookup: true\n  imageLookupTagTtl: -1s", `server.imageLookupTagTtl: "-1s"`},
		{"imageLookup: true\n  imageLookupCacheSize: 0", "server.imageLookupCacheSize"},
		{"imageLookup: true\n  imageLookupMaxImages: many", "server.imageLookupMaxImages"},
		{"imageLookup: true\n  imageLookupPlatform: amd64", `platform "amd64": want os/arch`},
		{"imageLookupBudgt: 1s", "server.imageLookupBudgt: unknown key"},
	} {
		cfg := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(cfg, []byte("server:\n  "+c.server+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errs, code := runCLI(t, "", "serve", "--config", cfg)
		if code != ExitInvalid || !strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d, want %d and %q: %s", c.server, code, ExitInvalid, c.want, errs)
		}
	}
	_, errs, code := runCLI(t, "", "serve", "--image-lookup", "--image-lookup-budget", "0s")
	if code != ExitInvalid || !strings.Contains(errs, "server.imageLookupBudget") {
		t.Errorf("--image-lookup-budget 0s: exit %d: %s", code, errs)
	}
}

// harden and check with --image-lookup read the images from their
// registry, and only then.
func TestHardenImageLookupFlag(t *testing.T) {
	reg := registrytest.New(t)
	reg.Push(t, "app:1", registrytest.Image(t, v1.Config{User: "1000"}))
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no local credentials: anonymous
	pod := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n    - name: app\n      image: " + reg.Host + "/app:1\n"
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"harden", "-f", "-"}, 0},
		{[]string{"harden", "-f", "-", "--image-lookup"}, 1},
		{[]string{"check", "-f", "-", "--image-lookup"}, 1},
	} {
		before := reg.Requests("HEAD /v2/app/manifests/1")
		out, errs, code := runCLI(t, pod, c.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s%s", c.args, code, out, errs)
		}
		if n := reg.Requests("HEAD /v2/app/manifests/1") - before; n != c.want {
			t.Errorf("%v: %d tag lookups, want %d", c.args, n, c.want)
		}
	}
}
