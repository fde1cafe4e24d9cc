package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/viper"
	"sigs.k8s.io/yaml"
)

// EnvPrefix prefixes the environment variables that override config keys:
// POD_HARDENER_DEFAULTPROFILE, POD_HARDENER_EXEMPTIONS_ONUNAUTHORIZED.
const EnvPrefix = "POD_HARDENER"

// Parse decodes config.yaml strictly: an unknown or misspelt key is an
// error that names it, never silently ignored.
func Parse(data []byte) (*Config, error) {
	return parse(data, "", nil)
}

// parse decodes, applies the overrides, and validates. source names the
// file in errors ("" for none).
func parse(data []byte, source string, override func(*Config)) (*Config, error) {
	in := ""
	if source != "" {
		in = " " + source
	}
	c := &Config{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.UnmarshalStrict(data, c); err != nil {
			return nil, fmt.Errorf("parsing config%s: %w", in, err)
		}
	}
	if override != nil {
		override(c)
	}
	if err := c.finish(); err != nil {
		return nil, fmt.Errorf("invalid config%s: %w", in, err)
	}
	return c, nil
}

// Load reads config.yaml through viper: the file named by path (when
// empty, ./config.yaml if present, else the built-in defaults), then
// environment overrides for the scalar keys. The document itself is decoded
// by Parse rather than by viper, because viper lower-cases every key and
// splits keys at dots, which would corrupt label keys
// (app.kubernetes.io/name) and control names in a selector or map.
func Load(v *viper.Viper, path string) (*Config, error) {
	if v == nil {
		v = viper.New()
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	var data []byte
	switch {
	case path != "":
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading config %s: %w", path, err)
		}
		data = b
		v.SetConfigFile(path)
	default:
		b, err := os.ReadFile("config.yaml")
		if err == nil {
			data = b
			v.SetConfigFile("config.yaml")
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reading config config.yaml: %w", err)
		}
	}
	return LoadData(v, data, path)
}

// LoadData builds the config from config.yaml's bytes (as read by Load,
// or by a reload) with viper's environment overrides on top.
func LoadData(v *viper.Viper, data []byte, path string) (*Config, error) {
	return parse(data, describe(path), func(c *Config) {
		if s := v.GetString("defaultProfile"); s != "" {
			c.DefaultProfile = s
		}
		if s := v.GetString("exemptions.onUnauthorized"); s != "" {
			c.Exemptions.OnUnauthorized = Action(s)
		}
	})
}

func describe(path string) string {
	if path == "" {
		return "config.yaml"
	}
	return path
}
