package cli

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/pod-hardener/pod-hardener/internal/server"
	"github.com/pod-hardener/pod-hardener/profiles"
)

func newServeCmd(v *viper.Viper) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTPS admission webhook (/mutate), with /metrics, /healthz and /readyz on a second port",
		Long: `Serve the mutating admission webhook. Pods are hardened on CREATE, new
ephemeral containers on UPDATE of pods/ephemeralcontainers; everything else
passes untouched. The serving certificate and config.yaml are re-read when
their files change; an invalid new config is refused and the last good one
keeps serving. A reload applies profiles, namespaces and exemptions; changed
server: settings are logged and take effect on restart. SIGTERM drains
in-flight requests.

Each flag is also a key under "server:" in config.yaml and an environment
variable: --metrics-listen, server.metricsListen, POD_HARDENER_METRICSLISTEN.
A flag outranks the variable, which outranks config.yaml; all are validated
together, so "pod-hardener profiles" refuses a bad server key as serve does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runServe(ctx, v, cmd)
		},
	}
	d := profiles.DefaultServerSettings()
	f := cmd.Flags()
	f.String("listen", d.Listen, "HTTPS address of the webhook")
	f.String("metrics-listen", d.MetricsListen, "HTTP address of /metrics, /healthz, /readyz")
	f.String("tls-cert-file", "", "serving certificate (PEM); re-read when it changes")
	f.String("tls-key-file", "", "serving key (PEM)")
	f.String("kubeconfig", "", "kubeconfig for reading namespace labels (default: in-cluster config when in a pod)")
	f.String("dev-certs", "", "make a CA and serving certificate in DIR when missing, serve with them, print the caBundle and a MutatingWebhookConfiguration")
	f.Bool("http2", d.HTTP2, "serve HTTP/2 too (off: CVE-2023-44487)")
	f.Duration("shutdown-delay", d.ShutdownDelay, "after SIGTERM, keep serving this long with /readyz failing, so endpoints drop the pod first")
	f.String("log-level", strings.ToLower(d.LogLevel.String()), "debug, info, warn or error")
	f.Bool("image-lookup", d.ImageLookup, "read each container image's config (USER, ports, volumes) from its registry before hardening (docs/image-lookup.md)")
	f.Duration("image-lookup-budget", d.ImageLookupBudget, "the most one review waits for its images' facts; keep it well inside the webhook's timeoutSeconds")
	f.Int("image-lookup-cache-size", d.ImageLookupCacheSize, "image digests whose facts are kept")
	f.Duration("image-lookup-tag-ttl", d.ImageLookupTagTTL, "how long a tag's digest is trusted")
	f.Int("image-lookup-registry-concurrency", d.ImageLookupRegistryConcurrency, "the most requests in flight to one registry")
	f.Int("image-lookup-max-images", d.ImageLookupMaxImages, "the most distinct images looked up for one pod")
	f.String("image-lookup-platform", d.ImageLookupPlatform, "node platform when a pod selects none by nodeSelector")
	f.StringSlice("image-lookup-insecure-registries", d.ImageLookupInsecureRegistries, "registry hosts (host:port) reached over plain HTTP")
	f.Duration("audit-interval", d.AuditInterval, "keep an audit of every pod current and export it on /metrics, every pod evaluated again this often (0: off; needs list/watch pods)")
	f.Bool("audit-namespace-label", d.AuditNamespaceLabel, "audit metrics per namespace (off for very large clusters: summed over the cluster)")
	for _, k := range profiles.ServerKeyNames() {
		flag := camelToKebab(k)
		_ = v.BindPFlag("server."+k, f.Lookup(flag))
		_ = v.BindEnv("server."+k, profiles.EnvPrefix+"_"+strings.ToUpper(k))
	}
	return cmd
}

// tuneGC lets the collector run less often unless the operator set GOGC
// or GOMEMLIMIT: the live heap is small, so under load the default
// collects many times a second, a large share of the CPU; the soft limit
// bounds the memory that room costs (docs/performance.md, "Measurements
// behind choices in the code"). The continuous audit's cache grows with
// the cluster's pods: a soft limit below the live heap makes the collector
// run back to back, and with that larger heap the default GOGC already
// collects seldom, so with the audit on GOGC stays and the limit is three
// quarters of deploy/'s 256 MiB (docs/audit.md).
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
	cfg, overrides, err := loadConfig(v)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: cfg.Server.LogLevel}))
	tuneGC(cfg.Server.AuditInterval > 0)
	err = server.Run(ctx, server.Options{Config: cfg, ConfigOverrides: overrides, Logger: logger, Out: cmd.OutOrStdout()})
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
