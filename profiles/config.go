package profiles

import (
	"fmt"
	"path"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Annotations and labels users and admins write. Each is documented in
// PRODUCT.md and config.yaml.
const (
	// AnnotationProfile on a pod, or LabelProfile on a namespace, picks a profile.
	AnnotationProfile = "pod-hardener.io/profile"
	LabelProfile      = "pod-hardener.io/profile"
	// LabelAllowExemptions on a namespace lets its pods' exemptions count.
	LabelAllowExemptions = "pod-hardener.io/allow-exemptions"
	// LabelMode on a namespace (harden or report) overrides the selected
	// profile's mode: the switch an admin turns one namespace at a time.
	LabelMode = "pod-hardener.io/mode"
)

// ProfileSpec is a profile as written in config.yaml. Unset fields come from
// `extends` (default: restricted for a custom profile).
type ProfileSpec struct {
	Name                string          `json:"name"`
	Extends             string          `json:"extends,omitempty"`
	Description         string          `json:"description,omitempty"`
	Mode                RolloutMode     `json:"mode,omitempty"`
	OnConflict          Action          `json:"onConflict,omitempty"`
	Controls            map[string]Mode `json:"controls,omitempty"`
	AllowedCapabilities *[]string       `json:"allowedCapabilities,omitempty"`
	DropCapabilities    *[]string       `json:"dropCapabilities,omitempty"`
	WritablePaths       *[]string       `json:"writablePaths,omitempty"`
	EmptyDir            *EmptyDir       `json:"emptyDir,omitempty"`
	RunAsUser           *int64          `json:"runAsUser,omitempty"`
	RunAsGroup          *int64          `json:"runAsGroup,omitempty"`
	FSGroup             *int64          `json:"fsGroup,omitempty"`
	RootImages          RootImages      `json:"rootImages,omitempty"`
}

// NamespaceRule maps namespaces to a profile. A rule matches when every
// part it sets matches: one of the name globs, and the label selector.
type NamespaceRule struct {
	Names    []string              `json:"names,omitempty"`
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	Profile  string                `json:"profile"`

	selector labels.Selector
}

// Subjects are requesters whose pods may carry exemptions anywhere.
type Subjects struct {
	Users  []string `json:"users,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// Exemptions says where exemption annotations are honoured.
type Exemptions struct {
	Namespaces []string `json:"namespaces,omitempty"`
	Subjects   Subjects `json:"subjects,omitempty"`
	// OnUnauthorized: warn (ignore the annotation, harden, warn) or deny.
	OnUnauthorized Action `json:"onUnauthorized,omitempty"`
}

// Config is config.yaml. Build it with Load or Parse; both validate and
// resolve it, so a *Config in hand is always usable.
type Config struct {
	DefaultProfile string          `json:"defaultProfile,omitempty"`
	Profiles       []ProfileSpec   `json:"profiles,omitempty"`
	Namespaces     []NamespaceRule `json:"namespaces,omitempty"`
	Exemptions     Exemptions      `json:"exemptions,omitempty"`
	// ServerKeys is the `server:` section as written; Server is what
	// serve runs with: the defaults, these keys, then flags and
	// environment variables (Overrides), validated together.
	ServerKeys map[string]any `json:"server,omitempty"`
	Server     ServerSettings `json:"-"`

	resolved  map[string]*Profile
	overrides map[string]any
	path      string
}

// Path is the file the config was read from; "" for the built-in defaults.
func (c *Config) Path() string { return c.path }

// Default returns the configuration used when no config.yaml is given.
func Default() *Config {
	c := &Config{}
	if err := c.finish(); err != nil {
		// The empty config is valid by construction; failing here is a bug.
		panic(fmt.Sprintf("profiles: default config invalid: %v", err))
	}
	return c
}

// Profile returns a resolved profile by name.
func (c *Config) Profile(name string) (*Profile, bool) {
	p, ok := c.resolved[name]
	return p, ok
}

// ProfileNames lists every resolved profile, sorted.
func (c *Config) ProfileNames() []string {
	out := make([]string, 0, len(c.resolved))
	for n := range c.resolved {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// finish fills defaults, validates and resolves `extends`.
func (c *Config) finish() error {
	if c.DefaultProfile == "" {
		c.DefaultProfile = "restricted"
	}
	if c.Exemptions.OnUnauthorized == "" {
		c.Exemptions.OnUnauthorized = ActionWarn
	}
	if errs := c.validate(); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		// One error a line: an admin fixing config.yaml reads a list.
		return fmt.Errorf("%d error(s):\n  %s", len(errs), strings.Join(msgs, "\n  "))
	}
	return nil
}

// Facts are what the caller knows about where a pod is created and by whom.
type Facts struct {
	Namespace string
	// NamespaceLabels are the namespace's labels; NamespaceKnown is false
	// when they could not be read, and then selection fails safe.
	NamespaceLabels map[string]string
	NamespaceKnown  bool
	User            string
	Groups          []string
}

// Authorization says whether exemption annotations count for a pod.
type Authorization struct {
	Allowed bool
	// Why explains the decision for warnings and audit.
	Why string
}

// AuthorizeExemptions decides from what the requester cannot set on the pod
// itself: config, the namespace's label (namespace rights), the requester's
// identity as the API server authenticated it.
func (c *Config) AuthorizeExemptions(f Facts) Authorization {
	for _, u := range c.Exemptions.Subjects.Users {
		if u == f.User && u != "" {
			return Authorization{Allowed: true, Why: fmt.Sprintf("user %q is listed in exemptions.subjects.users", f.User)}
		}
	}
	for _, g := range c.Exemptions.Subjects.Groups {
		for _, fg := range f.Groups {
			if g == fg {
				return Authorization{Allowed: true, Why: fmt.Sprintf("group %q is listed in exemptions.subjects.groups", g)}
			}
		}
	}
	if !f.NamespaceKnown {
		return Authorization{Why: fmt.Sprintf("namespace %q could not be read, so no exemption is honoured", f.Namespace)}
	}
	for _, glob := range c.Exemptions.Namespaces {
		if ok, _ := path.Match(glob, f.Namespace); ok {
			return Authorization{Allowed: true, Why: fmt.Sprintf("namespace %q matches exemptions.namespaces %q", f.Namespace, glob)}
		}
	}
	if f.NamespaceLabels[LabelAllowExemptions] == "true" {
		return Authorization{Allowed: true, Why: fmt.Sprintf("namespace %q has label %s=true", f.Namespace, LabelAllowExemptions)}
	}
	return Authorization{Why: fmt.Sprintf("namespace %q does not allow exemptions (label %s=true or config exemptions.namespaces)", f.Namespace, LabelAllowExemptions)}
}

// Selection is the profile chosen for a pod, and how.
type Selection struct {
	Profile *Profile
	// Source names the rule that chose it, for messages.
	Source string
	// Mode is the profile's mode, or the namespace label's; ModeSource
	// says which, for messages.
	Mode       RolloutMode
	ModeSource string
	Warnings   []string
}

// Select chooses a profile: the pod annotation (only when exemptions are
// authorized), the namespace label, config namespace rules, the default.
// An unknown name never leaves a pod unhardened: it falls back to the
// default profile with a warning.
func (c *Config) Select(f Facts, podAnnotation string, auth Authorization) Selection {
	s := c.selectProfile(f, podAnnotation, auth)
	s.Mode, s.ModeSource = s.Profile.Mode, "profile "+s.Profile.Name
	if s.Mode == "" {
		s.Mode = RolloutHarden
	}
	if !f.NamespaceKnown {
		return s
	}
	switch v := f.NamespaceLabels[LabelMode]; RolloutMode(v) {
	case "":
	case RolloutHarden, RolloutReport:
		s.Mode, s.ModeSource = RolloutMode(v), "namespace label "+LabelMode
	default:
		s.Warnings = append(s.Warnings, fmt.Sprintf("namespace label %s=%q ignored: want %q or %q; using the mode of profile %q (%s)",
			LabelMode, v, RolloutHarden, RolloutReport, s.Profile.Name, s.Mode))
	}
	return s
}

func (c *Config) selectProfile(f Facts, podAnnotation string, auth Authorization) Selection {
	var warnings []string
	pick := func(name, source string) (Selection, bool) {
		if p, ok := c.resolved[name]; ok {
			return Selection{Profile: p, Source: source, Warnings: warnings}, true
		}
		warnings = append(warnings, fmt.Sprintf("unknown profile %q from %s; using default profile %q", name, source, c.DefaultProfile))
		return Selection{}, false
	}
	if podAnnotation != "" {
		if auth.Allowed {
			if s, ok := pick(podAnnotation, "pod annotation "+AnnotationProfile); ok {
				return s
			}
		} else {
			warnings = append(warnings, fmt.Sprintf("annotation %s=%q ignored: %s", AnnotationProfile, podAnnotation, auth.Why))
		}
	}
	if !f.NamespaceKnown {
		warnings = append(warnings, fmt.Sprintf("namespace %q could not be read; using default profile %q", f.Namespace, c.DefaultProfile))
		return Selection{Profile: c.resolved[c.DefaultProfile], Source: "default (namespace unknown)", Warnings: warnings}
	}
	if name := f.NamespaceLabels[LabelProfile]; name != "" {
		if s, ok := pick(name, "namespace label "+LabelProfile); ok {
			return s
		}
	}
	for i := range c.Namespaces {
		r := &c.Namespaces[i]
		if r.matches(f.Namespace, f.NamespaceLabels) {
			if s, ok := pick(r.Profile, fmt.Sprintf("config namespaces[%d]", i)); ok {
				return s
			}
		}
	}
	return Selection{Profile: c.resolved[c.DefaultProfile], Source: "defaultProfile", Warnings: warnings}
}

func (r *NamespaceRule) matches(ns string, nsLabels map[string]string) bool {
	if len(r.Names) > 0 {
		found := false
		for _, g := range r.Names {
			if ok, _ := path.Match(g, ns); ok {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if r.selector != nil && !r.selector.Matches(labels.Set(nsLabels)) {
		return false
	}
	return true
}

// String renders a profile for `pod-hardener profiles`.
func (p *Profile) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", p.Name, p.Description)
	fmt.Fprintf(&b, "  mode: %s\n", p.Mode)
	fmt.Fprintf(&b, "  onConflict: %s\n", p.OnConflict)
	fmt.Fprintf(&b, "  judged at: Pod Security Standards %s\n", p.Level)
	for _, c := range ControlNames {
		m := p.Controls[c]
		if m == "" {
			m = ModeOff
		}
		fmt.Fprintf(&b, "  %-30s %s\n", c, m)
	}
	if len(p.AllowedCapabilities) > 0 {
		fmt.Fprintf(&b, "  allowedCapabilities: %s\n", strings.Join(p.AllowedCapabilities, ", "))
	}
	if len(p.DropCapabilities) > 0 {
		fmt.Fprintf(&b, "  dropCapabilities: %s\n", strings.Join(p.DropCapabilities, ", "))
	}
	if len(p.WritablePaths) > 0 {
		fmt.Fprintf(&b, "  writablePaths: %s\n", strings.Join(p.WritablePaths, ", "))
	}
	if p.EmptyDir.Medium != "" || p.EmptyDir.SizeLimit != "" {
		fmt.Fprintf(&b, "  emptyDir: medium=%q sizeLimit=%q\n", p.EmptyDir.Medium, p.EmptyDir.SizeLimit)
	}
	for _, f := range []struct {
		n string
		v *int64
	}{{"runAsUser", p.RunAsUser}, {"runAsGroup", p.RunAsGroup}, {"fsGroup", p.FSGroup}} {
		if f.v != nil {
			fmt.Fprintf(&b, "  %s: %d\n", f.n, *f.v)
		}
	}
	return b.String()
}
