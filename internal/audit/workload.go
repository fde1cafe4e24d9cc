package audit

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/pod-security-admission/api"

	"github.com/pod-hardener/pod-hardener/mutate"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// Workload sums the reviews of the pods of one workload. Its lists are
// deduplicated and bounded, so a workload of 5,000 replicas costs what
// one of 5 does.
type Workload struct {
	WorkloadRef
	// Status is the worst status among its pods.
	Status       Status         `json:"status"`
	Pods         int            `json:"pods"`
	PodsByStatus map[Status]int `json:"podsByStatus"`
	// Profiles selected today for its pods (usually one).
	Profiles []string `json:"profiles"`
	// PSSNow and PSSAfter are the least strict Pod Security Standards level
	// among its pods, as stored and after hardening.
	PSSNow   api.Level `json:"pssNow"`
	PSSAfter api.Level `json:"pssAfter"`
	// Unreviewed pods carry neither pod-hardener.io/hardened nor
	// pod-hardener.io/exempted (all a wholly exempt pod gets): created
	// before the webhook was registered, while it was down under
	// failurePolicy Ignore, or in a namespace it does not see.
	Unreviewed int               `json:"unreviewedPods"`
	Drifted    int               `json:"driftedPods"`
	Changes    []ChangeSummary   `json:"changes,omitempty"`
	Conflicts  []ConflictSummary `json:"conflicts,omitempty"`
	Rejected   []Counted         `json:"rejected,omitempty"`
	// Ignored: exemption annotations that are not honoured, and why.
	Ignored    []Counted          `json:"exemptionsIgnored,omitempty"`
	Exemptions []ExemptionSummary `json:"exemptions,omitempty"`
	Drift      []DriftSummary     `json:"drift,omitempty"`
	// Examples names a few of its pods.
	Examples []string `json:"examples"`
	// Omitted counts entries left out of the lists above (maxEntries).
	Omitted int `json:"omitted,omitempty"`
}

// ChangeSummary is one field the engine would set.
type ChangeSummary struct {
	Control string `json:"control"`
	Field   string `json:"field"`
	// Where names containers as kind[name], or "pod".
	Where []string `json:"where"`
	Pods  int      `json:"pods"`
	// Text says it as the webhook's warning does.
	Text string `json:"text"`
}

// ConflictSummary is an unsafe value set explicitly.
type ConflictSummary struct {
	Control string          `json:"control"`
	Field   string          `json:"field"`
	Value   string          `json:"value"`
	Where   string          `json:"where"`
	Action  profiles.Action `json:"action"`
	// Hint names the annotation that would exempt it.
	Hint string `json:"hint"`
	Pods int    `json:"pods"`
}

// ExemptionSummary is a set of exemptions in force and who allowed them.
type ExemptionSummary struct {
	// Exempted lists control@container ("*": the whole pod).
	Exempted  string `json:"exempted"`
	AllowedBy string `json:"allowedBy"`
	Pods      int    `json:"pods"`
}

// DriftSummary is a kind of drift and how many pods show it.
type DriftSummary struct {
	Kind    string `json:"kind"`
	Detail  string `json:"detail"`
	Pods    int    `json:"pods"`
	Example string `json:"example"`
}

// Counted is a message and how many pods it applies to.
type Counted struct {
	Text string `json:"text"`
	Pods int    `json:"pods"`
}

// maxEntries bounds each list of a workload, and maxExamples its examples.
const (
	maxEntries  = 32
	maxExamples = 3
)

// aggregator folds pod reviews into workloads as pages arrive.
type aggregator struct {
	cfg        *profiles.Config
	eval       *evaluator
	client     kubernetes.Interface
	namespaces map[string]namespaceInfo
	owners     *owners
	workloads  map[WorkloadRef]*Workload
	pods       int
}

func newAggregator(cfg *profiles.Config, client kubernetes.Interface, nss map[string]namespaceInfo, pageSize int64) *aggregator {
	return &aggregator{cfg: cfg, eval: newEvaluator(cfg), client: client, namespaces: nss, owners: newOwners(client, pageSize), workloads: map[WorkloadRef]*Workload{}}
}

// facts are what the webhook would know about a pod created now in its
// namespace, less the requester.
func (a *aggregator) facts(ctx context.Context, ns string) profiles.Facts {
	info, ok := a.namespaces[ns]
	if !ok {
		// Created after the namespaces were read: read it now, once. If
		// that fails, review as the webhook does when its lookup fails.
		if n, err := a.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
			info = namespaceInfo{labels: n.Labels, known: true}
		}
		a.namespaces[ns] = info
	}
	return profiles.Facts{Namespace: ns, NamespaceLabels: info.labels, NamespaceKnown: info.known}
}

func (a *aggregator) add(ctx context.Context, p *corev1.Pod) error {
	r, err := a.eval.evaluate(a.facts(ctx, p.Namespace), p)
	if err != nil {
		return err
	}
	ref := a.owners.workload(ctx, p)
	w := a.workloads[ref]
	if w == nil {
		w = &Workload{WorkloadRef: ref, Status: Hardened, PodsByStatus: map[Status]int{},
			PSSNow: api.LevelRestricted, PSSAfter: api.LevelRestricted}
		a.workloads[ref] = w
	}
	a.pods++
	w.fold(p, r)
	return nil
}

func (w *Workload) fold(p *corev1.Pod, r *podResult) {
	w.Pods++
	w.PodsByStatus[r.status]++
	if r.status.rank() > w.Status.rank() {
		w.Status = r.status
	}
	if len(w.Examples) < maxExamples {
		w.Examples = append(w.Examples, podName(p))
	}
	if !contains(w.Profiles, r.profile) && len(w.Profiles) < maxEntries {
		w.Profiles = append(w.Profiles, r.profile)
	}
	w.PSSNow = weaker(w.PSSNow, r.pssNow)
	w.PSSAfter = weaker(w.PSSAfter, r.pssAfter)
	if !r.reviewed {
		w.Unreviewed++
	}
	if len(r.drift) > 0 {
		w.Drifted++
	}
	for _, c := range r.changes {
		w.addChange(c)
	}
	for _, c := range r.conflicts {
		i := find(w.Conflicts, func(x ConflictSummary) bool {
			return x.Control == c.Control && x.Field == c.Field && x.Value == c.Value && x.Where == c.Where && x.Action == c.Action
		})
		if i < 0 && w.room(len(w.Conflicts)) {
			w.Conflicts = append(w.Conflicts, ConflictSummary{Control: c.Control, Field: c.Field, Value: c.Value, Where: c.Where, Action: c.Action, Hint: c.Hint})
			i = len(w.Conflicts) - 1
		}
		if i >= 0 {
			w.Conflicts[i].Pods++
		}
	}
	if r.rejected != "" {
		// The message names the pod; per workload, the first one stands
		// for all, counted.
		if len(w.Rejected) == 0 {
			w.Rejected = append(w.Rejected, Counted{Text: r.rejected})
		}
		w.Rejected[0].Pods++
	}
	if r.ignored != "" {
		w.count(&w.Ignored, r.ignored)
	}
	if r.exempted != "" {
		i := find(w.Exemptions, func(x ExemptionSummary) bool { return x.Exempted == r.exempted && x.AllowedBy == r.allowedBy })
		if i < 0 && w.room(len(w.Exemptions)) {
			w.Exemptions = append(w.Exemptions, ExemptionSummary{Exempted: r.exempted, AllowedBy: r.allowedBy})
			i = len(w.Exemptions) - 1
		}
		if i >= 0 {
			w.Exemptions[i].Pods++
		}
	}
	for _, d := range r.drift {
		i := find(w.Drift, func(x DriftSummary) bool { return x.Kind == d.kind && x.Detail == d.detail })
		if i < 0 && w.room(len(w.Drift)) {
			w.Drift = append(w.Drift, DriftSummary{Kind: d.kind, Detail: d.detail, Example: podName(p)})
			i = len(w.Drift) - 1
		}
		if i >= 0 {
			w.Drift[i].Pods++
		}
	}
}

func (w *Workload) addChange(c mutate.Change) {
	i := find(w.Changes, func(x ChangeSummary) bool { return x.Control == c.Control && x.Field == c.Field })
	if i < 0 {
		if !w.room(len(w.Changes)) {
			return
		}
		w.Changes = append(w.Changes, ChangeSummary{Control: c.Control, Field: c.Field})
		i = len(w.Changes) - 1
	}
	s := &w.Changes[i]
	s.Pods++
	for _, where := range c.Where {
		if !contains(s.Where, where) && len(s.Where) < mutate.MaxNamed {
			s.Where = append(s.Where, where)
		}
	}
	s.Text = changeText(mutate.Change{Field: s.Field, Where: s.Where, Count: len(s.Where)})
}

// Finding kinds: what SARIF results and PolicyReport results are made of.
const (
	FindingChange    = "change"
	FindingConflict  = "conflict"
	FindingRejected  = "rejected"
	FindingExemption = "exemption"
	FindingDrift     = "drift"
)

// Finding is one thing to report about a workload, under one rule.
type Finding struct {
	Rule string
	Kind string
	Text string
	Pods int
}

// Findings lists the workload's findings: each field the engine would set,
// each conflict, a rejection that no conflict explains (an exemption the
// namespace does not allow, under onUnauthorized: deny), each exemption in
// force and each kind of drift. A hardened workload has none.
func (w *Workload) Findings() []Finding {
	var out []Finding
	for _, c := range w.Changes {
		out = append(out, Finding{c.Control, FindingChange, "would " + c.Text, c.Pods})
	}
	for _, c := range w.Conflicts {
		out = append(out, Finding{c.Control, FindingConflict,
			fmt.Sprintf("%s: %s=%s (onConflict %s; exempt with %s)", c.Where, c.Field, c.Value, c.Action, c.Hint), c.Pods})
	}
	if len(w.Conflicts) == 0 {
		for _, c := range w.Rejected {
			out = append(out, Finding{RuleExemption, FindingRejected, "would be rejected: " + c.Text, c.Pods})
		}
	}
	for _, e := range w.Exemptions {
		out = append(out, Finding{RuleExemption, FindingExemption, fmt.Sprintf("exempt %s, allowed by %s", e.Exempted, e.AllowedBy), e.Pods})
	}
	for _, d := range w.Drift {
		out = append(out, Finding{RuleDrift, FindingDrift, d.Detail + " (e.g. " + d.Example + ")", d.Pods})
	}
	return out
}

// count adds a pod to the entry with text, making it if there is room.
func (w *Workload) count(list *[]Counted, text string) {
	i := find(*list, func(x Counted) bool { return x.Text == text })
	if i < 0 {
		if !w.room(len(*list)) {
			return
		}
		*list = append(*list, Counted{Text: text})
		i = len(*list) - 1
	}
	(*list)[i].Pods++
}

// room says whether a list of n entries may grow, counting what is left out.
func (w *Workload) room(n int) bool {
	if n < maxEntries {
		return true
	}
	w.Omitted++
	return false
}

func find[T any](xs []T, match func(T) bool) int {
	for i := range xs {
		if match(xs[i]) {
			return i
		}
	}
	return -1
}

func contains(xs []string, s string) bool {
	return find(xs, func(x string) bool { return x == s }) >= 0
}

// weaker returns the less strict of two levels.
func weaker(a, b api.Level) api.Level {
	order := func(l api.Level) int {
		switch l {
		case api.LevelRestricted:
			return 2
		case api.LevelBaseline:
			return 1
		}
		return 0
	}
	if order(b) < order(a) {
		return b
	}
	return a
}

// report turns the folded workloads into the report, namespaces first.
func (a *aggregator) report() *Report {
	r := &Report{
		Requester: requesterNote,
		Totals:    Totals{Pods: a.pods, Workloads: zeroCounts(), PodsByStatus: zeroCounts()},
		Workloads: make([]*Workload, 0, len(a.workloads)),
	}
	byNS := map[string]*NamespaceSummary{}
	for _, w := range a.workloads {
		r.Workloads = append(r.Workloads, w)
		ns := byNS[w.Namespace]
		if ns == nil {
			ns = a.namespaceSummary(w.Namespace)
			byNS[w.Namespace] = ns
		}
		ns.Pods += w.Pods
		ns.Workloads[w.Status]++
		ns.Drifted += w.Drifted
		ns.Unreviewed += w.Unreviewed
		r.Totals.Workloads[w.Status]++
		r.Totals.Drifted += w.Drifted
		r.Totals.Unreviewed += w.Unreviewed
		for s, n := range w.PodsByStatus {
			ns.PodsByStatus[s] += n
			r.Totals.PodsByStatus[s] += n
		}
	}
	sortWorkloads(r.Workloads)
	for _, ns := range byNS {
		r.Namespaces = append(r.Namespaces, *ns)
	}
	sort.Slice(r.Namespaces, func(i, j int) bool { return r.Namespaces[i].Name < r.Namespaces[j].Name })
	return r
}

func (a *aggregator) namespaceSummary(name string) *NamespaceSummary {
	f := profiles.Facts{Namespace: name}
	if info, ok := a.namespaces[name]; ok {
		f.NamespaceLabels, f.NamespaceKnown = info.labels, info.known
	}
	auth := a.cfg.AuthorizeExemptions(f)
	sel := a.cfg.Select(f, "", auth)
	ex := "not allowed"
	if auth.Allowed {
		ex = fmt.Sprintf("allowed: %s", auth.Why)
	}
	return &NamespaceSummary{Name: name, Profile: sel.Profile.Name, Source: sel.Source, Exemptions: ex,
		Workloads: zeroCounts(), PodsByStatus: zeroCounts()}
}

func zeroCounts() map[Status]int {
	m := make(map[Status]int, len(Statuses))
	for _, s := range Statuses {
		m[s] = 0
	}
	return m
}
