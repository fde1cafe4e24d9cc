package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// running is a `serve` started in process on loopback.
type running struct {
	addr, metrics string
	// pool is swapped whole, never changed in place: handshakes in other
	// goroutines read it.
	pool   atomic.Pointer[x509.CertPool]
	caPEM  []byte
	dir    string
	cancel context.CancelFunc
	done   chan error
}

func startServer(t *testing.T, config string, ns NamespaceLookup, tweaks ...func(*Options)) *running {
	t.Helper()
	dir := t.TempDir()
	ca, err := DevCerts(filepath.Join(dir, "certs"))
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	r := &running{dir: dir, done: make(chan error, 1), caPEM: ca}
	r.pool.Store(pool)
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if ns == nil {
		ns = NoNamespaces{}
	}
	o := Options{
		ConfigPath:    cfgPath,
		Listen:        "127.0.0.1:0",
		MetricsListen: "127.0.0.1:0",
		TLSCertFile:   filepath.Join(dir, "certs", "tls.crt"),
		TLSKeyFile:    filepath.Join(dir, "certs", "tls.key"),
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Out:           io.Discard,
		Namespaces:    ns,
		// Fast polling keeps the reload tests short.
		ConfigPollInterval: 100 * time.Millisecond,
		OnListening: func(a, m string) {
			r.addr, r.metrics = a, m
			close(ready)
		},
	}
	for _, tw := range tweaks {
		tw(&o)
	}
	go func() { r.done <- Run(ctx, o) }()
	select {
	case <-ready:
	case err := <-r.done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start in 10s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return r
}

func (r *running) client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: r.pool.Load()},
		ForceAttemptHTTP2: true,
	}}
}

func (r *running) review(t *testing.T, c *http.Client, body []byte) (*admissionv1.AdmissionResponse, *http.Response, error) {
	resp, err := c.Post("https://"+r.addr+"/mutate", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &ar); err != nil || ar.Response == nil {
		return nil, resp, &httpError{resp.StatusCode, string(b)}
	}
	return ar.Response, resp, nil
}

type httpError struct {
	code int
	body string
}

func (e *httpError) Error() string { return e.body }

func TestServeTLSAndHTTP1Only(t *testing.T) {
	r := startServer(t, "", nil)
	resp, httpResp, err := r.review(t, r.client(), review{obj: futurePod}.JSON())
	if err != nil || !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("review: %v %+v", err, resp)
	}
	if httpResp.ProtoMajor != 1 {
		t.Errorf("HTTP/2 negotiated (%s); it must be off by default", httpResp.Proto)
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.pool.Load(), MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get("https://" + r.addr + "/mutate"); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ok", "/metrics": "pod_hardener_reviews_total"} {
		res, err := http.Get("http://" + r.metrics + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %.200s", path, res.StatusCode, b)
		}
	}
	res, _ := http.Get("http://" + r.metrics + "/metrics")
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "kubewebhook_mutating_webhook_review_duration_seconds") {
		t.Error("kubewebhook latency histogram missing from /metrics")
	}
}

// load sends reviews from several goroutines until stop, counting failures.
func load(t *testing.T, r *running, stop <-chan struct{}) (ok, failed *atomic.Int64, wait func()) {
	ok, failed = &atomic.Int64{}, &atomic.Int64{}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// A new client per round forces new handshakes, which is
				// what picks up a rotated certificate.
				resp, _, err := r.review(t, r.client(), review{obj: futurePod}.JSON())
				if err != nil || !resp.Allowed {
					failed.Add(1)
					t.Logf("failed review: %v", err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	return ok, failed, wg.Wait
}

func TestCertificateRotationUnderLoad(t *testing.T) {
	r := startServer(t, "", nil)
	stop := make(chan struct{})
	ok, failed, wait := load(t, r, stop)
	time.Sleep(300 * time.Millisecond)
	// Rotate to a certificate from a new CA, which the clients also trust.
	ca, cert, key, err := NewCertificates([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	both := x509.NewCertPool()
	both.AppendCertsFromPEM(r.caPEM)
	both.AppendCertsFromPEM(ca)
	r.pool.Store(both)
	// Write the key last and non-atomically, as a careless rotation would:
	// the half-written pair must be ignored until it loads.
	if err := os.WriteFile(filepath.Join(r.dir, "certs", "tls.crt"), cert, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(r.dir, "certs", "tls.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	newSerial := parseCert(t, cert).SerialNumber
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := tls.Dial("tcp", r.addr, &tls.Config{RootCAs: r.pool.Load()})
		if err == nil {
			got := conn.ConnectionState().PeerCertificates[0].SerialNumber
			conn.Close()
			if got.Cmp(newSerial) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("rotated certificate never served")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wait()
	if failed.Load() != 0 || ok.Load() < 10 {
		t.Fatalf("during rotation: %d ok, %d failed", ok.Load(), failed.Load())
	}
	t.Logf("rotation under load: %d reviews, none failed", ok.Load())
}

func parseCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigReloadUnderLoad(t *testing.T) {
	r := startServer(t, "defaultProfile: restricted\n", nil)
	cfgPath := filepath.Join(r.dir, "config.yaml")
	stop := make(chan struct{})
	ok, failed, wait := load(t, r, stop)
	profileNow := func() string {
		resp, _, err := r.review(t, r.client(), review{obj: futurePod}.JSON())
		if err != nil {
			t.Fatal(err)
		}
		return resp.AuditAnnotations["profile"]
	}
	waitFor := func(want string) {
		deadline := time.Now().Add(5 * time.Second)
		for profileNow() != want {
			if time.Now().After(deadline) {
				t.Fatalf("profile never became %s", want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := os.WriteFile(cfgPath, []byte("defaultProfile: baseline\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("baseline")
	// A broken config is refused; the last good one keeps serving.
	if err := os.WriteFile(cfgPath, []byte("defaultProfile: [broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if p := profileNow(); p != "baseline" {
		t.Fatalf("broken config changed the profile to %q", p)
	}
	res, _ := http.Get("http://" + r.metrics + "/metrics")
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), `pod_hardener_config_reloads_total{result="error"}`) {
		t.Error("refused reload not counted")
	}
	if err := os.WriteFile(cfgPath, []byte("defaultProfile: privileged\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("privileged")
	// Truncated in place (as `cp` or an editor does mid-write): an empty
	// file is refused, never taken for the built-in defaults.
	if err := os.WriteFile(cfgPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if p := profileNow(); p != "privileged" {
		t.Fatalf("an empty config file changed the profile to %q", p)
	}
	// Deleted and recreated: reloads keep working.
	if err := os.Remove(cfgPath); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := os.WriteFile(cfgPath, []byte("defaultProfile: baseline\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("baseline")
	close(stop)
	wait()
	if failed.Load() != 0 {
		t.Fatalf("%d reviews failed during reloads (%d ok)", failed.Load(), ok.Load())
	}
}

// blockingNamespaces holds every lookup until released.
type blockingNamespaces struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingNamespaces) Labels(ctx context.Context, _ string) (map[string]string, error) {
	b.entered <- struct{}{}
	<-b.release
	return nil, nil
}

func TestGracefulShutdownDrainsInFlight(t *testing.T) {
	ns := &blockingNamespaces{entered: make(chan struct{}, 8), release: make(chan struct{})}
	r := startServer(t, "", ns)
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() {
			resp, _, err := r.review(t, r.client(), review{obj: futurePod}.JSON())
			if err == nil && (!resp.Allowed || len(resp.Patch) == 0) {
				err = &httpError{0, "not hardened"}
			}
			errs <- err
		}()
	}
	for i := 0; i < 3; i++ {
		<-ns.entered
	}
	readyz := func() (int, error) {
		res, err := http.Get("http://" + r.metrics + "/readyz")
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	if code, err := readyz(); code != http.StatusOK {
		t.Errorf("readyz before SIGTERM: %d %v", code, err)
	}
	r.cancel() // SIGTERM
	// The three requests are held, so the drain cannot end before this;
	// the metrics server must stay up meanwhile, or the kubelet cannot
	// see the replica stop being ready.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		code, err := readyz()
		if err != nil {
			t.Errorf("readyz during drain: %v", err)
			break
		}
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("readyz during drain: %d, want 503", code)
			break
		}
	}
	close(ns.release)
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Errorf("in-flight request failed during shutdown: %v", err)
		}
	}
	if err := <-r.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	r.done <- nil // for Cleanup
}

func TestInformerNamespaces(t *testing.T) {
	client := fake.NewSimpleClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps", Labels: map[string]string{"pod-hardener.io/profile": "baseline"}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := NewInformerNamespaces(ctx, client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	deadline := time.Now().Add(5 * time.Second)
	for !n.Synced() {
		if time.Now().After(deadline) {
			t.Fatal("informer never synced")
		}
		time.Sleep(10 * time.Millisecond)
	}
	l, err := n.Labels(ctx, "apps")
	if err != nil || l["pod-hardener.io/profile"] != "baseline" {
		t.Fatalf("labels %v %v", l, err)
	}
	// Relabelling is seen without a restart.
	ns, _ := client.CoreV1().Namespaces().Get(ctx, "apps", metav1.GetOptions{})
	ns.Labels["pod-hardener.io/profile"] = "privileged"
	if _, err := client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		l, _ = n.Labels(ctx, "apps")
		if l["pod-hardener.io/profile"] == "privileged" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("relabel never seen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := n.Labels(ctx, "missing"); err == nil {
		t.Error("a namespace that does not exist gave no error (must fail safe)")
	}
}
