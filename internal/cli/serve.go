package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/pod-hardener/pod-hardener/internal/server"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// serveKeys are the serve settings: each a flag, a key under `server:` in
// config.yaml, and an environment variable POD_HARDENER_<KEY> (upper case).
var serveKeys = []string{"listen", "metricsListen", "tlsCertFile", "tlsKeyFile", "kubeconfig", "devCerts", "http2", "shutdownDelay", "logLevel", "auditInterval", "auditNamespaceLabel"}

func newServeCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTPS admission webhook (/mutate), with /metrics, /healthz and /readyz on a second port",
		Long: `Serve the mutating admission webhook. Pods are hardened on CREATE, new
ephemeral containers on UPDATE of pods/ephemeralcontainers; everything else
passes untouched. The serving certificate and config.yaml are re-read when
their files change; an invalid new config is refused and the last good one
keeps serving. SIGTERM drains in-flight requests.

Each flag is also a key under "server:" in config.yaml and an environment
variable: --metrics-listen, server.metricsListen, POD_HARDENER_METRICSLISTEN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runServe(ctx, v, cmd)
		},
	}
	f := cmd.Flags()
	f.String("listen", ":8443", "HTTPS address of the webhook")
	f.String("metrics-listen", ":9090", "HTTP address of /metrics, /healthz, /readyz")
	f.String("tls-cert-file", "", "serving certificate (PEM); re-read when it changes")
	f.String("tls-key-file", "", "serving key (PEM)")
	f.String("kubeconfig", "", "kubeconfig for reading namespace labels (default: in-cluster config when in a pod)")
	f.String("dev-certs", "", "make a CA and serving certificate in DIR when missing, serve with them, print the caBundle and a MutatingWebhookConfiguration")
	f.Bool("http2", false, "serve HTTP/2 too (off: CVE-2023-44487)")
	f.Duration("shutdown-delay", 0, "after SIGTERM, keep serving this long with /readyz failing, so endpoints drop the pod first")
	f.String("log-level", "info", "debug, info, warn or error")
	f.Duration("audit-interval", 0, "keep an audit of every pod current and export it on /metrics, every pod evaluated again this often (0: off; needs list/watch pods)")
	f.Bool("audit-namespace-label", true, "audit metrics per namespace (off for very large clusters: summed over the cluster)")
	for _, k := range serveKeys {
		flag := camelToKebab(k)
		_ = v.BindPFlag("server."+k, f.Lookup(flag))
		_ = v.BindEnv("server."+k, profiles.EnvPrefix+"_"+strings.ToUpper(k))
	}
	return cmd
}

// tuneGC lets the collector run less often unless the operator set GOGC
// or GOMEMLIMIT: the live heap is 1-2 MiB, so the default GOGC=100 ran
// about 80 collections a second at 2,000 reviews/s, 17% of the CPU. With
// 400 and a 48 MiB soft limit, throughput at 8 connections rose from
// 0.60x to 0.81x the floor and open-loop p99 at 2,000/s fell from 8.4 to
// 2.8 ms, with peak RSS 46-54 MiB (docs/performance.md). The continuous
// audit's cache grows with the cluster's pods: a soft limit below the live
// heap makes the collector run back to back, and with that larger heap
// the default GOGC already collects seldom. With it the limit is 192 MiB,
// three quarters of deploy/'s 256 MiB (figures in docs/audit.md).
func tuneGC(audit bool) {
	if os.Getenv("GOGC") == "" && !audit {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		limit := int64(48 << 20)
		if audit {
			limit = 192 << 20
		}
		debug.SetMemoryLimit(limit)
	}
}

func runServe(ctx context.Context, v *viper.Viper, cmd *cobra.Command) error {
	cfg, err := loadConfig(v)
	if err != nil {
		return err
	}
	for k, val := range cfg.Server {
		known := false
		for _, sk := range serveKeys {
			if k == sk {
				known = true
			}
		}
		if !known {
			return &exitError{ExitInvalid, fmt.Errorf("config server.%s: unknown key (known: %s)", k, strings.Join(serveKeys, ", "))}
		}
		// config.yaml ranks below flags and environment variables.
		v.SetDefault("server."+k, val)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(v.GetString("server.logLevel"))); err != nil {
		return &exitError{ExitInvalid, fmt.Errorf("log level: %w", err)}
	}
	delay, err := time.ParseDuration(v.GetString("server.shutdownDelay"))
	if err != nil && v.GetString("server.shutdownDelay") != "" {
		return &exitError{ExitInvalid, fmt.Errorf("shutdown delay: %w", err)}
	}
	auditEvery, err := time.ParseDuration(v.GetString("server.auditInterval"))
	if err != nil || auditEvery < 0 {
		return &exitError{ExitInvalid, fmt.Errorf("audit interval %q: a duration of 0 (off) or more, e.g. 5m", v.GetString("server.auditInterval"))}
	}
	logger := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	tuneGC(auditEvery > 0)
	err = server.Run(ctx, server.Options{
		ConfigPath:    v.GetString("config"),
		Listen:        v.GetString("server.listen"),
		MetricsListen: v.GetString("server.metricsListen"),
		TLSCertFile:   v.GetString("server.tlsCertFile"),
		TLSKeyFile:    v.GetString("server.tlsKeyFile"),
		Kubeconfig:    v.GetString("server.kubeconfig"),
		DevCertsDir:   v.GetString("server.devCerts"),
		HTTP2:         v.GetBool("server.http2"),
		ShutdownDelay: delay,
		Logger:        logger,
		Out:           cmd.OutOrStdout(),
		Viper:         v,

		AuditInterval:       auditEvery,
		AuditNamespaceLabel: v.GetBool("server.auditNamespaceLabel"),
	})
	if err != nil {
		logger.Error("serve failed", "error", err)
		return err
	}
	return nil
}

func camelToKebab(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('-')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
