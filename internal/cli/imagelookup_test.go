package cli

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pod-hardener/pod-hardener/internal/imagefacts/registrytest"
)

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
