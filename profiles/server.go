package profiles

import (
	"log/slog"
	"reflect"
	"time"
)

// ServerSettings are the settings of `pod-hardener serve`. Each is a key
// under `server:` in config.yaml (its json tag), a flag (the key in
// kebab case) and an environment variable POD_HARDENER_<KEY> (upper
// case); validateServer in validation.go checks them all.
type ServerSettings struct {
	Listen        string `json:"listen"`        // HTTPS webhook, host:port
	MetricsListen string `json:"metricsListen"` // /metrics /healthz /readyz, host:port
	TLSCertFile   string `json:"tlsCertFile"`
	TLSKeyFile    string `json:"tlsKeyFile"`
	Kubeconfig    string `json:"kubeconfig"`
	DevCerts      string `json:"devCerts"`
	// HTTP2 is off by default: CVE-2023-44487 (rapid reset).
	HTTP2         bool          `json:"http2"`
	ShutdownDelay time.Duration `json:"shutdownDelay"`
	LogLevel      slog.Level    `json:"logLevel"`
	// AuditInterval > 0 turns the continuous audit on; 0 is off.
	AuditInterval       time.Duration `json:"auditInterval"`
	AuditNamespaceLabel bool          `json:"auditNamespaceLabel"`

	ImageLookup                    bool          `json:"imageLookup"`
	ImageLookupBudget              time.Duration `json:"imageLookupBudget"`
	ImageLookupCacheSize           int           `json:"imageLookupCacheSize"`
	ImageLookupTagTTL              time.Duration `json:"imageLookupTagTtl"`
	ImageLookupRegistryConcurrency int           `json:"imageLookupRegistryConcurrency"`
	ImageLookupMaxImages           int           `json:"imageLookupMaxImages"`
	// ImageLookupPlatform is os/arch[/variant].
	ImageLookupPlatform           string   `json:"imageLookupPlatform"`
	ImageLookupInsecureRegistries []string `json:"imageLookupInsecureRegistries"`
}

// DefaultServerSettings are serve's settings when nothing sets them.
func DefaultServerSettings() ServerSettings {
	return ServerSettings{
		Listen:                         ":8443",
		MetricsListen:                  ":9090",
		LogLevel:                       slog.LevelInfo,
		AuditNamespaceLabel:            true,
		ImageLookupBudget:              2 * time.Second,
		ImageLookupCacheSize:           1000,
		ImageLookupTagTTL:              30 * time.Second,
		ImageLookupRegistryConcurrency: 4,
		ImageLookupMaxImages:           16,
		ImageLookupPlatform:            "linux/amd64",
	}
}

// ServerKeyNames lists the `server:` keys in declaration order.
func ServerKeyNames() []string {
	t := reflect.TypeOf(ServerSettings{})
	out := make([]string, t.NumField())
	for i := range out {
		out[i] = t.Field(i).Tag.Get("json")
	}
	return out
}

// Changed lists the keys whose values differ between s and o: a reload
// reports them, since they take effect only on restart.
func (s ServerSettings) Changed(o ServerSettings) []string {
	a, b := reflect.ValueOf(s), reflect.ValueOf(o)
	var out []string
	for i, k := range ServerKeyNames() {
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			out = append(out, k)
		}
	}
	return out
}
