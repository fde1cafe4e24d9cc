// Package audit reports what the webhook would do to the pods already
// running: each pod is reviewed by the engine exactly as the webhook would
// review it today (mutate.Review, with facts from its namespace), and the
// results are summed per owning workload and per namespace.
//
// Pods are read a page at a time and folded into per-workload summaries as
// they arrive; no page outlives its fold, so memory grows with the number
// of workloads, not pods.
//
// The requester of a stored pod is unknown: the API server does not keep
// it. Pods are reviewed with no user or group, so exemptions are judged by
// config and namespace only; an exemption that only a listed requester
// (exemptions.subjects) could have allowed is reported as such, not as a
// pod that would be hardened.
package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// Status is what the webhook would do with a pod, or a workload's worst pod.
type Status string

// Statuses, from best to worst.
const (
	// Hardened: the engine would change no field.
	Hardened Status = "hardened"
	// Exempt: nothing would change because exemptions are in force.
	Exempt Status = "exempt"
	// WouldChange: the engine would set fields.
	WouldChange Status = "would-change"
	// Conflict: the pod sets an unsafe value explicitly; the profile keeps
	// it (warn), replaces it (enforce) or would reject the pod (deny).
	Conflict Status = "conflict"
)

// Statuses lists every status, best first.
var Statuses = []Status{Hardened, Exempt, WouldChange, Conflict}

func (s Status) rank() int {
	for i, x := range Statuses {
		if x == s {
			return i
		}
	}
	return -1
}

// ParseStatus reads a status name.
func ParseStatus(s string) (Status, bool) {
	for _, x := range Statuses {
		if string(x) == s {
			return x, true
		}
	}
	return "", false
}

// DefaultPageSize is how many objects one list request asks for.
const DefaultPageSize = 500

// Options say what to audit.
type Options struct {
	// Namespace limits the audit to one namespace ("" is all).
	Namespace string
	// LabelSelector selects pods, as kubectl -l does.
	LabelSelector string
	// PageSize is the Limit of each list request (DefaultPageSize if 0).
	PageSize int64
	// Progress, when set, is called after each page of pods.
	Progress func(pods, workloads int)
	// Now stamps the report (time.Now if nil).
	Now func() time.Time
}

// Run audits the cluster behind client with cfg, the webhook's config.
func Run(ctx context.Context, client kubernetes.Interface, cfg *profiles.Config, o Options) (*Report, error) {
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	nss, err := readNamespaces(ctx, client, o)
	if err != nil {
		return nil, err
	}
	a := newAggregator(cfg, client, nss, o.PageSize)
	// The next page is read while this one is reviewed, so the audit
	// costs little more wall time than the list: at most two pages are
	// held, the one being reviewed and the one waiting.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan *corev1.PodList)
	listErr := make(chan error, 1)
	go func() {
		defer close(pages)
		pods := client.CoreV1().Pods(o.Namespace)
		listErr <- paginate(ctx, o.PageSize, func(opts metav1.ListOptions) (string, error) {
			opts.LabelSelector = o.LabelSelector
			list, err := pods.List(ctx, opts)
			if err != nil {
				return "", fmt.Errorf("listing pods: %w", err)
			}
			select {
			case pages <- list:
			case <-ctx.Done():
				return "", ctx.Err()
			}
			return list.Continue, nil
		})
	}()
	for list := range pages {
		for i := range list.Items {
			if err := a.add(ctx, &list.Items[i]); err != nil {
				cancel()
				for range pages {
				}
				return nil, err
			}
		}
		if o.Progress != nil {
			o.Progress(a.pods, len(a.workloads))
		}
	}
	if err := <-listErr; err != nil {
		return nil, err
	}
	r := a.report()
	r.GeneratedAt = now().UTC()
	r.Scope = Scope{Namespace: o.Namespace, LabelSelector: o.LabelSelector}
	r.DefaultProfile = cfg.DefaultProfile
	r.OwnerLookupErrors = a.owners.errors
	return r, nil
}

// paginate calls list with Limit and the previous page's Continue token
// until the server says there is no more. An expired token is an error
// rather than a restart: client-go's pager would then fall back to one
// unpaginated list of everything, the memory this package avoids.
func paginate(ctx context.Context, limit int64, list func(metav1.ListOptions) (string, error)) error {
	token := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		next, err := list(metav1.ListOptions{Limit: limit, Continue: token})
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				return fmt.Errorf("%w (the list outlived its continue token; audit fewer pods at a time with -n or -l)", err)
			}
			return err
		}
		if next == "" {
			return nil
		}
		if next == token {
			return errors.New("listing: the server returned the same continue token twice")
		}
		token = next
	}
}

// namespaceInfo is what decisions need from a namespace.
type namespaceInfo struct {
	labels map[string]string
	// known is false when the namespace could not be read.
	known bool
}

// readNamespaces reads the labels of the namespaces in scope, once, a page
// at a time: namespace labels choose profiles and allow exemptions.
func readNamespaces(ctx context.Context, client kubernetes.Interface, o Options) (map[string]namespaceInfo, error) {
	out := map[string]namespaceInfo{}
	if o.Namespace != "" {
		ns, err := client.CoreV1().Namespaces().Get(ctx, o.Namespace, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading namespace %s: %w", o.Namespace, err)
		}
		out[ns.Name] = namespaceInfo{labels: ns.Labels, known: true}
		return out, nil
	}
	err := paginate(ctx, o.PageSize, func(opts metav1.ListOptions) (string, error) {
		list, err := client.CoreV1().Namespaces().List(ctx, opts)
		if err != nil {
			return "", fmt.Errorf("listing namespaces: %w", err)
		}
		for _, ns := range list.Items {
			out[ns.Name] = namespaceInfo{labels: ns.Labels, known: true}
		}
		return list.Continue, nil
	})
	return out, err
}

// Report is the audit's result.
type Report struct {
	GeneratedAt    time.Time `json:"generatedAt"`
	Scope          Scope     `json:"scope"`
	DefaultProfile string    `json:"defaultProfile"`
	// Requester says how exemptions that depend on who created a pod are
	// treated; the API server does not keep the requester.
	Requester  string             `json:"requester"`
	Totals     Totals             `json:"totals"`
	Namespaces []NamespaceSummary `json:"namespaces"`
	Workloads  []*Workload        `json:"workloads"`
	// OwnerLookupErrors lists owners that could not be read (RBAC, deleted):
	// their pods are grouped under the owner named on the pod.
	OwnerLookupErrors []string `json:"ownerLookupErrors,omitempty"`
}

// Scope is what was audited.
type Scope struct {
	Namespace     string `json:"namespace,omitempty"`
	LabelSelector string `json:"labelSelector,omitempty"`
}

// Totals count pods and workloads.
type Totals struct {
	Pods int `json:"pods"`
	// Workloads by status.
	Workloads map[Status]int `json:"workloads"`
	// PodsByStatus counts pods.
	PodsByStatus map[Status]int `json:"podsByStatus"`
	Drifted      int            `json:"driftedPods"`
	Unreviewed   int            `json:"unreviewedPods"`
}

// NamespaceSummary comes first in every output.
type NamespaceSummary struct {
	Name string `json:"name"`
	// Profile is the profile the namespace's pods get without a pod
	// annotation, and Source the rule that chose it.
	Profile string `json:"profile"`
	Source  string `json:"source"`
	// Exemptions says whether and why exemption annotations count here.
	Exemptions   string         `json:"exemptions"`
	Pods         int            `json:"pods"`
	Workloads    map[Status]int `json:"workloads"`
	PodsByStatus map[Status]int `json:"podsByStatus"`
	Drifted      int            `json:"driftedPods"`
	Unreviewed   int            `json:"unreviewedPods"`
}

// requesterNote is Report.Requester.
const requesterNote = "unknown for stored pods: reviewed with no user or group, so exemptions.subjects cannot be judged; " +
	"a pod whose exemptions only a listed requester could have allowed is reported exempt, allowed by \"requester at admission (not verifiable)\""

// sortWorkloads orders workloads by namespace, kind and name.
func sortWorkloads(ws []*Workload) {
	sort.Slice(ws, func(i, j int) bool {
		a, b := ws[i], ws[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
}

// podName names a pod for examples: controllers' pods have generated names.
func podName(p *corev1.Pod) string {
	if p.Name != "" {
		return p.Name
	}
	return p.GenerateName + "*"
}
