package audit

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

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
	// reviewed: the pod carries an annotation the webhook writes.
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
	// requesterAllowed is who allowed an exemption that only a requester
	// listed in exemptions.subjects could have allowed.
	requesterAllowed = "requester at admission (exemptions.subjects; the requester of a stored pod is not kept, so this is not verifiable)"
	mirrorAllowed    = "mirror pod: made by the kubelet from a static manifest, which the webhook does not review"
)

// evaluator reviews pods as the webhook would review them if they were
// created now by an unknown requester. The replicas of a workload differ
// only in fields neither the engine nor the PSS checks read (names, node,
// the service account token volume's random suffix), so each distinct pod
// is reviewed once and its result reused: reviewing, patching and judging
// a pod costs several times reading it.
type evaluator struct {
	cfg   *profiles.Config
	cache map[[sha256.Size]byte]*podResult
	// reviews counts pods actually reviewed (cache misses).
	reviews int
}

// maxCached bounds the cache; when full it starts over.
const maxCached = 4096

func newEvaluator(cfg *profiles.Config) *evaluator {
	return &evaluator{cfg: cfg, cache: map[[sha256.Size]byte]*podResult{}}
}

// evaluate reviews a stored pod. The stored pod has the API server's
// defaults filled in, as the webhook's view of a new pod does. The result
// may be shared with other pods: callers do not change it.
func (e *evaluator) evaluate(f profiles.Facts, p *corev1.Pod) (*podResult, error) {
	q := reviewed(p)
	raw, err := json.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("encoding pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%t\x00", f.Namespace, f.NamespaceKnown)
	// The labels are part of the key: a continuous audit keeps its
	// evaluator while namespaces are relabelled.
	keys := make([]string, 0, len(f.NamespaceLabels))
	for k := range f.NamespaceLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\x00", k, f.NamespaceLabels[k])
	}
	h.Write(raw)
	var key [sha256.Size]byte
	h.Sum(key[:0])
	r, ok := e.cache[key]
	if !ok {
		if r, err = review(e.cfg, f, q, raw); err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		e.reviews++
		if len(e.cache) >= maxCached {
			clear(e.cache)
		}
		e.cache[key] = r
	}
	// The webhook skips mirror pods a node creates; it cannot change them.
	if _, ok := p.Annotations[mutate.AnnotationMirror]; ok && p.Spec.NodeName != "" {
		m := *r
		m.status, m.exempted, m.allowedBy, m.pssAfter = Exempt, "*", mirrorAllowed, r.pssNow
		return &m, nil
	}
	return r, nil
}

// saTokenVolume is the prefix of the projected service account token
// volume the API server adds, with a random suffix, to each pod.
const saTokenVolume = "kube-api-access-"

// reviewed is the pod without what differs between replicas and is read
// by neither the engine nor the PSS checks: name (when generated), uid,
// resource version, timestamps, labels, node, hostname, status, and the
// token volume's random suffix. The pod given is not changed.
func reviewed(p *corev1.Pod) *corev1.Pod {
	q := &corev1.Pod{Spec: p.Spec}
	q.Namespace, q.GenerateName, q.Annotations, q.OwnerReferences = p.Namespace, p.GenerateName, p.Annotations, p.OwnerReferences
	if p.GenerateName == "" {
		q.Name = p.Name
	}
	q.Spec.NodeName, q.Spec.Hostname = "", ""
	for i, v := range p.Spec.Volumes {
		if !strings.HasPrefix(v.Name, saTokenVolume) || v.Projected == nil {
			continue
		}
		q.Spec.Volumes = append([]corev1.Volume(nil), p.Spec.Volumes...)
		q.Spec.Volumes[i].Name = saTokenVolume
		rename := func(cs []corev1.Container) []corev1.Container {
			out := append([]corev1.Container(nil), cs...)
			for j := range out {
				out[j].VolumeMounts = append([]corev1.VolumeMount(nil), out[j].VolumeMounts...)
				for k := range out[j].VolumeMounts {
					if out[j].VolumeMounts[k].Name == v.Name {
						out[j].VolumeMounts[k].Name = saTokenVolume
					}
				}
			}
			return out
		}
		q.Spec.Containers, q.Spec.InitContainers = rename(p.Spec.Containers), rename(p.Spec.InitContainers)
		break
	}
	return q
}

// review is the engine's verdict on one pod, given typed and as JSON.
func review(cfg *profiles.Config, f profiles.Facts, p *corev1.Pod, raw []byte) (*podResult, error) {
	// Report mode changes what the webhook answers, not what hardening
	// would change, which is what the audit reports.
	res, err := mutate.Review(context.Background(), cfg, raw, f, mutate.Options{HardenReportMode: true})
	if err != nil {
		return nil, fmt.Errorf("reviewing: %w", err)
	}
	ann := p.Annotations
	auth := cfg.AuthorizeExemptions(f)
	allowedBy := auth.Why
	recorded, hasRecorded := ann[mutate.AnnotationExempted]
	// Exemptions refused only because no requester is known: if the
	// webhook recorded them at admission and config lists subjects, a
	// listed requester may have been the one who allowed them.
	if res.Refused && hasSubjects(cfg) && hasRecorded && ann[mutate.AnnotationHardened] != "" {
		forced, err := mutate.Review(context.Background(), cfg, raw, f, mutate.Options{ForceExemptions: true, HardenReportMode: true})
		if err != nil {
			return nil, fmt.Errorf("reviewing: %w", err)
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

	hardenedAs := ann[mutate.AnnotationHardened]
	// A wholly exempt pod gets only the exempted annotation.
	r.reviewed = hardenedAs != "" || hasRecorded
	if hardenedAs != "" && hardenedAs != res.Profile {
		r.drift = append(r.drift, driftItem{DriftProfile, fmt.Sprintf("hardened under profile %q; selected today: %q", hardenedAs, res.Profile)})
	}
	if hardenedAs != "" && len(res.Changes) > 0 {
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
			return nil, err
		}
		r.pssAfter = pss.Level(after)
	}
	return r, nil
}

// applyOps applies the engine's operations with an independent RFC 6902
// implementation, so the level after hardening is judged on the pod the
// API server would store.
func applyOps(raw []byte, ops []mutate.Operation) (*corev1.Pod, error) {
	out, err := mutate.Apply(raw, ops)
	if err != nil {
		return nil, fmt.Errorf("the engine's patch (please report this): %w", err)
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
