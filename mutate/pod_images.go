package mutate

import (
	"slices"

	kjson "sigs.k8s.io/json"
)

// imageLookupView is what image lookup reads from a pod besides the
// containers' images, decoded in the engine's one pass so the webhook
// does not read the review a second time (that cost a quarter of a
// review, docs/image-lookup.md). The engine itself never reads it.
type imageLookupView struct {
	NodeSelector       lenient[map[string]string] `json:"nodeSelector"`
	ServiceAccountName lenient[string]            `json:"serviceAccountName"`
	ImagePullSecrets   lenient[[]struct {
		Name string `json:"name"`
	}] `json:"imagePullSecrets"`
}

// lenient reads a value of the wrong type as its zero value: these fields
// only steer the lookup, and a pod the engine could harden before must not
// be refused for them (the API server says what is wrong with it).
type lenient[T any] struct{ v T }

func (l *lenient[T]) UnmarshalJSON(b []byte) error {
	if err := kjson.UnmarshalCaseSensitivePreserveInts(b, &l.v); err != nil {
		var zero T
		l.v = zero
	}
	return nil
}

// ImageRefs returns the distinct images of the containers a review
// hardens: every container, or with only set, those ephemeral ones.
func (p *Pod) ImageRefs(only map[string]bool) []string {
	var refs []string
	add := func(cs []containerView, take func(string) bool) {
		for _, c := range cs {
			if img := string(c.Image); img != "" && take(c.Name) && !slices.Contains(refs, img) {
				refs = append(refs, img)
			}
		}
	}
	if p.Spec == nil {
		return nil
	}
	if only != nil {
		add(p.Spec.EphemeralContainers, func(n string) bool { return only[n] })
		return refs
	}
	all := func(string) bool { return true }
	add(p.Spec.InitContainers, all)
	add(p.Spec.Containers, all)
	add(p.Spec.EphemeralContainers, all)
	return refs
}

// NodePlatform returns the node OS and architecture the pod selects:
// nodeSelector kubernetes.io/os and kubernetes.io/arch, else spec.os for
// the OS; "" where it selects none.
func (p *Pod) NodePlatform() (os, arch string) {
	if p.Spec == nil {
		return "", ""
	}
	if p.Spec.OS != nil {
		os = p.Spec.OS.Name
	}
	if v := p.Spec.NodeSelector.v["kubernetes.io/os"]; v != "" {
		os = v
	}
	return os, p.Spec.NodeSelector.v["kubernetes.io/arch"]
}

// PullCredentials returns the pod's service account ("default" when it
// names none) and the names of its own imagePullSecrets, distinct.
func (p *Pod) PullCredentials() (serviceAccount string, secrets []string) {
	serviceAccount = "default"
	if p.Spec == nil {
		return serviceAccount, nil
	}
	if p.Spec.ServiceAccountName.v != "" {
		serviceAccount = p.Spec.ServiceAccountName.v
	}
	for _, s := range p.Spec.ImagePullSecrets.v {
		if s.Name != "" && !slices.Contains(secrets, s.Name) {
			secrets = append(secrets, s.Name)
		}
	}
	return serviceAccount, secrets
}
