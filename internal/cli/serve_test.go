package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is written by the serve goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeSettingsPrecedence runs the real `serve` command: each setting
// comes from a flag, else the environment, else config.yaml's server:
// section; --dev-certs prints the caBundle and a webhook configuration.
func TestServeSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	fromFlag, fromEnv, fromConfig := freePort(t), freePort(t), freePort(t)
	cfg := filepath.Join(dir, "config.yaml")
	config := fmt.Sprintf("defaultProfile: baseline\nserver:\n  listen: 127.0.0.1:%d\n  metricsListen: 127.0.0.1:%d\n  logLevel: debug\n", fromConfig, fromConfig)
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_HARDENER_METRICSLISTEN", fmt.Sprintf("127.0.0.1:%d", fromEnv))
	var out, errs syncBuffer
	root := New(strings.NewReader(""), &out, &errs)
	root.SetArgs([]string{"serve", "--config", cfg, "--dev-certs", filepath.Join(dir, "certs"), "--listen", fmt.Sprintf("127.0.0.1:%d", fromFlag)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", fromEnv))
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics not on the port from the environment: %v\n%s", err, errs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", fromFlag)); err != nil {
		t.Errorf("webhook not on the port from the flag: %v", err)
	} else {
		c.Close()
	}
	for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if _, err := os.Stat(filepath.Join(dir, "certs", f)); err != nil {
			t.Errorf("--dev-certs did not write %s", f)
		}
	}
	o := out.String()
	for _, want := range []string{"# caBundle: ", "kind: MutatingWebhookConfiguration", fmt.Sprintf("url: https://127.0.0.1:%d/mutate", fromFlag), "pods/ephemeralcontainers"} {
		if !strings.Contains(o, want) {
			t.Errorf("dev output lacks %q:\n%s", want, o)
		}
	}
	if e := errs.String(); !strings.Contains(e, `"defaultProfile":"baseline"`) || !strings.Contains(e, `"level":"INFO"`) {
		t.Errorf("JSON logs should show the config in use:\n%s", e)
	}
}

func TestServeRejectsBadSettings(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	_ = os.WriteFile(cfg, []byte("server:\n  listn: :1\n"), 0o600)
	_, errs, code := runCLI(t, "", "serve", "--config", cfg)
	if code != ExitInvalid || !strings.Contains(errs, "server.listn: unknown key") {
		t.Errorf("exit %d: %s", code, errs)
	}
	_, errs, code = runCLI(t, "", "serve", "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errs, "--tls-cert-file") {
		t.Errorf("serve without certificates: exit %d: %s", code, errs)
	}
	for _, bad := range []string{"300", "-1m", "often"} {
		_ = os.WriteFile(cfg, []byte("server:\n  auditInterval: \""+bad+"\"\n"), 0o600)
		_, errs, code = runCLI(t, "", "serve", "--config", cfg)
		if code != ExitInvalid || !strings.Contains(errs, "audit interval") {
			t.Errorf("server.auditInterval %q: exit %d: %s", bad, code, errs)
		}
	}
	// On, without a cluster to watch: refused, not silently off.
	_, errs, code = runCLI(t, "", "serve", "--audit-interval", "1m", "--dev-certs", filepath.Join(dir, "certs"),
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errs, "--audit-interval needs cluster access") {
		t.Errorf("--audit-interval without a cluster: exit %d: %s", code, errs)
	}
}
