package audit

import (
	"encoding/json"
	"fmt"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"

	"github.com/pod-hardener/pod-hardener/internal/pss"
	"github.com/pod-hardener/pod-hardener/mutate"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// podResult is one pod's review, before it is folded into its workload.
type podResult struct {
	status    Status
	profile   string
	changes   []mutate.Change
	conflicts []mutate.Conflict
	// rejected: the webhook would reject this pod today, and why.
	rejected string
	// ignored: the pod asks for exemptions that are not honoured, and why.
	ignored string
	// exempted lists the exemptions honoured today ("*": the whole pod).
	exempted  string
	allowedBy string
	drift     []driftItem
	// reviewed: the pod carries the webhook's hardened annotation.
	reviewed         bool
	pssNow, pssAfter api.Level
}

type driftItem struct {
	kind, detail string
}

// Drift kinds.
const (
	// DriftProfile: hardened under a profile other than the one selected now.
	DriftProfile = "profile"
	// DriftStillChanges: annotated hardened, yet the engine would change it.
	DriftStillChanges = "still-changes"
	// DriftExemptions: the exemptions recorded at admission differ from
	// those honoured today.
	DriftExemptions = "exemptions"
)

const (
	mirrorAnnotation = "kubernetes.io/config.mirror"
	// requesterAllowed is who allowed an exemption that only a requester
	// listed in exemptions.subjects could have allowed.
	requesterAllowed = "requester at admission (exemptions.subjects; the requester of a stored pod is not kept, so this is not verifiable)"
	mirrorAllowed    = "mirror pod: made by the kubelet from a static manifest, which the webhook does not review"
)

// evaluate reviews a stored pod as the webhook would review it if it were
// created now by an unknown requester. The stored pod has the API
// server's defaults filled in, as the webhook's view of a new pod does.
func evaluate(cfg *profiles.Config, f profiles.Facts, p *corev1.Pod) (*podResult, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	res, err := mutate.Review(cfg, raw, f, mutate.Options{})
	if err != nil {
		return nil, fmt.Errorf("reviewing pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	auth := cfg.AuthorizeExemptions(f)
	allowedBy := auth.Why
	recorded, hasRecorded := p.Annotations[mutate.AnnotationExempted]
	// Exemptions refused only because no requester is known: if the
	// webhook recorded them at admission and config lists subjects, a
	// listed requester may have been the one who allowed them.
	if res.Refused && hasSubjects(cfg) && hasRecorded && p.Annotations[mutate.AnnotationHardened] != "" {
		forced, err := mutate.Review(cfg, raw, f, mutate.Options{ForceExemptions: true})
		if err != nil {
			return nil, fmt.Errorf("reviewing pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		res, allowedBy = forced, requesterAllowed
	}
	r := &podResult{
		profile:   res.Profile,
		changes:   res.Changes,
		conflicts: res.Conflicts,
		exempted:  strings.Join(res.Exempted, ","),
	}
	if r.exempted != "" {
		r.allowedBy = allowedBy
	}
	if res.Denied {
		r.rejected = res.Message
	}
	if res.Refused {
		r.ignored = auth.Why
	}
	switch {
	case len(res.Conflicts) > 0 || res.Denied:
		r.status = Conflict
	case len(res.Changes) > 0:
		r.status = WouldChange
	case r.exempted != "":
		r.status = Exempt
	default:
		r.status = Hardened
	}
	// The webhook skips mirror pods a node creates; it cannot change them.
	if _, ok := p.Annotations[mirrorAnnotation]; ok && p.Spec.NodeName != "" {
		r.status, r.exempted, r.allowedBy = Exempt, "*", mirrorAllowed
	}

	hardenedAs := p.Annotations[mutate.AnnotationHardened]
	r.reviewed = hardenedAs != ""
	if r.reviewed && hardenedAs != res.Profile {
		r.drift = append(r.drift, driftItem{DriftProfile, fmt.Sprintf("hardened under profile %q; selected today: %q", hardenedAs, res.Profile)})
	}
	if r.reviewed && len(res.Changes) > 0 {
		r.drift = append(r.drift, driftItem{DriftStillChanges, "annotated hardened, yet the engine would still set fields"})
	}
	if hasRecorded && recorded != r.exempted {
		today := r.exempted
		if today == "" {
			today = "none (" + auth.Why + ")"
		}
		r.drift = append(r.drift, driftItem{DriftExemptions, fmt.Sprintf("exempted at admission: %s; honoured today: %s", recorded, today)})
	}

	r.pssNow = pss.Level(p)
	r.pssAfter = r.pssNow
	if len(res.Operations) > 0 && !res.Denied && r.status != Exempt {
		after, err := applyOps(raw, res.Operations)
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		r.pssAfter = pss.Level(after)
	}
	return r, nil
}

// applyOps applies the engine's operations with an independent RFC 6902
// implementation, so the level after hardening is judged on the pod the
// API server would store.
func applyOps(raw []byte, ops []mutate.Operation) (*corev1.Pod, error) {
	pb, err := mutate.Patch(ops)
	if err != nil {
		return nil, fmt.Errorf("encoding patch: %w", err)
	}
	patch, err := jsonpatch.DecodePatch(pb)
	if err != nil {
		return nil, fmt.Errorf("decoding the engine's patch: %w", err)
	}
	out, err := patch.Apply(raw)
	if err != nil {
		return nil, fmt.Errorf("applying the engine's patch (please report this): %w", err)
	}
	return pss.DecodePod(out)
}

func hasSubjects(cfg *profiles.Config) bool {
	return len(cfg.Exemptions.Subjects.Users)+len(cfg.Exemptions.Subjects.Groups) > 0
}

// changeText says a change as the webhook's warning does.
func changeText(c mutate.Change) string {
	s := "set " + c.Field + " on " + strings.Join(c.Where, ", ")
	if c.Count > len(c.Where) {
		s += fmt.Sprintf(" and %d more", c.Count-len(c.Where))
	}
	return s
}
