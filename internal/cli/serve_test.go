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

// TestBadServerSettingRejectedEverywhere: a bad or unknown `server:` key
// is refused by profiles, check and serve alike, with the same message
// naming the key and what it allows, and exit 1; so `profiles` vets a
// config before a rollout restarts the webhook with it.
func TestBadServerSettingRejectedEverywhere(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	for _, c := range []struct{ server, want string }{
		{"listn: :1", "server.listn: Forbidden: unknown key; known keys: listen, metricsListen,"},
		{"listen: 8443", `server.listen: Invalid value: 8443: want a string`},
		{"metricsListen: localhost", `server.metricsListen: Invalid value: "localhost": want host:port`},
		{"http2: maybe", `server.http2: Invalid value: "maybe": want true or false`},
		{"shutdownDelay: -5s", `server.shutdownDelay: Invalid value: "-5s": want a duration of 0 (off) or more`},
		{"logLevel: verbose", `server.logLevel: Invalid value: "verbose": want debug, info, warn or error`},
		{`auditInterval: "300"`, `server.auditInterval: Invalid value: "300": want a duration such as 30s`},
		{"auditInterval: often", `server.auditInterval: Invalid value: "often": want a duration`},
		{"auditNamespaceLabel: 1", `server.auditNamespaceLabel: Invalid value: 1: want true or false`},
		{"imageLookupBudget: soon", `server.imageLookupBudget: Invalid value: "soon": want a duration`},
		{"imageLookupBudget: 45s", `server.imageLookupBudget: Invalid value: "45s": want a positive duration below the API server's 30s webhook limit`},
		{"imageLookupTagTtl: -1s", `server.imageLookupTagTtl: Invalid value: "-1s": want a positive duration`},
		{"imageLookupCacheSize: 0", `server.imageLookupCacheSize: Invalid value: 0: want a number of at least 1`},
		{"imageLookupRegistryConcurrency: 2.5", `server.imageLookupRegistryConcurrency: Invalid value: 2.5: want a whole number`},
		{"imageLookupMaxImages: many", `server.imageLookupMaxImages: Invalid value: "many": want a whole number`},
		{"imageLookupPlatform: amd64", `server.imageLookupPlatform: Invalid value: "amd64": want os/arch[/variant]`},
		{"imageLookupInsecureRegistries: [http://r.local]", `server.imageLookupInsecureRegistries: Invalid value: ["http://r.local"]: "http://r.local": want registry hosts as host or host:port`},
		{"imageLookupInsecureRegistries: [r.local:http]", `"r.local:http": want registry hosts as host or host:port (port 1-65535)`},
	} {
		if err := os.WriteFile(cfg, []byte("server:\n  "+c.server+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var first string
		for _, args := range [][]string{{"profiles"}, {"check", "-f", "-"}, {"serve"}} {
			_, errs, code := runCLI(t, "", append(args, "--config", cfg)...)
			if code != ExitInvalid || !strings.Contains(errs, c.want) {
				t.Errorf("%s with server.%s: exit %d, want %d and %q:\n%s", args[0], c.server, code, ExitInvalid, c.want, errs)
			}
			if first == "" {
				first = errs
			} else if errs != first {
				t.Errorf("%s says otherwise than profiles about server.%s:\n%s\nvs\n%s", args[0], c.server, errs, first)
			}
		}
	}
	// Flags and environment variables are validated with the file.
	_, errs, code := runCLI(t, "", "serve", "--image-lookup", "--image-lookup-budget", "0s")
	if code != ExitInvalid || !strings.Contains(errs, `server.imageLookupBudget: Invalid value: "0s"`) {
		t.Errorf("--image-lookup-budget 0s: exit %d: %s", code, errs)
	}
	t.Setenv("POD_HARDENER_LOGLEVEL", "loud")
	_, errs, code = runCLI(t, "", "profiles")
	if code != ExitInvalid || !strings.Contains(errs, `server.logLevel: Invalid value: "loud"`) {
		t.Errorf("POD_HARDENER_LOGLEVEL=loud: exit %d: %s", code, errs)
	}
}

func TestServeRejectsBadSettings(t *testing.T) {
	dir := t.TempDir()
	_, errs, code := runCLI(t, "", "serve", "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errs, "--tls-cert-file") {
		t.Errorf("serve without certificates: exit %d: %s", code, errs)
	}
	// On, without a cluster to watch: refused, not silently off.
	_, errs, code = runCLI(t, "", "serve", "--audit-interval", "1m", "--dev-certs", filepath.Join(dir, "certs"),
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errs, "--audit-interval needs cluster access") {
		t.Errorf("--audit-interval without a cluster: exit %d: %s", code, errs)
	}
}
