package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	psaapi "k8s.io/pod-security-admission/api"

	"github.com/pod-hardener/pod-hardener/e2e/cluster"
	"github.com/pod-hardener/pod-hardener/internal/pss"
	"github.com/pod-hardener/pod-hardener/internal/server"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// quietClient is an admin client that drops admission warnings, for tests
// that create many pods (the default handler logs every warning).
func quietClient(t *testing.T) *kubernetes.Clientset {
	t.Helper()
	cfg := rest.CopyConfig(adminCfg)
	cfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// restoreSuiteWebhook is the Cleanup of every test that touches the shared
// webhook: process running, registration as TestMain made it, in effect.
func restoreSuiteWebhook(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if hook.Proc == nil || hook.Proc.Exited() {
		if err := hook.Start(ctx); err != nil {
			t.Errorf("restore: restarting the webhook: %v", err)
			return
		}
	}
	if err := registerSuiteWebhook(ctx, ""); err != nil {
		t.Errorf("restore: registering the webhook: %v", err)
		return
	}
	if err := waitHardening(ctx); err != nil {
		t.Errorf("restore: %v", err)
	}
}

// containerByName returns the named container of a pod, or nil.
func containerByName(p *corev1.Pod, name string) *corev1.Container {
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			return &p.Spec.Containers[i]
		}
	}
	return nil
}

// metricSum scrapes the webhook's /metrics and sums the samples of a
// metric whose labels contain every given `key="value"`.
func metricSum(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return metricSumAt(t, hook.MetricsURL, name, labels...)
}

// metricSumAt is metricSum for the webhook serving metrics at url.
func metricSumAt(t *testing.T, url, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
lines:
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// sidecarInjector is a second mutating webhook, served from the test
// process, that appends a sidecar container to pods created in one
// namespace, as Istio or Linkerd injectors do.
type sidecarInjector struct {
	namespace string
	calls     atomic.Int64
	injected  atomic.Int64
}

const sidecarName = "injected-sidecar"

func (s *sidecarInjector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(io.LimitReader(r.Body, 6<<20)).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("bad AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	req := review.Request
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Operation == admissionv1.Create && req.Resource.Resource == "pods" && req.SubResource == "" && req.Namespace == s.namespace {
		var pod corev1.Pod
		if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if containerByName(&pod, sidecarName) == nil {
			patch, _ := json.Marshal([]map[string]any{{
				"op": "add", "path": "/spec/containers/-",
				"value": map[string]any{"name": sidecarName, "image": "envoy"},
			}})
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType = patch, &pt
			s.injected.Add(1)
		}
	}
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// Scenario 7: a sidecar injector that runs after pod-hardener (webhooks run
// in name order) adds a container; reinvocationPolicy IfNeeded makes the API
// server call pod-hardener again, which hardens the injected container, and
// PodSecurity restricted admits the result.
func TestReinvocationSidecarHardened(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	const ns = "s7-reinvocation"
	restrictedNamespace(t, ns, nil)

	caPEM, certPEM, keyPEM, err := server.NewCertificates([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	inj := &sidecarInjector{namespace: ns}
	srv := httptest.NewUnstartedServer(inj)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close) // runs after the Unregister below (Cleanup is LIFO)

	if err := cluster.Register(ctx, admin, cluster.Registration{Name: "sidecar-injector", URL: srv.URL + "/inject",
		CABundle: caPEM, ExcludeNamespaces: []string{"no-webhook"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cluster.Unregister(context.Background(), admin, "sidecar-injector"); err != nil {
			t.Errorf("unregistering the injector: %v", err)
		}
	})

	// The registration takes effect a moment later: dry-run until the
	// sidecar shows up.
	cs := quietClient(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := cs.CoreV1().Pods(ns).Create(ctx, plainPod("probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && containerByName(p, sidecarName) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the injector registration never took effect (last error %v, calls %d)", err, inj.calls.Load())
		}
		time.Sleep(200 * time.Millisecond)
	}

	reviewsBefore := metricSum(t, "pod_hardener_reviews_total", `operation="CREATE"`)
	cs, w := clientWithWarnings(t)
	web := uniqueName("web")
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, plainPod(web), metav1.CreateOptions{}); err != nil {
		t.Fatalf("pod with an injected sidecar must be admitted in a restricted namespace: %v", err)
	}
	stored, err := admin.CoreV1().Pods(ns).Get(ctx, web, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, c := range stored.Spec.Containers {
		names = append(names, c.Name)
	}
	t.Logf("stored containers %v; injector called %d times, injected %d", names, inj.calls.Load(), inj.injected.Load())
	if len(stored.Spec.Containers) != 2 || containerByName(stored, "nginx") == nil || containerByName(stored, sidecarName) == nil {
		t.Fatalf("stored pod should have nginx and %s exactly once each, has %v", sidecarName, names)
	}
	if m := hardenedFields(stored); len(m) > 0 {
		t.Errorf("stored pod lacks %v (the injected container was not hardened: no reinvocation?)", m)
	}
	side := containerByName(stored, sidecarName)
	t.Logf("sidecar securityContext %+v, mounts %+v", side.SecurityContext, side.VolumeMounts)
	if f := pss.Evaluate(stored, psaapi.LevelRestricted); len(f) > 0 {
		t.Errorf("stored pod fails PSS restricted: %v", f)
	}
	if stored.Annotations["pod-hardener.io/hardened"] != "restricted" {
		t.Errorf("annotations %v", stored.Annotations)
	}
	if !strings.Contains(w.joined(), "containers["+sidecarName+"]") {
		t.Errorf("no warning names the injected container: %q", w.joined())
	}
	// pod-hardener saw the pod twice: first pass, then the reinvocation
	// after the injector changed it.
	if n := metricSum(t, "pod_hardener_reviews_total", `operation="CREATE"`) - reviewsBefore; n < 2 {
		t.Errorf("pod-hardener reviewed %v pod creates for one pod, want 2 (first pass and reinvocation)", n)
	} else {
		t.Logf("pod-hardener reviews for one create: %v (first pass and reinvocation)", n)
	}
}

// Scenario 8: failurePolicy decides what a webhook outage means. With Fail
// (deploy/'s default) no pod is admitted while the webhook is down; with
// Ignore pods are admitted unhardened; back up, pods are hardened again.
func TestAvailabilityFailurePolicy(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	const ns = "s8-plain"
	if err := ensureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restoreSuiteWebhook(t) })
	cs := quietClient(t)

	hook.Stop()
	if !hook.Proc.Exited() {
		t.Fatal("the webhook process did not stop")
	}
	whileDown := uniqueName("while-down")
	_, err := cs.CoreV1().Pods(ns).Create(ctx, plainPod(whileDown), metav1.CreateOptions{})
	if err == nil {
		t.Fatal("with failurePolicy Fail and the webhook down, a pod was admitted")
	}
	t.Logf("API server, webhook down, failurePolicy Fail: %v", err)
	want := `failed calling webhook "pod-hardener.pod-hardener.io"`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error should contain %q: %v", want, err)
	}
	if !apierrors.IsInternalError(err) {
		t.Errorf("expected an InternalError (500), got reason %q", apierrors.ReasonForError(err))
	}
	if _, err := admin.CoreV1().Pods(ns).Get(ctx, whileDown, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the rejected pod exists: %v", err)
	}

	if err := registerSuiteWebhook(ctx, "Ignore"); err != nil {
		t.Fatal(err)
	}
	wcs, w := clientWithWarnings(t)
	var p *corev1.Pod
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err = wcs.CoreV1().Pods(ns).Create(ctx, plainPod(uniqueName("ignored")), metav1.CreateOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with failurePolicy Ignore the pod was never admitted: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if v, ok := p.Annotations["pod-hardener.io/hardened"]; ok {
		t.Errorf("the webhook is down, yet the pod is annotated hardened=%q", v)
	}
	if m := hardenedFields(p); len(m) == 0 {
		t.Error("the webhook is down, yet the admitted pod looks hardened")
	}
	// docs/security.md: unhardened and without any warning. Nothing tells
	// the user; that is why PodSecurity must be the backstop.
	if ws := w.joined(); ws != "" {
		t.Errorf("failurePolicy Ignore, webhook down: the client saw warnings %q", ws)
	}

	if err := hook.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := registerSuiteWebhook(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := waitHardening(ctx); err != nil {
		t.Fatal(err)
	}
	p, err = cs.CoreV1().Pods(ns).Create(ctx, plainPod(uniqueName("back-up")), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("webhook back up: %v", err)
	}
	if m := hardenedFields(p); len(m) > 0 {
		t.Errorf("webhook back up, yet the pod lacks %v", m)
	}
}

// writeFileAtomic writes a file the way a careful writer (or the kubelet's
// ..data symlink swap) does: a temp file in the same directory, renamed.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// created is one pod create of the load in scenario 9.
type created struct {
	name    string
	start   time.Time
	end     time.Time
	profile string
	missing []string
	err     error
}

// podLoad creates pods from several workers until stopped.
type podLoad struct {
	mu      sync.Mutex
	results []created
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startPodLoad(cs kubernetes.Interface, ns string, workers int, pause time.Duration) *podLoad {
	l := &podLoad{stop: make(chan struct{})}
	run := uniqueName("live")
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func(w int) {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				name := fmt.Sprintf("%s-%d-%d", run, w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				r := created{name: name, start: time.Now()}
				pod := plainPod(name)
				// Never scheduled: with controllers and a kwok node these
				// hundreds of pods would fill the node for later tests.
				pod.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "e2e.pod-hardener.io/never"}}
				p, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
				cancel()
				r.end = time.Now()
				if err != nil {
					r.err = err
				} else {
					r.profile = p.Annotations["pod-hardener.io/hardened"]
					r.missing = hardenedFields(p)
				}
				l.mu.Lock()
				l.results = append(l.results, r)
				l.mu.Unlock()
				time.Sleep(pause)
			}
		}(w)
	}
	return l
}

func (l *podLoad) snapshot() []created {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.results)
}

// waitProfile waits until a pod whose create started after since comes
// back with the profile; it returns when that pod came back.
func (l *podLoad) waitProfile(profile string, since time.Time, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, r := range l.snapshot() {
			if r.err == nil && r.profile == profile && r.start.After(since) {
				return time.Now(), nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("no pod hardened with profile %q within %s", profile, timeout)
}

// reloadedConfig is suiteConfig with one more profile, the new default.
var reloadedConfig = strings.Replace(strings.Replace(suiteConfig,
	"defaultProfile: restricted", "defaultProfile: reloaded", 1),
	"profiles:\n", "profiles:\n  - name: reloaded\n    extends: restricted\n", 1)

// servedCertificate dials the webhook port trusting only pool and returns
// the leaf it serves and the CA that verified it.
func servedCertificate(port int, pool *x509.CertPool) (leaf, ca *x509.Certificate, err error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	chain := conn.ConnectionState().VerifiedChains[0]
	return chain[0], chain[len(chain)-1], nil
}

// markerHardened waits (up to 15s) until a dry-run pod in ns comes back
// hardened or not, as wanted: which registration the API server uses.
func markerHardened(ctx context.Context, cs kubernetes.Interface, ns string, want bool) (time.Time, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		p, err := cs.CoreV1().Pods(ns).Create(ctx, plainPod("marker"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && (p.Annotations["pod-hardener.io/hardened"] != "") == want {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("a pod in %s hardened: want %v, after 15s (last error %v)", ns, want, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Scenario 9: config and certificate reload with no restart and no failed
// request, while pods are created continuously.
func TestLiveReloadWhileCreating(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	const ns = "s9-live-reload"
	restrictedNamespace(t, ns, nil)
	cs := quietClient(t)

	// Restore the suite config whatever happens; the rotated certificate
	// stays, trusted by the bundle in ca.crt that registerSuiteWebhook reads.
	t.Cleanup(func() {
		if err := writeFileAtomic(hook.ConfigPath, []byte(suiteConfig), 0o644); err != nil {
			t.Errorf("restoring config: %v", err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			p, err := cs.CoreV1().Pods("webhook-probe").Create(context.Background(), plainPod("probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err == nil && p.Annotations["pod-hardener.io/hardened"] == "restricted" {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("restore: the suite config never took effect again (last %v)", err)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		restoreSuiteWebhook(t)
		_ = admin.CoreV1().Pods(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{})
	})

	if _, err := profiles.Parse([]byte(reloadedConfig)); err != nil {
		t.Fatalf("the test's own config is invalid: %v", err)
	}
	cfgOK0 := metricSum(t, "pod_hardener_config_reloads_total", `result="success"`)
	cfgErr0 := metricSum(t, "pod_hardener_config_reloads_total", `result="error"`)
	certOK0 := metricSum(t, "pod_hardener_certificate_reloads_total", `result="success"`)
	certErr0 := metricSum(t, "pod_hardener_certificate_reloads_total", `result="error"`)
	load := startPodLoad(cs, ns, 4, 50*time.Millisecond)
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(load.stop)
			load.wg.Wait()
		}
	}
	defer stopLoad()
	begin := time.Now()
	if _, err := load.waitProfile("restricted", begin, 15*time.Second); err != nil {
		t.Fatal(err)
	}

	// (a) config reload: a new default profile.
	t0 := time.Now()
	if err := writeFileAtomic(hook.ConfigPath, []byte(reloadedConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	seen, err := load.waitProfile("reloaded", t0, 15*time.Second)
	if err != nil {
		t.Fatalf("config reload: %v (log %s)", err, hook.Proc.Log)
	}
	t.Logf("config reload: first pod with profile reloaded %s after the write", seen.Sub(t0).Round(time.Millisecond))

	// (b) certificate rotation to a new CA, the way make-certs.sh does it:
	// bundle old+new CA first, then the new pair.
	// The CA of the certificate served now (ca.crt may hold two CAs after
	// an earlier rotation: the bundle keeps that one and the new one).
	curBundle, err := hook.CABundle()
	if err != nil {
		t.Fatal(err)
	}
	curPool := x509.NewCertPool()
	curPool.AppendCertsFromPEM(curBundle)
	_, servingCA, err := servedCertificate(hook.Port, curPool)
	if err != nil {
		t.Fatalf("the webhook's certificate does not verify against ca.crt: %v", err)
	}
	oldCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: servingCA.Raw})
	newCA, newCert, newKey, err := server.NewCertificates([]string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	bundle := append(slices.Clone(oldCA), newCA...)
	// ca.crt is what registerSuiteWebhook reads; DevCerts keeps existing
	// files, so a webhook restart later serves tls.crt unchanged.
	if err := writeFileAtomic(filepath.Join(hook.CertsDir, "ca.crt"), bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := registerSuiteWebhook(ctx, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the API server's webhook informer
	newPool := x509.NewCertPool()
	newPool.AppendCertsFromPEM(newCA)
	if _, _, err := servedCertificate(hook.Port, newPool); err == nil {
		t.Fatal("the new certificate is served before it was written?")
	}
	// Should the test stop between the two writes, put the old pair back,
	// or a later restart of the webhook could not load its certificate.
	keyPath, certPath := filepath.Join(hook.CertsDir, "tls.key"), filepath.Join(hook.CertsDir, "tls.crt")
	oldKey, err1 := os.ReadFile(keyPath)
	oldCert, err2 := os.ReadFile(certPath)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
			t.Logf("restore: the certificate files do not match (%v): putting the previous pair back", err)
			_ = writeFileAtomic(keyPath, oldKey, 0o600)
			_ = writeFileAtomic(certPath, oldCert, 0o644)
		}
	})
	t1 := time.Now()
	if err := writeFileAtomic(keyPath, newKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(certPath, newCert, 0o644); err != nil {
		t.Fatal(err)
	}
	var leaf *x509.Certificate
	for {
		leaf, _, err = servedCertificate(hook.Port, newPool)
		if err == nil {
			break
		}
		if time.Since(t1) > 5*time.Second {
			t.Fatalf("the new certificate was not served within 5s: %v (log %s)", err, hook.Proc.Log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("certificate rotation: new certificate (serial %x) served %s after the write", leaf.SerialNumber, time.Since(t1).Round(time.Millisecond))

	// Prove the API server itself accepts the new certificate: trust only
	// the new CA for a while (a changed caBundle makes the API server open
	// new connections), then go back to the two-CA bundle. That
	// registration also leaves out a marker namespace: once a pod there
	// is not hardened, the API server uses it, and every create of the
	// load from then on reached the webhook trusting the new CA alone.
	const marker = "s9-new-ca-marker"
	if err := ensureNamespace(ctx, marker, nil); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Register(ctx, admin, cluster.Registration{Name: "pod-hardener", URL: hook.URL, CABundle: newCA,
		ExcludeNamespaces: []string{"no-webhook", marker}}); err != nil {
		t.Fatal(err)
	}
	tNew, err := markerHardened(ctx, cs, marker, false)
	if err != nil {
		t.Fatalf("the registration trusting only the new CA never took effect: %v", err)
	}
	time.Sleep(2 * time.Second)
	tNewEnd := time.Now()
	if err := registerSuiteWebhook(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := markerHardened(ctx, cs, marker, true); err != nil {
		t.Fatalf("the two-CA registration never took effect again: %v", err)
	}

	// Back to the suite config, still under load.
	t2 := time.Now()
	if err := writeFileAtomic(hook.ConfigPath, []byte(suiteConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := load.waitProfile("restricted", t2, 15*time.Second); err != nil {
		t.Fatalf("config restore: %v", err)
	}
	for len(load.snapshot()) < 300 && time.Since(begin) < 60*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	stopLoad()

	results := load.snapshot()
	var failed, unhardened []string
	profiles := map[string]int{}
	for _, r := range results {
		switch {
		case r.err != nil:
			failed = append(failed, r.name+": "+r.err.Error())
		case len(r.missing) > 0:
			unhardened = append(unhardened, fmt.Sprintf("%s lacks %v", r.name, r.missing))
		}
		if r.err == nil {
			profiles[r.profile]++
			// Once reloaded was observed, every pod created after that and
			// before the restore has it: no flapping back.
			if r.start.After(seen) && r.end.Before(t2) && r.profile != "reloaded" {
				t.Errorf("%s started %s after reloaded was in effect but has profile %q", r.name, r.start.Sub(seen), r.profile)
			}
		}
	}
	inWindow := 0
	for _, r := range results {
		if r.start.After(tNew) && r.end.Before(tNewEnd) {
			inWindow++
		}
	}
	t.Logf("%d pods created in %s by 4 workers; profiles %v; %d while only the new CA was trusted", len(results), time.Since(begin).Round(time.Millisecond), profiles, inWindow)
	// All creates succeeded hardened (checked below); these are the ones
	// the API server sent to the webhook trusting only the new CA.
	if inWindow < 5 {
		t.Errorf("only %d pods created while only the new CA was trusted, want at least 5", inWindow)
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d creates failed, first: %v", len(failed), len(results), failed[:min(5, len(failed))])
	}
	if len(unhardened) > 0 {
		t.Errorf("%d pods not hardened, first: %v", len(unhardened), unhardened[:min(5, len(unhardened))])
	}
	if len(results) < 300 {
		t.Errorf("only %d pods created", len(results))
	}
	cfgOK := metricSum(t, "pod_hardener_config_reloads_total", `result="success"`) - cfgOK0
	cfgErr := metricSum(t, "pod_hardener_config_reloads_total", `result="error"`) - cfgErr0
	certOK := metricSum(t, "pod_hardener_certificate_reloads_total", `result="success"`) - certOK0
	certErr := metricSum(t, "pod_hardener_certificate_reloads_total", `result="error"`) - certErr0
	t.Logf("webhook metrics: config reloads success %v error %v; certificate reloads success %v error %v", cfgOK, cfgErr, certOK, certErr)
	if cfgOK < 2 || cfgErr > 0 {
		t.Errorf("config reloads: %v successful (want 2: reloaded, then restored), %v refused", cfgOK, cfgErr)
	}
	if certOK < 1 {
		t.Errorf("no certificate reload counted")
	}

	// Negative control, load stopped: trusting only the old CA, the API
	// server must now fail to call the webhook. This proves it sees the
	// new certificate, and bounds how fast it follows a caBundle change.
	oldPool := x509.NewCertPool()
	oldPool.AppendCertsFromPEM(oldCA)
	if _, _, err := servedCertificate(hook.Port, oldPool); err == nil {
		t.Error("the old certificate is still served")
	}
	// The API server caches one client per distinct clientConfig, with its
	// keep-alive connections: the first registration's (old CA only) still
	// holds connections made with the old certificate, which stay usable.
	// A leading newline makes the same bundle a new client, hence new
	// connections and a new handshake.
	oldOnly := append([]byte("\n"), oldCA...)
	if err := cluster.Register(ctx, admin, cluster.Registration{Name: "pod-hardener", URL: hook.URL, CABundle: oldOnly,
		ExcludeNamespaces: []string{"no-webhook"}}); err != nil {
		t.Fatal(err)
	}
	t3 := time.Now()
	for {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, plainPod("old-ca-only"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Logf("caBundle with only the old CA: the API server refuses %s later: %v", time.Since(t3).Round(time.Millisecond), err)
			if !strings.Contains(err.Error(), "x509") && !strings.Contains(err.Error(), "certificate") {
				t.Errorf("expected a certificate error, got %v", err)
			}
			break
		}
		if time.Since(t3) > 15*time.Second {
			t.Error("with only the old CA in the caBundle the API server still reaches the webhook: is the old certificate served?")
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := registerSuiteWebhook(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := waitHardening(ctx); err != nil {
		t.Fatal(err)
	}
}

// kustomize renders a kustomization as `kubectl apply -k` does, with the
// kubectl v1.37.2 that e2e/build-binaries.sh builds (not whichever kubectl
// is on PATH: its kustomize may render otherwise, and a fresh machine has
// none).
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	kubectl := filepath.Join(cluster.DefaultBinDir(), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		missingTool(t, fmt.Sprintf("kubectl %s not built (%v): run e2e/build-binaries.sh kubectl", cluster.Version, err))
	}
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decoding kustomize output: %v", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

// TestDeployManifestsAccepted: every object deploy/self-signed renders is
// accepted by a real API server (server-side apply, so schema validation
// and admission run), and the webhook's own Deployment passes PSS
// restricted without any webhook's help.
func TestDeployManifestsAccepted(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	objs := kustomize(t, filepath.Join(repoRoot(), "deploy", "self-signed"))
	if len(objs) == 0 {
		t.Fatal("kustomize rendered nothing")
	}

	// The harness's RBAC for the webhook process is named pod-hardener-e2e,
	// apart from deploy/'s pod-hardener objects, so the apply leaves it be.
	// deploy/'s MutatingWebhookConfiguration is also named pod-hardener,
	// with the same webhook name: applied over the suite's registration it
	// would merge into it. Take the suite's out while deploy/ is in.
	if err := cluster.Unregister(ctx, admin, "pod-hardener"); err != nil {
		t.Fatal(err)
	}
	// Register (Get, then a full Update) replaces deploy/'s configuration
	// too, should the test stop before deleting it.
	t.Cleanup(func() { restoreSuiteWebhook(t) })

	disco, err := discovery.NewDiscoveryClientForConfig(adminCfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))
	dyn, err := dynamic.NewForConfig(adminCfg)
	if err != nil {
		t.Fatal(err)
	}
	// Webhook configurations last, as kubectl apply would order them.
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		last := func(u *unstructured.Unstructured) int {
			if strings.HasSuffix(u.GetKind(), "WebhookConfiguration") {
				return 1
			}
			return 0
		}
		return last(a) - last(b)
	})
	var deployment *unstructured.Unstructured
	var kinds []string
	force := true
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		id := gvk.Kind + " " + u.GetNamespace() + "/" + u.GetName()
		kinds = append(kinds, id)
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s: no resource for %s: %v", id, gvk, err)
			continue
		}
		body, err := u.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == "namespace" {
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		got, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "e2e", Force: &force})
		if err != nil {
			t.Errorf("%s rejected by the API server: %v", id, err)
			continue
		}
		if gvk.Kind == "MutatingWebhookConfiguration" {
			// It points at a Service with no endpoints here, failurePolicy
			// Fail: every pod create would fail while it exists.
			if err := cluster.Unregister(ctx, admin, u.GetName()); err != nil {
				t.Fatalf("deleting the applied %s: %v", id, err)
			}
			whs, _, _ := unstructured.NestedSlice(got.Object, "webhooks")
			t.Logf("%s accepted (%d webhook(s)), then deleted", id, len(whs))
			continue
		}
		if gvk.Kind == "Deployment" {
			deployment = got
		}
		if m.Scope.Name() == "namespace" {
			// Inert here without controllers; with them the Deployment
			// would start pods. The namespace stays (deleting one needs
			// kube-controller-manager).
			name := u.GetName()
			t.Cleanup(func() {
				bg := metav1.DeletePropagationBackground
				if err := ri.Delete(context.Background(), name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
					t.Errorf("deleting %s: %v", id, err)
				}
			})
		}
	}
	t.Logf("applied %d objects: %v", len(objs), kinds)

	// deploy/'s RBAC: its ServiceAccount may read namespaces (what the
	// informer needs) and list and watch pods (the continuous audit), and
	// nothing else this test asks about.
	canI := func(user string, groups []string, verb, resource string) bool {
		t.Helper()
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: resource}}}
		r, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	saUser, saGroups := "system:serviceaccount:pod-hardener:pod-hardener", []string{"system:serviceaccounts", "system:serviceaccounts:pod-hardener"}
	for _, verb := range []string{"get", "list", "watch"} {
		if !canI(saUser, saGroups, verb, "namespaces") {
			t.Errorf("deploy/'s ServiceAccount cannot %s namespaces", verb)
		}
	}
	// The continuous audit's pod watch.
	for _, verb := range []string{"list", "watch"} {
		if !canI(saUser, saGroups, verb, "pods") {
			t.Errorf("deploy/'s ServiceAccount cannot %s pods", verb)
		}
	}
	for _, check := range [][2]string{{"list", "secrets"}, {"create", "pods"}, {"update", "namespaces"}} {
		if canI(saUser, saGroups, check[0], check[1]) {
			t.Errorf("deploy/'s ServiceAccount may %s %s", check[0], check[1])
		}
	}
	if !canI("pod-hardener", nil, "watch", "namespaces") {
		t.Error("after the apply, the e2e webhook's user cannot watch namespaces")
	}
	if deployment == nil {
		t.Fatal("deploy/self-signed renders no Deployment (or it was rejected)")
	}

	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(deployment.Object, &d); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: *d.Spec.Template.ObjectMeta.DeepCopy(), Spec: *d.Spec.Template.Spec.DeepCopy()}
	pod.Name = "deployment-template"
	if f := pss.Evaluate(pod, psaapi.LevelRestricted); len(f) > 0 {
		t.Errorf("the Deployment's pod template fails PSS restricted: %v", f)
	}

	// The real PodSecurity admission, no webhook: in pod-hardener itself
	// (enforce=restricted from deploy/; no webhook is registered right now)
	// and in no-webhook, which the suite registration excludes.
	if err := ensureNamespace(ctx, "no-webhook", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: d.Spec.Template.Spec.ServiceAccountName}}
	if _, err := admin.CoreV1().ServiceAccounts("no-webhook").Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, ns := range []string{"pod-hardener", "no-webhook"} {
		if ns == "no-webhook" {
			// With the suite webhook back, no-webhook is still untouched.
			restoreSuiteWebhook(t)
		}
		cs, w := clientWithWarnings(t)
		p := pod.DeepCopy()
		p.Namespace = ns
		got, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Errorf("the Deployment's pod template is rejected in %s (enforce=restricted, no webhook): %v", ns, err)
			continue
		}
		if v, ok := got.Annotations["pod-hardener.io/hardened"]; ok {
			t.Errorf("in %s a webhook touched the pod (hardened=%q): the check is not unaided", ns, v)
		}
		if strings.Contains(w.joined(), "PodSecurity") || strings.Contains(w.joined(), "violate") {
			t.Errorf("PodSecurity warned in %s: %q", ns, w.joined())
		}
	}
	var nsObj corev1.Namespace
	if n, err := admin.CoreV1().Namespaces().Get(ctx, "pod-hardener", metav1.GetOptions{}); err == nil {
		nsObj = *n
	}
	if nsObj.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace pod-hardener labels %v", nsObj.Labels)
	}
}
