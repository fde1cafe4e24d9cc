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

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/pod-hardener/pod-hardener/internal/imagefacts"
	"github.com/pod-hardener/pod-hardener/internal/server"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// serveKeys are the serve settings: each a flag, a key under `server:` in
// config.yaml, and an environment variable POD_HARDENER_<KEY> (upper case).
var serveKeys = []string{"listen", "metricsListen", "tlsCertFile", "tlsKeyFile", "kubeconfig", "devCerts", "http2", "shutdownDelay", "logLevel",
	"imageLookup", "imageLookupBudget", "imageLookupCacheSize", "imageLookupTagTtl", "imageLookupRegistryConcurrency",
	"imageLookupMaxImages", "imageLookupPlatform", "imageLookupInsecureRegistries"}

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
	f.Bool("image-lookup", false, "read each container image's config (USER, ports, volumes) from its registry before hardening (docs/image-lookup.md)")
	f.Duration("image-lookup-budget", 2*time.Second, "the most one review waits for its images' facts; keep it well inside the webhook's timeoutSeconds")
	f.Int("image-lookup-cache-size", 1000, "image digests whose facts are kept")
	f.Duration("image-lookup-tag-ttl", 30*time.Second, "how long a tag's digest is trusted")
	f.Int("image-lookup-registry-concurrency", 4, "the most requests in flight to one registry")
	f.Int("image-lookup-max-images", 16, "the most distinct images looked up for one pod")
	f.String("image-lookup-platform", "linux/amd64", "node platform when a pod selects none by nodeSelector")
	f.StringSlice("image-lookup-insecure-registries", nil, "registry hosts (host:port) reached over plain HTTP")
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
// 2.8 ms, with peak RSS 46-54 MiB (docs/performance.md).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(48 << 20)
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
	images, platform, err := imageLookupConfig(v)
	if err != nil {
		return &exitError{ExitInvalid, err}
	}
	logger := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	tuneGC()
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
		ImageLookup:   images,
		ImagePlatform: platform,
		Logger:        logger,
		Out:           cmd.OutOrStdout(),
		Viper:         v,
	})
	if err != nil {
		logger.Error("serve failed", "error", err)
		return err
	}
	return nil
}

// imageLookupConfig reads the server.imageLookup* keys: nil when lookup
// is off. The budget must leave the review time to answer within the
// API server's limit on a webhook (30s; deploy/ sets 5s).
func imageLookupConfig(v *viper.Viper) (*imagefacts.Config, v1.Platform, error) {
	if !v.GetBool("server.imageLookup") {
		return nil, v1.Platform{}, nil
	}
	c := &imagefacts.Config{
		CacheSize:           v.GetInt("server.imageLookupCacheSize"),
		RegistryConcurrency: v.GetInt("server.imageLookupRegistryConcurrency"),
		MaxImages:           v.GetInt("server.imageLookupMaxImages"),
		InsecureRegistries:  v.GetStringSlice("server.imageLookupInsecureRegistries"),
	}
	var err error
	if c.Budget, err = positiveDuration(v, "imageLookupBudget"); err != nil {
		return nil, v1.Platform{}, err
	}
	if c.Budget >= 30*time.Second {
		return nil, v1.Platform{}, fmt.Errorf("config server.imageLookupBudget: %s is not inside the API server's 30s webhook limit", c.Budget)
	}
	if c.TagTTL, err = positiveDuration(v, "imageLookupTagTtl"); err != nil {
		return nil, v1.Platform{}, err
	}
	for _, k := range []string{"imageLookupCacheSize", "imageLookupRegistryConcurrency", "imageLookupMaxImages"} {
		if n := v.GetInt("server." + k); n < 1 {
			return nil, v1.Platform{}, fmt.Errorf("config server.%s: %q, want a number of at least 1", k, v.GetString("server."+k))
		}
	}
	p, err := imagefacts.ParsePlatform(v.GetString("server.imageLookupPlatform"))
	if err != nil {
		return nil, v1.Platform{}, fmt.Errorf("config server.imageLookupPlatform: %w", err)
	}
	return c, p, nil
}

func positiveDuration(v *viper.Viper, key string) (time.Duration, error) {
	s := v.GetString("server." + key)
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("config server.%s: %q, want a positive duration such as 2s", key, s)
	}
	return d, nil
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
