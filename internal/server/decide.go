// Package server is the admission webhook: the decision for one admission
// request (this file, free of any webhook library), reading reviews
// (review.go), the HTTP handler feeding kubewebhook's latency recorder
// (webhook.go, the only file that imports kubewebhook), TLS with reloading
// certificates, config reload, the namespace informer and metrics.
package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/pod-hardener/pod-hardener/mutate"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// Request is what the decision needs from an AdmissionReview.
type Request struct {
	UID         string
	Operation   string // CREATE, UPDATE, DELETE, CONNECT
	Group       string
	Resource    string
	SubResource string
	Namespace   string
	Name        string
	// Object and OldObject are the objects as the review holds them. The
	// handler's are part of its pooled body: valid only while Decide runs.
	Object    []byte
	OldObject []byte
	DryRun    bool
	User      string
	Groups    []string
}

// Decision is the answer to one request.
type Decision struct {
	Allowed  bool
	Patch    []byte // nil when nothing changes
	Warnings []string
	// Message explains a rejection.
	Message string
	// AuditAnnotations go into the API server's audit log.
	AuditAnnotations map[string]string
	// Outcome labels the reviews metric: hardened, unchanged, denied,
	// skipped, and in report mode would-harden or would-deny.
	Outcome string
}

// NamespaceLookup returns a namespace's labels. An error means the labels
// could not be read, and the decision then fails safe.
type NamespaceLookup interface {
	Labels(ctx context.Context, namespace string) (map[string]string, error)
}

// Decider holds what decisions read; the config is swapped atomically on
// reload, so a request sees one config from start to end.
type Decider struct {
	config     atomic.Pointer[profiles.Config]
	namespaces NamespaceLookup
	metrics    *Metrics
	// images, when set, looks up the facts of the images a pod runs
	// before it is hardened.
	images *ImageLookup
}

// NewDecider builds a Decider; metrics may be nil (tests).
func NewDecider(cfg *profiles.Config, ns NamespaceLookup, m *Metrics) *Decider {
	d := &Decider{namespaces: ns, metrics: m}
	d.config.Store(cfg)
	return d
}

// SetImageLookup turns image-aware hardening on; call it before serving.
func (d *Decider) SetImageLookup(l *ImageLookup) { d.images = l }

// SetConfig swaps the config in use.
func (d *Decider) SetConfig(c *profiles.Config) { d.config.Store(c) }

// Config returns the config in use.
func (d *Decider) Config() *profiles.Config { return d.config.Load() }

const warningPrefix = "pod-hardener: "

// Decide answers one admission request. Pods are hardened on CREATE, and
// new ephemeral containers on UPDATE of pods/ephemeralcontainers; anything
// else passes untouched. Dry-run requests are hardened like real ones, so
// `kubectl apply --dry-run=server` shows what a real apply stores.
func (d *Decider) Decide(ctx context.Context, r *Request) (*Decision, error) {
	if r.Group != "" || r.Resource != "pods" {
		return skipped("not a pod"), nil
	}
	var opts mutate.Options
	switch {
	case r.hardensWholePod():
	case r.Operation == "UPDATE" && r.SubResource == "ephemeralcontainers":
		added, err := newEphemeralContainers(r.OldObject, r.Object)
		if err != nil {
			return nil, err
		}
		if len(added) == 0 {
			return skipped("no new ephemeral container"), nil
		}
		opts.EphemeralOnly = added
	default:
		return skipped("operation not hardened"), nil
	}
	if len(r.Object) == 0 {
		return nil, fmt.Errorf("request %s has no object", r.UID)
	}
	// Mirror pods are made by the kubelet from static manifests and cannot
	// be changed; only a node may create them. The annotation alone, which
	// anyone can write, never skips hardening.
	if r.Operation == "CREATE" && strings.HasPrefix(r.User, "system:node:") && hasMirrorAnnotation(r.Object) {
		return skipped("mirror pod created by a node"), nil
	}

	cfg := d.config.Load()
	facts := profiles.Facts{Namespace: r.Namespace, User: r.User, Groups: r.Groups, NamespaceKnown: true}
	var lookupWarning string
	if d.namespaces != nil {
		labels, err := d.namespaces.Labels(ctx, r.Namespace)
		if err != nil {
			facts.NamespaceKnown = false
			lookupWarning = fmt.Sprintf("namespace %q could not be read (%v): hardened with the default profile, no exemption honoured", r.Namespace, err)
			d.metrics.namespaceFailure()
		}
		facts.NamespaceLabels = labels
	}
	if d.images != nil {
		opts.LookupImages = d.images.hook(r, opts.EphemeralOnly)
	}
	res, err := mutate.Review(ctx, cfg, r.Object, facts, opts)
	if err != nil {
		return nil, fmt.Errorf("hardening %s: %w", describe(r), err)
	}
	dec := &Decision{AuditAnnotations: map[string]string{}}
	if lookupWarning != "" {
		res.Warnings = append([]string{lookupWarning}, res.Warnings...)
		dec.AuditAnnotations["namespace-lookup"] = "failed"
	}
	dec.Warnings = make([]string, 0, len(res.Warnings))
	for _, w := range res.Warnings {
		dec.Warnings = append(dec.Warnings, warningPrefix+w)
	}
	dec.AuditAnnotations["profile"] = res.Profile
	if len(res.Exempted) > 0 {
		dec.AuditAnnotations["exempted"] = strings.Join(res.Exempted, ",")
	}
	if res.Refused {
		dec.AuditAnnotations["exemptions-refused"] = "true"
	}
	if len(res.Failures) > 0 {
		dec.AuditAnnotations[res.Level()+"-failures"] = strings.Join(res.Failures, ",")
	}
	if len(res.ImageDecisions) > 0 {
		// Also in report mode and on a denial, where the pod carries no
		// annotation: the audit log is then the only record.
		dec.AuditAnnotations["image-decisions"] = strings.Join(res.ImageDecisions, ",")
	}
	if len(res.Conflicts) > 0 {
		var cs []string
		for _, c := range res.Conflicts {
			cs = append(cs, fmt.Sprintf("%s@%s:%s", c.Control, c.Where, c.Action))
		}
		dec.AuditAnnotations["conflicts"] = strings.Join(cs, ",")
	}
	d.metrics.observe(res)
	if res.Report {
		return reportDecision(dec, res), nil
	}
	if res.Denied {
		dec.Message = res.Message
		dec.Outcome = "denied"
		return dec, nil
	}
	dec.Allowed = true
	dec.Outcome = "unchanged"
	if len(res.Operations) > 0 {
		p, err := mutate.Patch(res.Operations)
		if err != nil {
			return nil, fmt.Errorf("encoding patch: %w", err)
		}
		dec.Patch = p
		dec.Outcome = "hardened"
	}
	return dec, nil
}

// reportDecision answers a pod reviewed in report mode: allowed, with no
// patch whatever the result holds, and audit annotations saying what
// hardening would have done.
func reportDecision(dec *Decision, res *mutate.Result) *Decision {
	dec.Allowed = true
	dec.Patch = nil
	dec.AuditAnnotations["mode"] = string(profiles.RolloutReport)
	dec.Outcome = "unchanged"
	if len(res.Changes) > 0 {
		// Control names, not fields: a closed set, so the annotation stays
		// short whatever the pod holds; the warnings name the fields.
		var controls []string
		for _, c := range res.Changes {
			if !slices.Contains(controls, c.Control) {
				controls = append(controls, c.Control)
			}
		}
		dec.AuditAnnotations["would-change"] = strings.Join(controls, ",")
		dec.Outcome = "would-harden"
	}
	if res.WouldDeny {
		dec.AuditAnnotations["would-deny"] = "true"
		dec.Outcome = "would-deny"
	}
	return dec
}

func skipped(why string) *Decision {
	return &Decision{Allowed: true, Outcome: "skipped", AuditAnnotations: map[string]string{"skipped": why}}
}

func describe(r *Request) string {
	if r.Name != "" {
		return fmt.Sprintf("pod %s/%s", r.Namespace, r.Name)
	}
	return fmt.Sprintf("a pod in namespace %s", r.Namespace)
}

// hardensWholePod: a pod CREATE, the request whose whole pod is hardened.
func (r *Request) hardensWholePod() bool {
	return r.Group == "" && r.Resource == "pods" && r.Operation == "CREATE" && r.SubResource == ""
}

func hasMirrorAnnotation(raw []byte) bool {
	var p struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if mutate.DecodeStrict(raw, &p) != nil {
		return false
	}
	_, ok := p.Metadata.Annotations[mutate.AnnotationMirror]
	return ok
}

// newEphemeralContainers returns the names of ephemeral containers in the
// new pod that the old one lacks: only they may be hardened, since every
// other field of a running pod is immutable.
func newEphemeralContainers(oldRaw, newRaw []byte) (map[string]bool, error) {
	type pod struct {
		Spec struct {
			EphemeralContainers []struct {
				Name string `json:"name"`
			} `json:"ephemeralContainers"`
		} `json:"spec"`
	}
	var o, n pod
	if len(oldRaw) > 0 {
		if err := mutate.DecodeStrict(oldRaw, &o); err != nil {
			return nil, fmt.Errorf("decoding old pod: %w", err)
		}
	}
	if err := mutate.DecodeStrict(newRaw, &n); err != nil {
		return nil, fmt.Errorf("decoding pod: %w", err)
	}
	had := map[string]bool{}
	for _, c := range o.Spec.EphemeralContainers {
		had[c.Name] = true
	}
	added := map[string]bool{}
	for _, c := range n.Spec.EphemeralContainers {
		if !had[c.Name] {
			added[c.Name] = true
		}
	}
	return added, nil
}
