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
// references. Each ReplicaSet and Job is read once, when its first pod
// arrives; a cluster has far fewer of them than pods.
type owners struct {
	client kubernetes.Interface
	cache  map[string]WorkloadRef // namespace/kind/name of the pod's owner
	// errors lists owners that could not be read, each once.
	errors []string
}

func newOwners(c kubernetes.Interface) *owners {
	return &owners{client: c, cache: map[string]WorkloadRef{}}
}

// maxOwnerErrors bounds the list of lookup errors kept for the report.
const maxOwnerErrors = 20

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
	if w, ok := o.cache[key]; ok {
		return w
	}
	w := direct
	refs, err := o.ownerRefs(ctx, direct)
	switch {
	case err != nil:
		if len(o.errors) < maxOwnerErrors {
			o.errors = append(o.errors, fmt.Sprintf("%s: %v", key, err))
		}
	default:
		if up := controllerOf(refs); up != nil && up.Kind == parentKind {
			w = WorkloadRef{Namespace: p.Namespace, Kind: up.Kind, Name: up.Name, APIVersion: up.APIVersion}
		}
	}
	o.cache[key] = w
	return w
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
