package mutate

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/pod-hardener/pod-hardener/profiles"
)

/*
Every annotation and label the product reads or writes, with its meaning,
and the code that parses and writes the pod's: a reader of the product
finds each key here first. README's annotation table is the user's view
of the same list.

Read from a pod (users write them):
  - pod-hardener.io/profile (profiles.AnnotationProfile): the profile to
    use (requestedProfile). Like every exemption annotation it counts
    only where the admin allowed exemptions (profiles.AuthorizeExemptions);
    elsewhere it is refused with them (Result.Refused, onUnauthorized).
  - pod-hardener.io/exempt: "true" exempts the whole pod: not hardened,
    annotated exempted=*, and no image lookup (parseExemptions,
    exemptRequested).
  - pod-hardener.io/exempt-controls: comma list of controls not applied
    to the pod, at both levels.
  - exempt.pod-hardener.io/<container>: comma list of container-level
    controls not applied to that container, and of runAsNonRoot and
    seccompProfile: that container's own fields are left as written and
    the other containers get the default at container level, since the
    pod-level one would cover the exempt container.
  - pod-hardener.io/writable-paths: comma list of paths that get a
    writable emptyDir in every container under readOnlyRootFilesystem.
    Writable paths always count, since they only make hardening workable.
  - writable-paths.pod-hardener.io/<container>: the same, one container.
    At most MaxWritablePaths distinct paths across both (parsePaths).
  - container.apparmor.security.beta.kubernetes.io/<container>: the
    deprecated AppArmor annotation, judged and enforced by the
    appArmorProfile control (runtime/default).
  - kubernetes.io/config.mirror (AnnotationMirror): a mirror pod, made by
    a kubelet from a static manifest. The webhook skips it only when a
    node creates it (anyone may write the annotation); the audit reports
    such a pod, bound to a node, as exempt.

Read from a namespace's labels (admins write them; declared in profiles,
which chooses the profile and authorizes exemptions from them):
  - pod-hardener.io/profile (profiles.LabelProfile): the namespace's
    profile.
  - pod-hardener.io/allow-exemptions (profiles.LabelAllowExemptions):
    "true" lets the namespace's pods' exemption annotations count.
  - pod-hardener.io/mode (profiles.LabelMode): harden or report,
    overriding the selected profile's mode.

Written on the pod by the engine, for audit:
  - pod-hardener.io/hardened: the profile that hardened the pod; removed
    from a wholly exempt pod that carries it.
  - pod-hardener.io/exempted: the honoured exemptions as
    control@container (control@pod), or * for a wholly exempt pod;
    removed from a hardened pod that carries it with none honoured.
  - pod-hardener.io/image-decisions: image-aware decisions as
    what@container (what@pod).
  - container.apparmor.security.beta.kubernetes.io/<container>:
    runtime/default, where the appArmorProfile control enforces.

The webhook also sets the admission response's audit annotations (profile,
exempted, exemptions-refused, <level>-failures, image-decisions, conflicts,
namespace-lookup) from the engine's Result: they go to the API server's
audit log, not onto the pod (internal/server/decide.go).
*/

// Annotations a pod may carry, and those the engine writes.
const (
	AnnotationExempt                = "pod-hardener.io/exempt"
	AnnotationExemptControls        = "pod-hardener.io/exempt-controls"
	AnnotationExemptContainerPrefix = "exempt.pod-hardener.io/"
	AnnotationWritablePaths         = "pod-hardener.io/writable-paths"
	AnnotationWritablePathPrefix    = "writable-paths.pod-hardener.io/"
	// AnnotationMirror marks a mirror pod; only its presence counts.
	AnnotationMirror = "kubernetes.io/config.mirror"
	// Written by the engine, for audit.
	AnnotationHardened = "pod-hardener.io/hardened"
	AnnotationExempted = "pod-hardener.io/exempted"
)

// AnnotationImageDecisions is written by the engine, for audit: the
// image-aware decisions as what@container (what@pod for the pod's),
// sorted, comma-separated. A pass keeps the entries an earlier one wrote,
// so a reinvocation, which finds them done, changes nothing.
const AnnotationImageDecisions = "pod-hardener.io/image-decisions"

const appArmorAnnotationPrefix = "container.apparmor.security.beta.kubernetes.io/"

// requestedProfile is the profile the pod's annotation asks for, "" for
// none; profiles.Config.Select decides whether it counts.
func (p *podView) requestedProfile() string {
	return p.annotation(profiles.AnnotationProfile)
}

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
			switch exemptValue(v) {
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
				if !containerExemptable(c) {
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
	if t == nil || !containerExemptable(control) {
		return fmt.Sprintf("%s: %q", AnnotationExemptControls, control)
	}
	return fmt.Sprintf("%s%s: %q", AnnotationExemptContainerPrefix, t.name(), control)
}

// exemptRequested reports whether the pod asks to be exempt as a whole
// (honoured only where exemptions are authorized).
func (p *Pod) exemptRequested() bool {
	return exemptValue(p.annotation(AnnotationExempt)) == "true"
}

// exemptValue is the value of AnnotationExempt as both readers of it
// compare it: parseExemptions, and exemptRequested before an image lookup.
func exemptValue(v string) string {
	return strings.TrimSpace(strings.ToLower(v))
}

// MaxWritablePaths caps the distinct writable paths a pod's annotations
// name, counted across pod-hardener.io/writable-paths and every
// writable-paths.pod-hardener.io/<container>. Each path is an emptyDir
// volume and a mount in every container it applies to; real pods name a
// handful (/tmp, a cache, a run directory).
const MaxWritablePaths = 64

func (h *hctx) hasContainerPathAnnotations() bool {
	for k := range h.pod.Metadata.annotationsOrNil() {
		if strings.HasPrefix(k, AnnotationWritablePathPrefix) {
			return true
		}
	}
	return false
}

// parsePaths reads one writable-paths annotation into the pod's paths and
// calls use with each valid path's index. An entry is checked and reported
// once however often the annotations repeat it. Bad paths become problems
// and are skipped; the good ones still apply. It stops past
// MaxWritablePaths distinct entries: the pod is rejected then.
func (h *hctx) parsePaths(key string, use func(i int)) {
	v := h.pod.annotation(key)
	w := &h.paths
	if v != "" && w.named == nil {
		w.named = map[string]int{}
	}
	for v != "" && len(w.named) <= MaxWritablePaths {
		var part string
		part, v, _ = strings.Cut(v, ",")
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		i, ok := w.named[part]
		if !ok {
			i = -1
			if err := profiles.ValidateWritablePath(part); err != nil {
				h.problems = append(h.problems, fmt.Sprintf("annotation %s: %v; ignored", key, err))
			} else {
				i = w.add(part)
			}
			w.named[part] = i
		}
		if i >= 0 && use != nil {
			use(i)
		}
	}
}

// checkContainerAnnotations reports per-container writable-path annotations
// that name no container, so a typo is seen rather than silently ignored.
func (h *hctx) checkContainerAnnotations() {
	if h.pod.Metadata == nil {
		return
	}
	names := map[string]bool{}
	for _, c := range h.pod.Spec.allContainers() {
		names[c.Name] = true
	}
	var bad []string
	for k := range h.pod.Metadata.Annotations {
		if c, ok := strings.CutPrefix(k, AnnotationWritablePathPrefix); ok && !names[c] {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	for _, k := range bad {
		h.problems = append(h.problems, fmt.Sprintf("annotation %s names no container of this pod", k))
	}
}

// annotate sets a pod annotation unless it already has that value, so a
// second pass adds nothing. The view follows where the pod has
// annotations; a pod without any gets only the audit annotations, written
// after the controls ran, which nothing reads back.
func (h *hctx) annotate(key, value string) {
	var cur map[string]string
	if h.pod.Metadata != nil {
		cur = h.pod.Metadata.Annotations
	}
	if h.ann == nil {
		h.ann = h.meta.child("annotations", cur != nil)
	}
	if v, ok := cur[key]; ok {
		if v != value {
			h.ann.replace(key, value)
			cur[key] = value
		}
		return
	}
	h.ann.set(key, value)
	if cur != nil {
		cur[key] = value
	}
}

// removeAnnotation removes one of the engine's own audit annotations that
// the pod carries although the engine did not write it, saying why.
func (h *hctx) removeAnnotation(key, why string) {
	if _, ok := h.pod.Metadata.annotationsOrNil()[key]; !ok {
		return
	}
	h.b.remove(h.meta.at() + "/annotations/" + escape(key))
	delete(h.pod.Metadata.Annotations, key)
	if h.in.Report {
		h.warn("report mode: annotation %s would be removed: %s", key, why)
		return
	}
	h.warn("annotation %s removed: %s", key, why)
}

// recordExemptions lists the honoured exemptions for the audit annotation.
func (h *hctx) recordExemptions() {
	for _, c := range ordered() {
		if !h.prof.Enabled(c.name) {
			continue
		}
		if c.level() == levelPod {
			if h.ex.exempt(c.name, nil) {
				h.res.Exempted = append(h.res.Exempted, c.name+"@pod")
				continue
			}
			if !c.perContainer {
				continue
			}
		}
		for _, t := range h.targets {
			if h.ex.exempt(c.name, t) {
				h.res.Exempted = append(h.res.Exempted, c.name+"@"+t.name())
			}
		}
	}
}

// annotateImageDecisions writes the audit annotation: the entries an
// earlier pass wrote, and this pass's.
func (h *hctx) annotateImageDecisions() {
	if len(h.res.ImageDecisions) == 0 || h.in.EphemeralOnly != nil {
		return
	}
	cur := h.pod.annotation(AnnotationImageDecisions)
	entries := make([]string, 0, len(h.res.ImageDecisions)+strings.Count(cur, ",")+1)
	for _, e := range strings.Split(cur, ",") {
		if e = strings.TrimSpace(e); e != "" {
			entries = append(entries, e)
		}
	}
	entries = append(entries, h.res.ImageDecisions...)
	sort.Strings(entries)
	h.annotate(AnnotationImageDecisions, strings.Join(slices.Compact(entries), ","))
}
