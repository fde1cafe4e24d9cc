package profiles

import (
	"fmt"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validate checks every key and resolves `extends`; each error names the
// exact key (profiles[2].extends), so an admin sees what to fix.
func (c *Config) validate() field.ErrorList {
	var errs field.ErrorList
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
