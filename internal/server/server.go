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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pod-hardener/pod-hardener/internal/imagefacts"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// Options configure `pod-hardener serve`. Where and how to serve comes
// from Config.Server (profiles.ServerSettings): validated with the rest
// of config.yaml, flags and environment included, before Run is called.
type Options struct {
	// Config is the loaded, validated config.yaml (nil: the built-in
	// defaults); Config.Path, when set, is watched and re-read on change,
	// with ConfigOverrides (the flags and environment) applied again.
	Config          *profiles.Config
	ConfigOverrides profiles.Overrides
	// ShutdownTimeout bounds the wait for in-flight requests.
	ShutdownTimeout time.Duration
	// ConfigPollInterval: how often config.yaml is checked for changes.
	ConfigPollInterval time.Duration

	Logger *slog.Logger
	Out    io.Writer // dev-certs output
	// Namespaces, when set, replaces the client-go informer (tests).
	Namespaces NamespaceLookup
	// OnListening, when set, is told the bound addresses (tests use :0).
	OnListening func(webhook, metrics string)

	devCA []byte
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Config == nil {
		o.Config = profiles.Default()
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
	cfg := o.Config
	st := cfg.Server
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := NewMetrics(reg)

	certFile, keyFile := st.TLSCertFile, st.TLSKeyFile
	if st.DevCerts != "" {
		ca, err := DevCerts(st.DevCerts)
		if err != nil {
			return fmt.Errorf("dev certificates: %w", err)
		}
		certFile, keyFile = filepath.Join(st.DevCerts, "tls.crt"), filepath.Join(st.DevCerts, "tls.key")
		o.devCA = ca
	}
	if certFile == "" || keyFile == "" {
		return errors.New("--tls-cert-file and --tls-key-file are required (or --dev-certs DIR)")
	}
	certs, err := NewCertReloader(certFile, keyFile, log, metrics)
	if err != nil {
		return err
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var ns NamespaceLookup = NoNamespaces{}
	var synced = func() bool { return true }
	var client kubernetes.Interface
	restCfg, err := kubeConfig(st.Kubeconfig)
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
	if st.ImageLookup {
		platform, err := imagefacts.ParsePlatform(st.ImageLookupPlatform)
		if err != nil {
			return fmt.Errorf("config server.imageLookupPlatform: %w", err)
		}
		res, err := imagefacts.New(imagefacts.Config{
			Budget:              st.ImageLookupBudget,
			TagTTL:              st.ImageLookupTagTTL,
			CacheSize:           st.ImageLookupCacheSize,
			RegistryConcurrency: st.ImageLookupRegistryConcurrency,
			MaxImages:           st.ImageLookupMaxImages,
			InsecureRegistries:  st.ImageLookupInsecureRegistries,
		}, reg)
		if err != nil {
			return err
		}
		if client == nil {
			log.Warn("image lookup without cluster access: images are looked up anonymously")
		}
		decider.SetImageLookup(&ImageLookup{Resolver: res, Client: client, Platform: platform})
		log.Info("image lookup on", "budget", res.Budget(), "platform", platform.String())
	}
	if st.AuditInterval > 0 {
		if err := startAudit(ctx, restCfg, o, decider, reg); err != nil {
			return err
		}
	}
	if cfg.Path() != "" {
		watchConfig(ctx, cfg, o.ConfigOverrides, o.ConfigPollInterval, decider, metrics, log)
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
	if st.HTTP2 {
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

	ln, err := net.Listen("tcp", st.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", st.Listen, err)
	}
	mln, err := net.Listen("tcp", st.MetricsListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listening on %s: %w", st.MetricsListen, err)
	}
	if o.devCA != nil {
		printDevConfig(o.Out, ln.Addr().String(), o.devCA)
	}
	log.Info("serving", "webhook", ln.Addr().String(), "metrics", mln.Addr().String(), "http2", st.HTTP2,
		"config", cfg.Path(), "defaultProfile", cfg.DefaultProfile)
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
	log.Info("shutting down: draining in-flight requests", "delay", st.ShutdownDelay)
	time.Sleep(st.ShutdownDelay)
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
// A reload validates the whole file, `server:` keys too, so a file that
// would stop the next restart is refused now; changed server settings
// (listen addresses, certificates, image lookup, audit) are logged and
// take effect only on restart, as they shape listeners and workers that
// run for the life of the process.
func watchConfig(ctx context.Context, start *profiles.Config, o profiles.Overrides, every time.Duration, d *Decider, m *Metrics, log *slog.Logger) {
	path, running := start.Path(), start.Server
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
			c, err := profiles.LoadData(data, path, o)
			if err != nil {
				m.configReload("error")
				log.Error("config reload refused; the previous config keeps serving", "path", path, "error", err)
				continue
			}
			d.SetConfig(c)
			m.configReload("success")
			log.Info("config reloaded", "path", path, "defaultProfile", c.DefaultProfile, "profiles", len(c.ProfileNames()))
			if changed := c.Server.Changed(running); len(changed) > 0 {
				log.Warn("config reloaded, but changed server settings take effect only on restart", "path", path, "keys", changed)
			}
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
