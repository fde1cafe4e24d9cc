// Package mutate is the hardening engine: pure functions from a raw pod,
// a profile and facts about the request to RFC 6902 operations, warnings
// and conflicts. It imports neither the webhook library nor the CLI, so the
// webhook and `pod-hardener harden` run exactly the same code.
package mutate

import (
	"context"
	"fmt"
	"strings"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// Input is everything the engine needs besides the pod.
type Input struct {
	Profile *profiles.Profile
	// Auth says whether the pod's exemption annotations count; decided by
	// the caller from config, namespace and requester (never from the pod).
	Auth profiles.Authorization
	// OnUnauthorized: warn (ignore the exemption) or deny (reject the pod).
	OnUnauthorized profiles.Action
	// EphemeralOnly, when non-nil, hardens only these ephemeral containers
	// and only at container level: an UPDATE of pods/ephemeralcontainers,
	// where every other field of the pod is immutable.
	EphemeralOnly map[string]bool
	// Prefix is the JSON pointer of the pod inside the document that the
	// operations apply to: "" for a Pod, "/spec/template" for a Deployment.
	Prefix string
	// Report computes everything hardening would do, then changes nothing
	// and rejects nothing: the profile's mode is report.
	Report bool
	// Images are the facts of the images the pod's containers run; nil
	// when no lookup was made.
	Images ImageSet
}

// Change is one field the engine set, and where: grouped by field, since
// warnings name at most MaxNamed places per field and a pod may have
// hundreds of containers.
type Change struct {
	Control string
	Field   string
	// Count is how many places got it.
	Count int
	// Where names the first MaxNamed: a container as kind[name], or "pod".
	Where []string
}

// MaxNamed is how many places a warning names before "and N more": the
// API server truncates long warnings.
const MaxNamed = 10

// Conflict is an unsafe value the user set explicitly.
type Conflict struct {
	Control string
	Where   string
	Field   string
	Value   string
	Action  profiles.Action
	// Hint names the annotation that would exempt it.
	Hint string
	// Note explains an enforce that could not be carried out.
	Note string
}

// Result is what hardening a pod produced.
type Result struct {
	Profile    string
	Operations []Operation
	Warnings   []string
	Changes    []Change
	Conflicts  []Conflict
	// Exempted lists honoured exemptions as control@container (control@pod
	// for pod-level controls, "*" for a wholly exempt pod).
	Exempted []string
	// ImageDecisions are the image-aware decisions of this pass, as
	// what@container (what@pod), the entries of AnnotationImageDecisions:
	// for the audit annotation of an answer in report mode, whose pod
	// carries none.
	ImageDecisions []string
	// Refused is true when exemption annotations were present but not
	// authorized.
	Refused bool
	// Denied is true when the pod must be rejected; Message says why.
	Denied  bool
	Message string
	// Report: report mode was in force, so Operations is empty, Denied
	// false, and the warnings say what hardening would do; WouldDeny says
	// hardening would have rejected the pod (Message says why).
	Report    bool
	WouldDeny bool
	// Mode is the mode selected for the pod and ModeSource what chose it
	// (set by Review; with Options.HardenReportMode it may be report while
	// Report is false).
	Mode       profiles.RolloutMode
	ModeSource string
	// reportOps are the operations hardening would make, for judging the
	// pod they would produce; never handed out as a patch.
	reportOps []Operation
	// patchSize bounds the encoded size of Operations from above.
	patchSize int
	// MayFail: the hardened pod may still fail its profile's Pod Security
	// Standards level (a control off, exempted or with a conflict kept);
	// Residual then judges it. Failures lists the checks it fails.
	MayFail  bool
	Failures []string

	prof    *profiles.Profile
	level   string
	prefix  string
	windows bool
}

// hctx is the state of one hardening pass.
type hctx struct {
	in      Input
	pod     *podView
	prof    *profiles.Profile
	b       *ops
	meta    *obj
	ann     *obj // metadata.annotations, made once so two new annotations share one add
	spec    *obj
	podSC   *obj
	targets []*target
	ex      *exemptions
	res     *Result
	// windows: spec.os.name is windows, the only thing that makes a pod
	// Windows for the API server; anything else runs on Linux nodes.
	windows bool
	// hostProcess: a Windows HostProcess pod, which runs as a node account.
	hostProcess bool
	// paths are the pod's writable paths and the volumes behind them.
	paths writablePaths
	// volumesInInput: spec.volumes is present and not null in the input.
	volumesInInput bool
	// volumeIndex finds a volume by name in a pod with many of them.
	volumeIndex map[string]int
	problems    []string
	// imageDenied: containers whose root image rootImages: deny refuses.
	imageDenied []string
}

// MaxPatchBytes caps the patch for one pod. Real pods need a few KiB; 300
// containers each mounting 64 writable paths need about 1 MiB. The engine
// counts an upper bound of the encoded patch as it builds it and rejects
// the pod once that passes the cap, so no pod makes it build more.
const MaxPatchBytes = 4 << 20

// hardenRaw runs the profile's controls over the raw pod. It stops with the
// context's error when ctx is done (the API server gave up on the request).
func hardenRaw(ctx context.Context, raw []byte, in Input) (*Result, error) {
	pod, err := decodePod(raw)
	if err != nil {
		return nil, err
	}
	return hardenPod(ctx, &pod.podView, in)
}

func hardenPod(ctx context.Context, pod *podView, in Input) (*Result, error) {
	res, err := hardenPass(ctx, pod, in)
	if err != nil || !in.Report {
		return res, err
	}
	// Report mode never patches and never rejects: whatever a caller does
	// with Operations and Denied, the pod is admitted as it came.
	res.Report = true
	res.reportOps, res.Operations, res.patchSize = res.Operations, nil, 0
	if res.Denied {
		res.Denied, res.WouldDeny = false, true
		res.Warnings = append(res.Warnings, "report mode: hardening would refuse this pod: "+res.Message)
	}
	return res, nil
}

func hardenPass(ctx context.Context, pod *podView, in Input) (*Result, error) {
	if in.Profile == nil {
		return nil, fmt.Errorf("no profile given")
	}
	n := len(pod.Spec.Containers) + len(pod.Spec.InitContainers) + len(pod.Spec.EphemeralContainers)
	// Sized for the usual case, so neither list is grown: a container
	// gets a securityContext and a volume mount, and about four changes.
	b := &ops{list: make([]Operation, 0, 8+2*n)}
	root := newObj(b, in.Prefix, true, nil, "")
	h := &hctx{
		in:      in,
		pod:     pod,
		prof:    in.Profile,
		b:       b,
		meta:    root.child("metadata", pod.Metadata != nil),
		spec:    root.child("spec", true),
		ex:      parseExemptions(pod),
		res:     &Result{Profile: in.Profile.Name, Changes: make([]Change, 0, 8)},
		windows: pod.windows(),

		volumesInInput: pod.Spec.Volumes != nil,
	}
	// hostProcess means something only on Windows: a Linux node ignores it,
	// so on any other pod it must not switch off a single control.
	hostProcess := pod.hostProcess()
	h.hostProcess = h.windows && hostProcess
	if !h.windows && hostProcess {
		h.problems = append(h.problems, "windowsOptions.hostProcess=true on a pod without spec.os.name: windows: "+
			"hardened as a Linux pod, where hostProcess has no effect (PSS baseline forbids it)")
	}
	h.podSC = h.spec.child("securityContext", pod.Spec.SecurityContext != nil)
	h.targets = targets(pod.Spec, h.spec, in.EphemeralOnly)
	h.problems = append(h.problems, h.ex.problems...)

	if h.ex.requested && !in.Auth.Allowed {
		h.ex.clear()
		h.res.Refused = true
		if in.OnUnauthorized == profiles.ActionDeny {
			h.res.Denied = true
			h.res.Message = fmt.Sprintf("%s: exemption annotations are not allowed here: %s", pod.describe(), in.Auth.Why)
			return h.res, nil
		}
		h.warn("exemption annotations ignored: %s", in.Auth.Why)
	}
	if h.ex.wholePod {
		h.res.Exempted = []string{"*"}
		if in.EphemeralOnly == nil {
			h.annotate(AnnotationExempted, "*")
			// The audit annotations are ours: a user-written "hardened" on a
			// pod that was not hardened would mislead an audit.
			h.removeAnnotation(AnnotationHardened, "the pod is exempt, not hardened")
		}
		h.warn("%s is exempt (%s=true): not hardened", pod.describe(), AnnotationExempt)
		return h.finish(), nil
	}
	if in.EphemeralOnly == nil {
		h.checkContainerAnnotations()
	}
	if !h.collectWritablePaths() {
		return h.reject("its annotations %s and %s<container> name more than %d writable paths, the most a pod may have",
			AnnotationWritablePaths, AnnotationWritablePathPrefix, MaxWritablePaths), nil
	}
	done := ctx.Done()
	for _, c := range ordered() {
		if !h.prof.Enabled(c.name) || (c.linuxOnly && h.windows) {
			continue
		}
		if c.pod != nil && !h.ex.exempt(c.name, nil) {
			if r, err := h.interrupted(ctx, done); r != nil || err != nil {
				return r, err
			}
			c.pod(h)
		}
		if c.container != nil {
			for _, t := range h.targets {
				if r, err := h.interrupted(ctx, done); r != nil || err != nil {
					return r, err
				}
				if !h.ex.exempt(c.name, t) {
					c.container(h, t)
				}
			}
		}
	}
	h.imageDecisions()
	h.recordExemptions()
	if in.EphemeralOnly == nil {
		h.annotateImageDecisions()
		h.annotate(AnnotationHardened, in.Profile.Name)
		if len(h.res.Exempted) > 0 {
			h.annotate(AnnotationExempted, strings.Join(h.res.Exempted, ","))
		} else {
			// A user-written one claiming an exemption that was not
			// honoured would mislead an audit.
			h.removeAnnotation(AnnotationExempted, "no exemption was honoured")
		}
	}
	if r, err := h.interrupted(ctx, done); r != nil || err != nil {
		return r, err
	}
	return h.finish(), nil
}

// interrupted stops a pass whose request is gone (the API server gave up:
// an error) or whose patch has outgrown MaxPatchBytes (a rejection). It is
// checked before each control and container: a non-blocking receive, cheap
// next to the work, and frequent enough that neither runs on for long.
func (h *hctx) interrupted(ctx context.Context, done <-chan struct{}) (*Result, error) {
	select {
	case <-done:
		return nil, fmt.Errorf("hardening %s stopped: %w", h.pod.describe(), context.Cause(ctx))
	default:
	}
	if h.b.size > MaxPatchBytes {
		return h.reject("hardening it would take a patch over %d MiB: too many containers, or containers times writable paths", MaxPatchBytes>>20), nil
	}
	return nil, nil
}

// reject denies the pod for a reason of its own shape, before or instead
// of hardening it: nothing is changed.
func (h *hctx) reject(format string, args ...any) *Result {
	r := h.res
	r.Denied = true
	r.Message = h.pod.describe() + " rejected: " + fmt.Sprintf(format, args...)
	r.Operations = nil
	r.Changes = nil
	r.Conflicts = nil
	r.Warnings = append(r.Warnings, h.problems...)
	return r
}

func (h *hctx) warn(format string, args ...any) {
	h.res.Warnings = append(h.res.Warnings, fmt.Sprintf(format, args...))
}

// changed records a field the engine set and returns its entry's index. A
// linear scan over the few fields changed so far beats a map.
func (h *hctx) changed(control string, t *target, field string) int {
	i := 0
	for i < len(h.res.Changes) && (h.res.Changes[i].Field != field || h.res.Changes[i].Control != control) {
		i++
	}
	if i == len(h.res.Changes) {
		h.res.Changes = append(h.res.Changes, Change{Control: control, Field: field,
			Where: make([]string, 0, min(MaxNamed, len(h.targets)+1))})
	}
	c := &h.res.Changes[i]
	c.Count++
	if len(c.Where) < MaxNamed {
		where := "pod"
		if t != nil {
			where = t.where()
		}
		c.Where = append(c.Where, where)
	}
	return i
}

// changedAt is changed for a field whose entry the caller remembers in
// *at (-1 before the first): the writable paths of a pod, up to
// MaxWritablePaths of them, each set in every container.
func (h *hctx) changedAt(at *int, control string, t *target, field string) {
	if *at < 0 {
		*at = h.changed(control, t, field)
		return
	}
	c := &h.res.Changes[*at]
	c.Count++
	if len(c.Where) < MaxNamed {
		c.Where = append(c.Where, t.where())
	}
}

// conflict records an explicit unsafe value; what to do with it is the
// profile's action for the control, which the answer tells.
func (h *hctx) conflict(control string, t *target, field, value string) recorded {
	where := "pod"
	if t != nil {
		where = t.where()
	}
	h.res.Conflicts = append(h.res.Conflicts, Conflict{
		Control: control, Where: where, Field: field, Value: value, Action: h.prof.ConflictAction(control),
		Hint: exemptionHint(control, t),
	})
	return recorded{h, len(h.res.Conflicts) - 1}
}

// recorded is a conflict of this pass, addressed by its index, so that
// what a control decides about it later changes that conflict and no other.
type recorded struct {
	h *hctx
	i int
}

// enforce says the profile replaces the value with a safe one.
func (c recorded) enforce() bool { return c.h.res.Conflicts[c.i].Action == profiles.ActionEnforce }

// cannotEnforce downgrades the conflict to warn, with the reason: the
// value is kept.
func (c recorded) cannotEnforce(note string) {
	x := &c.h.res.Conflicts[c.i]
	x.Action = profiles.ActionWarn
	x.Note = note
}

// unfixable records a conflict that has no safe value: enforce keeps it
// and warns with the note, as warn does; deny still refuses the pod.
func (h *hctx) unfixable(control string, t *target, field, value, note string) {
	if c := h.conflict(control, t, field, value); c.enforce() {
		c.cannotEnforce(note)
	}
}

// finish turns changes, conflicts and problems into messages.
func (h *hctx) finish() *Result {
	r := h.res
	r.Operations = h.b.list
	r.patchSize = h.b.size
	var denied []string
	for _, c := range r.Conflicts {
		switch c.Action {
		case profiles.ActionDeny:
			denied = append(denied, fmt.Sprintf("%s: %s=%s is not allowed by profile %q (control %s); to exempt, annotate %s in a namespace that allows exemptions",
				c.Where, c.Field, c.Value, r.Profile, c.Control, c.Hint))
		case profiles.ActionEnforce:
			verb := "replaced"
			if h.in.Report {
				verb = "would be replaced"
			}
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: %s=%s %s by a safe value (profile %q, control %s)", c.Where, c.Field, c.Value, verb, r.Profile, c.Control))
		default:
			msg := fmt.Sprintf("%s: %s=%s kept but unsafe (profile %q, control %s; exempt with %s)", c.Where, c.Field, c.Value, r.Profile, c.Control, c.Hint)
			if c.Note != "" {
				msg += "; " + c.Note
			}
			r.Warnings = append(r.Warnings, msg)
		}
	}
	denied = append(denied, h.imageDenied...)
	if len(denied) > 0 {
		r.Denied = true
		r.Message = h.pod.describe() + " rejected: " + strings.Join(denied, "; ")
		r.Operations = nil
	}
	r.Warnings = append(r.Warnings, h.problems...)
	r.Warnings = append(r.Warnings, summarize(r.Profile, r.Changes, h.in.Report)...)
	r.MayFail, r.prof, r.level, r.prefix, r.windows = h.mayFail(), h.prof, h.prof.Level, h.in.Prefix, h.windows
	return r
}

// summarize turns changes into one short warning per field, naming at
// most MaxNamed places. In report mode each says what would be set.
func summarize(profile string, changes []Change, report bool) []string {
	if len(changes) == 0 {
		return nil
	}
	head, verb := "hardened (profile ", "): set "
	if report {
		head, verb = "report mode (profile ", "): would set "
	}
	out := make([]string, 0, len(changes))
	for _, c := range changes {
		size := 64 + len(profile) + len(c.Field)
		for _, w := range c.Where {
			size += len(w) + 2
		}
		var b strings.Builder
		b.Grow(size)
		b.WriteString(head)
		b.WriteString(profile)
		b.WriteString(verb)
		b.WriteString(c.Field)
		b.WriteString(" on ")
		b.WriteString(strings.Join(c.Where, ", "))
		if c.Count > len(c.Where) {
			b.WriteString(" and ")
			b.WriteString(itoa(c.Count - len(c.Where)))
			b.WriteString(" more")
		}
		out = append(out, b.String())
	}
	return out
}
