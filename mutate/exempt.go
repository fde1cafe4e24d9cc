package mutate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// Annotations a pod may carry. Exemptions and the profile annotation count
// only where the admin allowed exemptions (profiles.AuthorizeExemptions);
// writable paths always count, since they only make hardening workable.
const (
	AnnotationExempt                = "pod-hardener.io/exempt"
	AnnotationExemptControls        = "pod-hardener.io/exempt-controls"
	AnnotationExemptContainerPrefix = "exempt.pod-hardener.io/"
	AnnotationWritablePaths         = "pod-hardener.io/writable-paths"
	AnnotationWritablePathPrefix    = "writable-paths.pod-hardener.io/"
	// Written by the engine, for audit.
	AnnotationHardened = "pod-hardener.io/hardened"
	AnnotationExempted = "pod-hardener.io/exempted"
)

// exemptions is what the pod's annotations ask for, parsed and checked.
type exemptions struct {
	requested bool // any exemption annotation at all (including the profile one)
	wholePod  bool
	pod       map[string]bool            // control -> exempt for the whole pod
	container map[string]map[string]bool // container -> control -> exempt
	problems  []string                   // unknown controls and containers, bad values
}

// parseExemptions reads the exemption annotations. Unknown control or
// container names and bad values become problems reported to the user,
// never a silent no-op.
func parseExemptions(p *podView) *exemptions {
	e := &exemptions{pod: map[string]bool{}, container: map[string]map[string]bool{}}
	if p.Metadata == nil {
		return e
	}
	names := map[string]bool{}
	for _, c := range p.Spec.allContainers() {
		names[c.Name] = true
	}
	ann := p.Metadata.Annotations
	keys := make([]string, 0, len(ann))
	for k := range ann {
		keys = append(keys, k)
	}
	sort.Strings(keys) // stable messages
	for _, k := range keys {
		v := ann[k]
		switch {
		case k == profiles.AnnotationProfile:
			e.requested = true
		case k == AnnotationExempt:
			// "false" asks for nothing, so it never trips onUnauthorized: deny.
			switch strings.TrimSpace(strings.ToLower(v)) {
			case "true":
				e.requested = true
				e.wholePod = true
			case "false", "":
			default:
				e.problems = append(e.problems, fmt.Sprintf("annotation %s=%q: want \"true\" or \"false\"", k, v))
			}
		case k == AnnotationExemptControls:
			e.requested = true
			for _, c := range e.controls(k, v) {
				e.pod[c] = true
			}
		case strings.HasPrefix(k, AnnotationExemptContainerPrefix):
			e.requested = true
			cname := strings.TrimPrefix(k, AnnotationExemptContainerPrefix)
			if !names[cname] {
				e.problems = append(e.problems, fmt.Sprintf("annotation %s names no container of this pod", k))
				continue
			}
			for _, c := range e.controls(k, v) {
				if controlLevel(c) == levelPod {
					e.problems = append(e.problems, fmt.Sprintf("annotation %s: %s is a pod-level control; exempt it with %s", k, c, AnnotationExemptControls))
					continue
				}
				if e.container[cname] == nil {
					e.container[cname] = map[string]bool{}
				}
				e.container[cname][c] = true
			}
		}
	}
	return e
}

// controls splits a comma list of control names, reporting unknown ones.
func (e *exemptions) controls(key, v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		c, ok := profiles.CanonicalControl(part)
		if !ok {
			e.problems = append(e.problems, fmt.Sprintf("annotation %s: unknown control %q (known: %s)", key, part, strings.Join(profiles.ControlNames, ", ")))
			continue
		}
		out = append(out, c)
	}
	return out
}

// exempt reports whether control is exempt for t (nil t: the pod level).
func (e *exemptions) exempt(control string, t *target) bool {
	if e.pod[control] {
		return true
	}
	return t != nil && e.container[t.name()][control]
}

// clear forgets every exemption: used when they are not authorized.
func (e *exemptions) clear() {
	e.wholePod = false
	e.pod = map[string]bool{}
	e.container = map[string]map[string]bool{}
}

// exemptionHint names the annotation that would exempt control for t.
func exemptionHint(control string, t *target) string {
	if t == nil || controlLevel(control) == levelPod {
		return fmt.Sprintf("%s: %q", AnnotationExemptControls, control)
	}
	return fmt.Sprintf("%s%s: %q", AnnotationExemptContainerPrefix, t.name(), control)
}
