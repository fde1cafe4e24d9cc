package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/pod-hardener/pod-hardener/internal/imagefacts"
	"github.com/pod-hardener/pod-hardener/internal/imagefacts/registrytest"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// newImageEnv is a handler with image lookup on, its metrics on the
// handler's registry.
func newImageEnv(t *testing.T, cfg *profiles.Config, ic imagefacts.Config, client kubernetes.Interface) *testEnv {
	t.Helper()
	e := newEnv(t, cfg)
	res, err := imagefacts.New(ic, e.reg)
	if err != nil {
		t.Fatal(err)
	}
	e.decider.SetImageLookup(&ImageLookup{Resolver: res, Client: client, Platform: imagefacts.DefaultPlatform})
	return e
}

// lookups reads pod_hardener_image_lookups_total{result}.
func (e *testEnv) lookups(t *testing.T, result string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "pod_hardener_image_lookups_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func imagePodJSON(images ...string) string {
	var cs []string
	for i, img := range images {
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q}`, i, img))
	}
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"apps"},"spec":{"containers":[` + strings.Join(cs, ",") + `]}}`
}

// A pod through the handler has its images looked up before it is
// hardened: once from the registry, then from the cache.
func TestHandlerLooksUpImages(t *testing.T) {
	reg := registrytest.New(t)
	reg.Push(t, "app:1", registrytest.Image(t, v1.Config{User: "app"}, map[string][]byte{"etc/passwd": []byte("app:x:1000:1000::/:/bin/sh\n")}))
	reg.Push(t, "side:1", registrytest.Image(t, v1.Config{User: "5"}))
	e := newImageEnv(t, nil, imagefacts.Config{}, nil)
	pod := imagePodJSON(reg.Host+"/app:1", reg.Host+"/side:1", reg.Host+"/app:1")
	_, resp := e.send(t, review{obj: pod}.JSON())
	if resp == nil || !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("not hardened: %+v", resp)
	}
	if n := e.lookups(t, "fetched"); n != 2 {
		t.Fatalf("lookups fetched = %v, want 2 (two distinct images)", n)
	}
	before := reg.Requests("")
	_, resp = e.send(t, review{obj: pod}.JSON())
	if !resp.Allowed || reg.Requests("") != before {
		t.Fatalf("second review: allowed %v, %d registry requests", resp.Allowed, reg.Requests("")-before)
	}
	if n := e.lookups(t, "cached"); n != 2 {
		t.Fatalf("lookups cached = %v, want 2", n)
	}
	// The slow path (a review read with its object raw, as for ephemeral
	// containers) finds the images too.
	old := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"apps"},"spec":{"containers":[{"name":"c","image":"` + reg.Host + `/app:1"}]}}`
	upd := strings.Replace(old, `]}}`, `],"ephemeralContainers":[{"name":"dbg","image":"`+reg.Host+`/side:1"}]}}`, 1)
	fetched := e.lookups(t, "cached")
	_, resp = e.send(t, review{op: "UPDATE", subresource: "ephemeralcontainers", obj: upd, old: old}.JSON())
	if !resp.Allowed || e.lookups(t, "cached") != fetched+1 {
		t.Fatalf("ephemeral container: allowed %v, cached lookups %v -> %v, want only the new container's image", resp.Allowed, fetched, e.lookups(t, "cached"))
	}
}

// An exempt pod (authorized) is not looked up; an unauthorized exemption
// is hardened, so it is.
func TestHandlerNoLookupForExemptPods(t *testing.T) {
	reg := registrytest.New(t)
	reg.Push(t, "app:1", registrytest.Image(t, v1.Config{User: "5"}))
	cfg := profiles.Default()
	cfg.Exemptions.Subjects.Users = []string{"admin"}
	e := newImageEnv(t, cfg, imagefacts.Config{}, nil)
	pod := strings.Replace(imagePodJSON(reg.Host+"/app:1"), `"namespace":"apps"`, `"namespace":"apps","annotations":{"pod-hardener.io/exempt":"true"}`, 1)
	before := reg.Requests("")
	e.send(t, review{obj: pod, user: "admin"}.JSON())
	if n := reg.Requests("") - before; n != 0 {
		t.Fatalf("an exempt pod was looked up: %d registry requests", n)
	}
	e.send(t, review{obj: pod, user: "mallory"}.JSON())
	if e.lookups(t, "fetched") != 1 {
		t.Fatal("a pod whose exemption is refused was not looked up")
	}
}

// A registry slower than the budget does not hold admission: the pod is
// answered, hardened, and the failure counted.
func TestHandlerSlowRegistryDoesNotBlock(t *testing.T) {
	reg := registrytest.New(t)
	reg.Push(t, "app:1", registrytest.Image(t, v1.Config{User: "5"}))
	release := make(chan struct{})
	defer close(release)
	reg.SetWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		<-release
		next.ServeHTTP(w, r)
	})
	e := newImageEnv(t, nil, imagefacts.Config{Budget: 50 * time.Millisecond}, nil)
	start := time.Now()
	_, resp := e.send(t, review{obj: imagePodJSON(reg.Host + "/app:1")}.JSON())
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("review took %v with a 50ms budget", took)
	}
	if resp == nil || !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("not answered hardened: %+v", resp)
	}
	if e.lookups(t, "error") != 1 {
		t.Fatal("the timed-out lookup was not counted")
	}
}

// A pod with thousands of containers of distinct images costs at most
// MaxImages lookups.
func TestHandlerHostilePodImagesCapped(t *testing.T) {
	reg := registrytest.New(t)
	e := newImageEnv(t, nil, imagefacts.Config{MaxImages: 4}, nil)
	var imgs []string
	for i := range 2000 {
		imgs = append(imgs, fmt.Sprintf("%s/img%d:1", reg.Host, i))
	}
	before := reg.Requests("/manifests/")
	_, resp := e.send(t, review{obj: imagePodJSON(imgs...)}.JSON())
	if resp == nil || !resp.Allowed {
		t.Fatalf("not answered: %+v", resp)
	}
	if n := reg.Requests("/manifests/") - before; n > 4 || n == 0 {
		t.Fatalf("%d manifest requests for a pod of 2,000 images, cap 4", n)
	}
}

// Pull credentials come from the service account's imagePullSecrets,
// read through the API server; without them the registry refuses.
func TestHandlerPullSecretsFromServiceAccount(t *testing.T) {
	reg := registrytest.New(t)
	reg.Push(t, "private:1", registrytest.Image(t, v1.Config{User: "5"}))
	reg.RequireBasicAuth("puller", "s3cret")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: "apps"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"` + reg.Host + `":{"username":"puller","password":"s3cret"}}}`)}}
	for _, c := range []struct {
		name    string
		objects []any
		pod     string
		result  string
	}{
		{"no secret", nil, imagePodJSON(reg.Host + "/private:1"), "error"},
		{"service account's secret", []any{secret, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "apps"},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}}}, imagePodJSON(reg.Host + "/private:1"), "fetched"},
		{"pod's secret", []any{secret}, strings.Replace(imagePodJSON(reg.Host+"/private:1"), `"spec":{`, `"spec":{"imagePullSecrets":[{"name":"missing"},{"name":"regcred"}],`, 1), "fetched"},
	} {
		t.Run(c.name, func(t *testing.T) {
			client := fake.NewClientset()
			for _, o := range c.objects {
				var err error
				switch o := o.(type) {
				case *corev1.Secret:
					_, err = client.CoreV1().Secrets("apps").Create(t.Context(), o, metav1.CreateOptions{})
				case *corev1.ServiceAccount:
					_, err = client.CoreV1().ServiceAccounts("apps").Create(t.Context(), o, metav1.CreateOptions{})
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			e := newImageEnv(t, nil, imagefacts.Config{}, client)
			_, resp := e.send(t, review{obj: c.pod}.JSON())
			if resp == nil || !resp.Allowed {
				t.Fatalf("not answered: %+v", resp)
			}
			if e.lookups(t, c.result) != 1 {
				t.Fatalf("lookups{result=%s} != 1", c.result)
			}
			if c.result != "fetched" {
				return
			}
			// Warm, the lookup asks the API server nothing.
			calls := len(client.Actions())
			e.send(t, review{obj: c.pod}.JSON())
			if e.lookups(t, "cached") != 1 || len(client.Actions()) != calls {
				t.Fatalf("warm lookup: cached %v, API calls %d -> %d", e.lookups(t, "cached"), calls, len(client.Actions()))
			}
		})
	}
}

// serve with image lookup on: the review's images are looked up and the
// lookup's metrics are on /metrics.
func TestServeWithImageLookup(t *testing.T) {
	reg := registrytest.New(t)
	reg.Push(t, "app:1", registrytest.Image(t, v1.Config{User: "5"}))
	r := startServer(t, "defaultProfile: restricted\n", nil, func(o *Options) {
		o.ImageLookup, o.ImagePlatform = &imagefacts.Config{}, imagefacts.DefaultPlatform
	})
	resp, _, err := r.review(t, r.client(), review{obj: imagePodJSON(reg.Host + "/app:1")}.JSON())
	if err != nil || !resp.Allowed {
		t.Fatalf("review: %v %+v", err, resp)
	}
	m, err := http.Get("http://" + r.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Body.Close()
	b, _ := io.ReadAll(m.Body)
	if !strings.Contains(string(b), `pod_hardener_image_lookups_total{result="fetched"} 1`) {
		t.Fatalf("/metrics lacks the lookup:\n%s", b)
	}
}
