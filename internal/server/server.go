package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/viper"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pod-hardener/pod-hardener/internal/imagefacts"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// Options configure `pod-hardener serve`; each is also a flag, a config
// key and an environment variable (see internal/cli/serve.go).
type Options struct {
	ConfigPath    string
	Listen        string // HTTPS webhook, default :8443
	MetricsListen string // HTTP /metrics /healthz /readyz, default :9090
	TLSCertFile   string
	TLSKeyFile    string
	Kubeconfig    string
	// DevCertsDir: make a CA and serving certificate there when missing,
	// serve with them, and print the caBundle and a webhook configuration.
	DevCertsDir string
	// HTTP2 enables HTTP/2; off by default (CVE-2023-44487, rapid reset).
	HTTP2 bool
	// ShutdownDelay: after SIGTERM, how long /readyz fails while requests
	// are still served, so endpoints drop this pod before it stops.
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds the wait for in-flight requests.
	ShutdownTimeout time.Duration
	// ConfigPollInterval: how often config.yaml is checked for changes.
	ConfigPollInterval time.Duration
	// ImageLookup, when set, turns image-aware hardening on with these
	// bounds; ImagePlatform is the node platform when a pod selects none.
	ImageLookup   *imagefacts.Config
	ImagePlatform v1.Platform

	Logger *slog.Logger
	Out    io.Writer // dev-certs output
	// Viper carries the config path and env overrides; nil makes one.
	Viper *viper.Viper
	// Namespaces, when set, replaces the client-go informer (tests).
	Namespaces NamespaceLookup
	// OnListening, when set, is told the bound addresses (tests use :0).
	OnListening func(webhook, metrics string)

	devCA []byte
}

func (o *Options) defaults() {
	if o.Listen == "" {
		o.Listen = ":8443"
	}
	if o.MetricsListen == "" {
		o.MetricsListen = ":9090"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Viper == nil {
		o.Viper = viper.New()
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.ConfigPollInterval == 0 {
		o.ConfigPollInterval = time.Second
	}
}

// Run serves until ctx ends, then drains in-flight requests.
func Run(ctx context.Context, o Options) error {
	o.defaults()
	log := o.Logger
	cfg, err := profiles.Load(o.Viper, o.ConfigPath)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := NewMetrics(reg)

	if o.DevCertsDir != "" {
		ca, err := DevCerts(o.DevCertsDir)
		if err != nil {
			return fmt.Errorf("dev certificates: %w", err)
		}
		o.TLSCertFile, o.TLSKeyFile = filepath.Join(o.DevCertsDir, "tls.crt"), filepath.Join(o.DevCertsDir, "tls.key")
		o.devCA = ca
	}
	if o.TLSCertFile == "" || o.TLSKeyFile == "" {
		return errors.New("--tls-cert-file and --tls-key-file are required (or --dev-certs DIR)")
	}
	certs, err := NewCertReloader(o.TLSCertFile, o.TLSKeyFile, log, metrics)
	if err != nil {
		return err
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var ns NamespaceLookup = NoNamespaces{}
	var synced = func() bool { return true }
	var client kubernetes.Interface
	restCfg, err := kubeConfig(o.Kubeconfig)
	switch {
	case err != nil && o.Namespaces == nil:
		return err
	case restCfg != nil:
		c, err := kubernetes.NewForConfig(restCfg)
		if err != nil {
			return fmt.Errorf("kubernetes client: %w", err)
		}
		client = c
	}
	switch {
	case o.Namespaces != nil:
		ns = o.Namespaces
	case client == nil:
		log.Warn("no kubeconfig and not in a cluster: namespace labels are not read; config rules by namespace name still apply")
	default:
		inf := NewInformerNamespaces(ctx, client, log)
		ns, synced = inf, inf.Synced
	}
	decider := NewDecider(cfg, ns, metrics)
	if o.ImageLookup != nil {
		res, err := imagefacts.New(*o.ImageLookup, reg)
		if err != nil {
			return err
		}
		if client == nil {
			log.Warn("image lookup without cluster access: images are looked up anonymously")
		}
		decider.SetImageLookup(&ImageLookup{Resolver: res, Client: client, Platform: o.ImagePlatform})
		log.Info("image lookup on", "budget", res.Budget(), "platform", o.ImagePlatform.String())
	}
	if path := o.Viper.ConfigFileUsed(); path != "" {
		watchConfig(ctx, o.Viper, path, o.ConfigPollInterval, decider, metrics, log)
	}

	handler, err := NewHandler(decider, reg, log)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/mutate", handler)
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate, NextProtos: []string{"http/1.1"}}
	// Timeouts for an admission webhook: the API server sends the whole
	// review at once and gives up after the webhook's timeoutSeconds (at
	// most 30, deploy/ sets 5). Headers and body must arrive within a few
	// seconds, so a slow client holds a connection and its body's share
	// of the in-flight budget only that long; the answer may take as long
	// as the API server could still wait for it. Idle keep-alive
	// connections outlive the API server's own idle timeout (90 s), so it
	// closes them first and never sends a review on a connection we are
	// closing.
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 3 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if o.HTTP2 {
		tlsCfg.NextProtos = []string{"h2", "http/1.1"}
	} else {
		// A non-nil empty map turns HTTP/2 off.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}

	var shuttingDown atomic.Bool
	mmux := http.NewServeMux()
	mmux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mmux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mmux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case shuttingDown.Load():
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
		case !synced():
			http.Error(w, "namespace informer not synced", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ok")
		}
	})
	msrv := &http.Server{Handler: mmux, ReadHeaderTimeout: 3 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}

	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Listen, err)
	}
	mln, err := net.Listen("tcp", o.MetricsListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listening on %s: %w", o.MetricsListen, err)
	}
	if o.devCA != nil {
		printDevConfig(o.Out, ln.Addr().String(), o.devCA)
	}
	log.Info("serving", "webhook", ln.Addr().String(), "metrics", mln.Addr().String(), "http2", o.HTTP2,
		"config", o.Viper.ConfigFileUsed(), "defaultProfile", cfg.DefaultProfile)
	if o.OnListening != nil {
		o.OnListening(ln.Addr().String(), mln.Addr().String())
	}

	errc := make(chan error, 2)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	go func() { errc <- msrv.Serve(mln) }()
	select {
	case err := <-errc:
		stop()
		return fmt.Errorf("server stopped: %w", err)
	case <-ctx.Done():
	}
	shuttingDown.Store(true)
	log.Info("shutting down: draining in-flight requests", "delay", o.ShutdownDelay)
	time.Sleep(o.ShutdownDelay)
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	_ = msrv.Shutdown(sctx)
	if err != nil {
		return fmt.Errorf("draining: %w", err)
	}
	log.Info("stopped")
	return nil
}

// kubeConfig returns the client config: the kubeconfig file when given,
// else in-cluster when running in a pod, else nil (no cluster access).
func kubeConfig(path string) (*rest.Config, error) {
	if path != "" {
		c, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		return c, nil
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return nil, nil
	}
	c, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster config: %w", err)
	}
	return c, nil
}

// watchConfig re-reads config.yaml when it changes. An invalid new config
// is refused, logged and counted; the last good one keeps serving. It polls
// the file (size, mtime, inode) rather than using viper's watcher: that one
// fires while an editor or `cp` is still writing (so an empty, half-written
// file looked like the defaults) and stops for good once the file is
// deleted and recreated. A change is read until two reads agree, and an
// empty file is refused: no admin means "drop every rule" that way.
func watchConfig(ctx context.Context, v *viper.Viper, path string, every time.Duration, d *Decider, m *Metrics, log *slog.Logger) {
	last := fileStamp(path)
	var lastData []byte
	if b, err := os.ReadFile(path); err == nil {
		lastData = b
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		missing := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			st := fileStamp(path)
			if st == "" {
				if !missing {
					missing = true
					m.configReload("error")
					log.Error("config file unreadable; the previous config keeps serving", "path", path)
				}
				continue
			}
			missing = false
			if st == last {
				continue
			}
			data, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			time.Sleep(every / 10)
			again, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(data, again) || fileStamp(path) != st {
				continue // still being written: next tick
			}
			last = st
			if bytes.Equal(data, lastData) {
				continue
			}
			lastData = data
			if len(bytes.TrimSpace(data)) == 0 {
				m.configReload("error")
				log.Error("config reload refused: the file is empty; the previous config keeps serving", "path", path)
				continue
			}
			c, err := profiles.LoadData(v, data, path)
			if err != nil {
				m.configReload("error")
				log.Error("config reload refused; the previous config keeps serving", "path", path, "error", err)
				continue
			}
			d.SetConfig(c)
			m.configReload("success")
			log.Info("config reloaded", "path", path, "defaultProfile", c.DefaultProfile, "profiles", len(c.ProfileNames()))
		}
	}()
}

func fileStamp(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	var ino uint64
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = sys.Ino
	}
	return fmt.Sprintf("%d/%d/%d", st.Size(), st.ModTime().UnixNano(), ino)
}

func printDevConfig(w io.Writer, addr string, ca []byte) {
	_, port, _ := net.SplitHostPort(addr)
	b64 := base64.StdEncoding.EncodeToString(ca)
	fmt.Fprintf(w, "# caBundle: %s\n", b64)
	fmt.Fprint(w, WebhookConfiguration(fmt.Sprintf("https://127.0.0.1:%s/mutate", port), b64))
}

// WebhookConfiguration renders a MutatingWebhookConfiguration for a URL
// client config: pods CREATE and pods/ephemeralcontainers UPDATE,
// reinvoked when a later webhook changes the pod.
func WebhookConfiguration(url, caBundle string) string {
	return fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: pod-hardener
webhooks:
  - name: pod-hardener.pod-hardener.io
    admissionReviewVersions: ["v1"]
    sideEffects: None
    reinvocationPolicy: IfNeeded
    failurePolicy: Fail
    timeoutSeconds: 5
    clientConfig:
      url: %s
      caBundle: %s
    namespaceSelector:
      matchExpressions:
        - key: kubernetes.io/metadata.name
          operator: NotIn
          values: ["kube-system", "pod-hardener"]
    rules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE"]
        resources: ["pods"]
        scope: Namespaced
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["UPDATE"]
        resources: ["pods/ephemeralcontainers"]
        scope: Namespaced
`, url, caBundle)
}
