package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// EnvPrefix prefixes the environment variables that override config keys:
// POD_HARDENER_DEFAULTPROFILE, POD_HARDENER_EXEMPTIONS_ONUNAUTHORIZED,
// POD_HARDENER_LISTEN.
const EnvPrefix = "POD_HARDENER"

// Overrides are the values set by flags and environment variables; they
// rank above config.yaml and are validated with it, on every load.
type Overrides struct {
	DefaultProfile string
	OnUnauthorized Action
	// Server holds serve's settings by config key (listen,
	// imageLookupBudget), typed as a flag gives them or as strings from
	// the environment.
	Server map[string]any
}

// Parse decodes config.yaml strictly: an unknown or misspelt key is an
// error that names it, never silently ignored.
func Parse(data []byte) (*Config, error) {
	return LoadData(data, "", Overrides{})
}

// Load reads config.yaml: the file named by path (when empty,
// ./config.yaml if present, else the built-in defaults), with the
// overrides on top. The document is decoded by sigs.k8s.io/yaml rather
// than by viper, because viper lower-cases every key and splits keys at
// dots, which would corrupt label keys (app.kubernetes.io/name) and
// control names in a selector or map.
func Load(path string, o Overrides) (*Config, error) {
	if path == "" {
		if _, err := os.Stat("config.yaml"); err == nil {
			path = "config.yaml"
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reading config config.yaml: %w", err)
		}
	}
	var data []byte
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading config %s: %w", path, err)
		}
		data = b
	}
	return LoadData(data, path, o)
}

// LoadData decodes, applies the overrides and validates config.yaml's
// bytes, as read by Load or by a reload. path names the file in errors
// and in Config.Path ("" for none).
func LoadData(data []byte, path string, o Overrides) (*Config, error) {
	in := ""
	if path != "" {
		in = " " + path
	}
	c := &Config{path: path}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.UnmarshalStrict(data, c); err != nil {
			return nil, fmt.Errorf("parsing config%s: %w", in, err)
		}
	}
	if o.DefaultProfile != "" {
		c.DefaultProfile = o.DefaultProfile
	}
	if o.OnUnauthorized != "" {
		c.Exemptions.OnUnauthorized = o.OnUnauthorized
	}
	c.overrides = o.Server
	if err := c.finish(); err != nil {
		return nil, fmt.Errorf("invalid config%s: %w", in, err)
	}
	return c, nil
}
