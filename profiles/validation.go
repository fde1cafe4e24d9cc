package profiles

import (
	"fmt"
	"log/slog"
	"net"
	"path"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validate checks every key and resolves `extends`; each error names the
// exact key (profiles[2].extends), so an admin sees what to fix.
func (c *Config) validate() field.ErrorList {
	errs := c.validateServer()
	builtins := Builtins()
	specs := map[string]int{}
	for i, s := range c.Profiles {
		p := field.NewPath("profiles").Index(i)
		switch {
		case s.Name == "":
			errs = append(errs, field.Required(p.Child("name"), "every profile needs a name"))
		case builtins[s.Name] != nil:
			errs = append(errs, field.Duplicate(p.Child("name"), s.Name+" (a built-in profile)"))
		default:
			if _, dup := specs[s.Name]; dup {
				errs = append(errs, field.Duplicate(p.Child("name"), s.Name))
			}
			specs[s.Name] = i
		}
		errs = append(errs, validateSpec(p, &c.Profiles[i])...)
	}
	for i, s := range c.Profiles {
		if s.Extends == "" || builtins[s.Extends] != nil {
			continue
		}
		if _, ok := specs[s.Extends]; !ok {
			errs = append(errs, field.Invalid(field.NewPath("profiles").Index(i).Child("extends"), s.Extends, "unknown profile"))
		}
	}
	if len(errs) > 0 {
		return errs
	}

	resolved := builtins
	var resolve func(i int, seen []string) (*Profile, *field.Error)
	resolve = func(i int, seen []string) (*Profile, *field.Error) {
		s := &c.Profiles[i]
		if p, ok := resolved[s.Name]; ok {
			return p, nil
		}
		for _, n := range seen {
			if n == s.Name {
				return nil, field.Invalid(field.NewPath("profiles").Index(i).Child("extends"), s.Extends,
					"extends cycle: "+strings.Join(append(seen, s.Name), " -> "))
			}
		}
		parentName := s.Extends
		if parentName == "" {
			parentName = "restricted"
		}
		parent, ok := resolved[parentName]
		if !ok {
			var err *field.Error
			if parent, err = resolve(specs[parentName], append(seen, s.Name)); err != nil {
				return nil, err
			}
		}
		p := s.apply(parent)
		resolved[s.Name] = p
		return p, nil
	}
	for i := range c.Profiles {
		if _, err := resolve(i, nil); err != nil {
			return field.ErrorList{err}
		}
	}
	c.resolved = resolved

	if _, ok := resolved[c.DefaultProfile]; !ok {
		errs = append(errs, field.NotSupported(field.NewPath("defaultProfile"), c.DefaultProfile, c.ProfileNames()))
	}
	for i := range c.Namespaces {
		r := &c.Namespaces[i]
		p := field.NewPath("namespaces").Index(i)
		if _, ok := resolved[r.Profile]; !ok {
			errs = append(errs, field.NotSupported(p.Child("profile"), r.Profile, c.ProfileNames()))
		}
		if len(r.Names) == 0 && r.Selector == nil {
			errs = append(errs, field.Required(p, "a rule needs names, a selector, or both"))
		}
		for j, g := range r.Names {
			if _, err := path.Match(g, ""); err != nil {
				errs = append(errs, field.Invalid(p.Child("names").Index(j), g, "bad glob: "+err.Error()))
			}
		}
		if r.Selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(r.Selector)
			if err != nil {
				errs = append(errs, field.Invalid(p.Child("selector"), r.Selector.String(), err.Error()))
			}
			r.selector = sel
		}
	}
	ex := field.NewPath("exemptions")
	for j, g := range c.Exemptions.Namespaces {
		if _, err := path.Match(g, ""); err != nil {
			errs = append(errs, field.Invalid(ex.Child("namespaces").Index(j), g, "bad glob: "+err.Error()))
		}
	}
	switch c.Exemptions.OnUnauthorized {
	case ActionWarn, ActionDeny:
	default:
		errs = append(errs, field.NotSupported(ex.Child("onUnauthorized"), c.Exemptions.OnUnauthorized, []string{string(ActionWarn), string(ActionDeny)}))
	}
	return errs
}

func validateSpec(p *field.Path, s *ProfileSpec) field.ErrorList {
	var errs field.ErrorList
	switch s.Mode {
	case "", RolloutHarden, RolloutReport:
	default:
		errs = append(errs, field.NotSupported(p.Child("mode"), s.Mode, []string{string(RolloutHarden), string(RolloutReport)}))
	}
	switch s.OnConflict {
	case "", ActionWarn, ActionEnforce, ActionDeny:
	default:
		errs = append(errs, field.NotSupported(p.Child("onConflict"), s.OnConflict, []string{"warn", "enforce", "deny"}))
	}
	switch s.RootImages {
	case "", RootImagesAssign, RootImagesWarn, RootImagesDeny:
	default:
		errs = append(errs, field.NotSupported(p.Child("rootImages"), s.RootImages, RootImagesValues))
	}
	canon := make(map[string]Mode, len(s.Controls))
	for name, m := range s.Controls {
		cp := p.Child("controls").Key(name)
		c, ok := CanonicalControl(name)
		if !ok {
			errs = append(errs, field.NotSupported(cp, name, ControlNames))
			continue
		}
		switch m {
		case ModeOff, ModeDefault, ModeWarn, ModeEnforce, ModeDeny:
		default:
			errs = append(errs, field.NotSupported(cp, m, []string{"off", "default", "warn", "enforce", "deny"}))
		}
		canon[c] = m
	}
	s.Controls = canon
	if s.WritablePaths != nil {
		for j, wp := range *s.WritablePaths {
			if err := ValidateWritablePath(wp); err != nil {
				errs = append(errs, field.Invalid(p.Child("writablePaths").Index(j), wp, err.Error()))
			}
		}
	}
	for _, caps := range []struct {
		name string
		v    *[]string
	}{{"allowedCapabilities", s.AllowedCapabilities}, {"dropCapabilities", s.DropCapabilities}} {
		if caps.v == nil {
			continue
		}
		for j, c := range *caps.v {
			if NormalizeCapability(c) == "" || strings.ContainsAny(c, " ,") {
				errs = append(errs, field.Invalid(p.Child(caps.name).Index(j), c, "not a capability name"))
			}
		}
	}
	if s.EmptyDir != nil {
		switch s.EmptyDir.Medium {
		case "", "Memory":
		default:
			errs = append(errs, field.NotSupported(p.Child("emptyDir", "medium"), s.EmptyDir.Medium, []string{"", "Memory"}))
		}
		if s.EmptyDir.SizeLimit != "" {
			if q, err := resource.ParseQuantity(s.EmptyDir.SizeLimit); err != nil {
				errs = append(errs, field.Invalid(p.Child("emptyDir", "sizeLimit"), s.EmptyDir.SizeLimit, err.Error()))
			} else if q.Sign() <= 0 {
				errs = append(errs, field.Invalid(p.Child("emptyDir", "sizeLimit"), s.EmptyDir.SizeLimit, "must be positive"))
			}
		}
	}
	for _, id := range []struct {
		name string
		v    *int64
	}{{"runAsUser", s.RunAsUser}, {"runAsGroup", s.RunAsGroup}, {"fsGroup", s.FSGroup}} {
		if id.v == nil {
			continue
		}
		if *id.v < 0 || *id.v > 2147483647 {
			errs = append(errs, field.Invalid(p.Child(id.name), *id.v, "must be between 0 and 2147483647"))
		}
		if id.name == "runAsUser" && *id.v == 0 {
			errs = append(errs, field.Invalid(p.Child(id.name), *id.v, "0 is root; runAsNonRoot would refuse every pod"))
		}
	}
	return errs
}

// apply builds the resolved profile: the parent, with what s sets on top.
func (s *ProfileSpec) apply(parent *Profile) *Profile {
	p := parent.clone()
	p.Name = s.Name
	p.Description = s.Description
	if p.Description == "" {
		p.Description = "extends " + parent.Name
	}
	if s.Mode != "" {
		p.Mode = s.Mode
	}
	if s.OnConflict != "" {
		p.OnConflict = s.OnConflict
	}
	for c, m := range s.Controls {
		p.Controls[c] = m
	}
	if s.AllowedCapabilities != nil {
		p.AllowedCapabilities = append([]string(nil), (*s.AllowedCapabilities)...)
	}
	if s.DropCapabilities != nil {
		p.DropCapabilities = append([]string(nil), (*s.DropCapabilities)...)
	}
	if s.WritablePaths != nil {
		p.WritablePaths = append([]string(nil), (*s.WritablePaths)...)
	}
	if s.EmptyDir != nil {
		p.EmptyDir = *s.EmptyDir
	}
	if s.RunAsUser != nil {
		p.RunAsUser = int64p(*s.RunAsUser)
	}
	if s.RunAsGroup != nil {
		p.RunAsGroup = int64p(*s.RunAsGroup)
	}
	if s.FSGroup != nil {
		p.FSGroup = int64p(*s.FSGroup)
	}
	if s.RootImages != "" {
		p.RootImages = s.RootImages
	}
	return p
}

// ValidateWritablePath accepts a clean absolute path other than "/", since
// a mount there would hide the whole image.
func ValidateWritablePath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is not absolute", p)
	case p == "/":
		return fmt.Errorf("path \"/\" would hide the whole root filesystem")
	case strings.Contains(p, ".."):
		return fmt.Errorf("path %q contains \"..\"", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not clean (want %q)", p, path.Clean(p))
	case strings.ContainsAny(p, ",:\x00\n"):
		return fmt.Errorf("path %q contains a comma, colon or control character", p)
	}
	return nil
}

// validateServer sets c.Server from the defaults, the `server:` keys and
// then the overrides from flags and environment variables, checking each
// value's type and range: `profiles`, `check` and `serve` refuse the same
// bad key with the same message, and a reload re-checks them.
func (c *Config) validateServer() field.ErrorList {
	c.Server = DefaultServerSettings()
	sv := reflect.ValueOf(&c.Server).Elem()
	index := map[string]int{}
	for i, k := range ServerKeyNames() {
		index[k] = i
	}
	var errs field.ErrorList
	for _, layer := range []map[string]any{c.ServerKeys, c.overrides} {
		keys := make([]string, 0, len(layer))
		for k := range layer {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := field.NewPath("server").Child(k)
			i, ok := index[k]
			if !ok {
				errs = append(errs, field.Forbidden(p, "unknown key; known keys: "+strings.Join(ServerKeyNames(), ", ")))
				continue
			}
			if layer[k] == nil {
				continue // `key:` with no value keeps the default
			}
			if msg := setServerValue(sv.Field(i), layer[k]); msg != "" {
				errs = append(errs, field.Invalid(p, layer[k], msg))
				continue
			}
			if check := serverChecks[k]; check != nil {
				if msg := check(sv.Field(i).Interface()); msg != "" {
					errs = append(errs, field.Invalid(p, layer[k], msg))
				}
			}
		}
	}
	return errs
}

// setServerValue stores v in a ServerSettings field by the field's type.
// v is as YAML decodes it (string, float64, bool, list), as a flag gives
// it (typed), or as the environment gives it (a string, lists comma
// separated). It returns what was wanted when v does not fit.
func setServerValue(f reflect.Value, v any) string {
	s, isString := v.(string)
	switch f.Interface().(type) {
	case string:
		if !isString {
			return "want a string"
		}
		f.SetString(s)
	case bool:
		b, ok := v.(bool)
		if isString {
			var err error
			b, err = strconv.ParseBool(s)
			ok = err == nil
		}
		if !ok {
			return "want true or false"
		}
		f.SetBool(b)
	case int:
		n, ok := toInt(v)
		if !ok {
			return "want a whole number"
		}
		f.SetInt(int64(n))
	case time.Duration:
		if n, ok := toInt(v); ok && n == 0 {
			s, isString = "0", true
		}
		d, err := time.ParseDuration(s)
		if !isString || err != nil {
			return "want a duration such as 30s or 5m"
		}
		f.SetInt(int64(d))
	case slog.Level:
		l, ok := logLevels[strings.ToLower(s)]
		if !isString || !ok {
			return "want debug, info, warn or error"
		}
		f.SetInt(int64(l))
	case []string:
		var out []string
		switch l := v.(type) {
		case string:
			// The environment's form: space or comma separated.
			out = strings.FieldsFunc(l, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		case []string:
			out = l
		case []any:
			for _, e := range l {
				es, ok := e.(string)
				if !ok {
					return "want a list of strings"
				}
				out = append(out, es)
			}
		default:
			return "want a list of strings"
		}
		var kept []string
		for _, e := range out {
			if e = strings.TrimSpace(e); e != "" {
				kept = append(kept, e)
			}
		}
		f.Set(reflect.ValueOf(kept))
	default:
		panic(fmt.Sprintf("profiles: server setting of type %s has no parser", f.Type()))
	}
	return ""
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case float64:
		if n != float64(int(n)) {
			return 0, false
		}
		return int(n), true
	case string:
		i, err := strconv.Atoi(n)
		return i, err == nil
	}
	return 0, false
}

// webhookLimit is the API server's upper bound on a webhook's
// timeoutSeconds: an image lookup budget must leave the review time to
// answer inside it (deploy/ sets 5s).
const webhookLimit = 30 * time.Second

// serverChecks are the ranges of the typed server keys: each returns ""
// or what is allowed.
var serverChecks = map[string]func(any) string{
	"listen":        hostPort,
	"metricsListen": hostPort,
	"shutdownDelay": nonNegative,
	"auditInterval": nonNegative,
	"imageLookupBudget": func(v any) string {
		if d := v.(time.Duration); d <= 0 || d >= webhookLimit {
			return fmt.Sprintf("want a positive duration below the API server's %s webhook limit, such as 2s", webhookLimit)
		}
		return ""
	},
	"imageLookupTagTtl":              positive,
	"imageLookupCacheSize":           atLeastOne,
	"imageLookupRegistryConcurrency": atLeastOne,
	"imageLookupMaxImages":           atLeastOne,
	"imageLookupPlatform": func(v any) string {
		parts := strings.Split(v.(string), "/")
		if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
			return "want os/arch[/variant], such as linux/amd64 or linux/arm64/v8"
		}
		return ""
	},
	"imageLookupInsecureRegistries": func(v any) string {
		for _, h := range v.([]string) {
			if strings.ContainsAny(h, "/@ ") {
				return fmt.Sprintf("%q: want registry hosts as host or host:port, without scheme or path", h)
			}
			if strings.Contains(h, ":") && hostPort(h) != "" {
				return fmt.Sprintf("%q: want registry hosts as host or host:port (port 1-65535)", h)
			}
		}
		return ""
	},
}

func hostPort(v any) string {
	_, port, err := net.SplitHostPort(v.(string))
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		return "want host:port with a numeric port, such as :8443 or 127.0.0.1:8443"
	}
	return ""
}

func nonNegative(v any) string {
	if v.(time.Duration) < 0 {
		return "want a duration of 0 (off) or more, such as 5m"
	}
	return ""
}

func positive(v any) string {
	if v.(time.Duration) <= 0 {
		return "want a positive duration, such as 30s"
	}
	return ""
}

func atLeastOne(v any) string {
	if v.(int) < 1 {
		return "want a number of at least 1"
	}
	return ""
}
