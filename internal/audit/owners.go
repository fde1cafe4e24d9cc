package audit

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// WorkloadRef names the workload that owns pods.
type WorkloadRef struct {
	Namespace string `json:"namespace"`
	// Kind is Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet
	// (without a Deployment), another owner's kind, or Pod for a bare pod.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// APIVersion is the owner's, when known (PolicyReport resources).
	APIVersion string `json:"apiVersion"`
}

func (r WorkloadRef) String() string { return r.Namespace + "/" + r.Kind + "/" + r.Name }

// owners resolves a pod's owner to its workload: a ReplicaSet to its
// Deployment and a Job to its CronJob, through their own owner
// references. The ReplicaSets and Jobs of a namespace are listed, a page at
// a time, when its first pod that needs them arrives (pods are listed in
// namespace order), and only their owners are kept; one created since is
// read on its own.
type owners struct {
	client   kubernetes.Interface
	pageSize int64
	// parents maps namespace/kind/name of a ReplicaSet or Job to its
	// workload, for the namespaces listed so far.
	parents map[string]WorkloadRef
	listed  map[string]bool // namespace/kind
	// refused: namespace/kind whose list was forbidden; reading each one
	// would be refused too, at a request per owner.
	refused map[string]bool
	// errors lists what could not be read, each once.
	errors []string
}

func newOwners(c kubernetes.Interface, pageSize int64) *owners {
	return &owners{client: c, pageSize: pageSize, parents: map[string]WorkloadRef{}, listed: map[string]bool{}, refused: map[string]bool{}}
}

// maxOwnerErrors bounds the list of lookup errors kept for the report.
const maxOwnerErrors = 20

func (o *owners) fail(what string, err error) {
	if len(o.errors) < maxOwnerErrors {
		o.errors = append(o.errors, fmt.Sprintf("%s: %v", what, err))
	}
}

// controllerOf returns the managing owner reference, or the first one.
func controllerOf(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	if len(refs) > 0 {
		return &refs[0]
	}
	return nil
}

// parentOf is the workload of a ReplicaSet or Job with these owner
// references: its Deployment or CronJob, else itself.
func parentOf(self WorkloadRef, refs []metav1.OwnerReference, parentKind string) WorkloadRef {
	if up := controllerOf(refs); up != nil && up.Kind == parentKind {
		return WorkloadRef{Namespace: self.Namespace, Kind: up.Kind, Name: up.Name, APIVersion: up.APIVersion}
	}
	return self
}

// workload returns the workload a pod belongs to.
func (o *owners) workload(ctx context.Context, p *corev1.Pod) WorkloadRef {
	ref := controllerOf(p.OwnerReferences)
	if ref == nil {
		return WorkloadRef{Namespace: p.Namespace, Kind: "Pod", Name: podName(p), APIVersion: "v1"}
	}
	direct := WorkloadRef{Namespace: p.Namespace, Kind: ref.Kind, Name: ref.Name, APIVersion: ref.APIVersion}
	var parentKind string
	switch {
	case ref.Kind == "ReplicaSet" && ref.APIVersion == "apps/v1":
		parentKind = "Deployment"
	case ref.Kind == "Job" && ref.APIVersion == "batch/v1":
		parentKind = "CronJob"
	default:
		return direct
	}
	key := direct.String()
	if w, ok := o.parents[key]; ok {
		return w
	}
	lk := p.Namespace + "/" + ref.Kind
	if !o.listed[lk] {
		o.listed[lk] = true
		if err := o.list(ctx, p.Namespace, ref.Kind, parentKind); err != nil {
			o.fail("listing "+ref.Kind+"s in "+p.Namespace, err)
			o.refused[lk] = apierrors.IsForbidden(err)
		}
		if w, ok := o.parents[key]; ok {
			return w
		}
	}
	if o.refused[lk] {
		return direct
	}
	// Not in the list: created since, gone, or the list was refused.
	w := direct
	refs, err := o.ownerRefs(ctx, direct)
	if err != nil {
		o.fail(key, err)
	} else {
		w = parentOf(direct, refs, parentKind)
	}
	o.parents[key] = w
	return w
}

// list reads the owners of every ReplicaSet or Job of a namespace.
func (o *owners) list(ctx context.Context, ns, kind, parentKind string) error {
	apiVersion := "batch/v1"
	if kind == "ReplicaSet" {
		apiVersion = "apps/v1"
	}
	keep := func(name string, refs []metav1.OwnerReference) {
		self := WorkloadRef{Namespace: ns, Kind: kind, Name: name, APIVersion: apiVersion}
		o.parents[self.String()] = parentOf(self, refs, parentKind)
	}
	return paginate(ctx, o.pageSize, func(opts metav1.ListOptions) (string, error) {
		switch kind {
		case "ReplicaSet":
			l, err := o.client.AppsV1().ReplicaSets(ns).List(ctx, opts)
			if err != nil {
				return "", err
			}
			for i := range l.Items {
				keep(l.Items[i].Name, l.Items[i].OwnerReferences)
			}
			return l.Continue, nil
		default:
			l, err := o.client.BatchV1().Jobs(ns).List(ctx, opts)
			if err != nil {
				return "", err
			}
			for i := range l.Items {
				keep(l.Items[i].Name, l.Items[i].OwnerReferences)
			}
			return l.Continue, nil
		}
	})
}

// ownerRefs reads the owner references of a ReplicaSet or Job. One that
// is gone (its pods are being deleted, or orphaned) has none.
func (o *owners) ownerRefs(ctx context.Context, w WorkloadRef) ([]metav1.OwnerReference, error) {
	var meta *metav1.ObjectMeta
	switch w.Kind {
	case "ReplicaSet":
		rs, err := o.client.AppsV1().ReplicaSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return nil, ignoreNotFound(err)
		}
		meta = &rs.ObjectMeta
	case "Job":
		j, err := o.client.BatchV1().Jobs(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return nil, ignoreNotFound(err)
		}
		meta = &j.ObjectMeta
	}
	if meta == nil {
		return nil, nil
	}
	return meta.OwnerReferences, nil
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
