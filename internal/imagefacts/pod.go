package imagefacts

import (
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"

	"github.com/pod-hardener/pod-hardener/mutate"
)

// Pod is what a lookup reads from a pod, decoded apart from the engine's
// views so the engine stays free of registry concerns. Decode it as the
// engine decodes pods (sigs.k8s.io/json, case-sensitive keys).
type Pod struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		OS *struct {
			Name string `json:"name"`
		} `json:"os"`
		NodeSelector       map[string]string `json:"nodeSelector"`
		ServiceAccountName string            `json:"serviceAccountName"`
		ImagePullSecrets   []struct {
			Name string `json:"name"`
		} `json:"imagePullSecrets"`
		InitContainers      []podContainer `json:"initContainers"`
		Containers          []podContainer `json:"containers"`
		EphemeralContainers []podContainer `json:"ephemeralContainers"`
	} `json:"spec"`
}

type podContainer struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// DecodePod reads a pod's JSON.
func DecodePod(raw []byte) (*Pod, error) {
	var p Pod
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ExemptRequested: the pod asks to be exempt as a whole (honoured only
// where exemptions are authorized).
func (p *Pod) ExemptRequested() bool {
	return strings.EqualFold(strings.TrimSpace(p.Metadata.Annotations[mutate.AnnotationExempt]), "true")
}

// Images returns the distinct images of the containers being hardened:
// every container, or with only set, those new ephemeral ones.
func (p *Pod) Images(only map[string]bool) []string {
	var refs []string
	add := func(cs []podContainer, take func(string) bool) {
		for _, c := range cs {
			if c.Image != "" && take(c.Name) && !slices.Contains(refs, c.Image) {
				refs = append(refs, c.Image)
			}
		}
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

// Platform is the node platform the pod selects by nodeSelector
// (kubernetes.io/os, kubernetes.io/arch) or spec.os, else def.
func (p *Pod) Platform(def v1.Platform) v1.Platform {
	plat := v1.Platform{OS: def.OS, Architecture: def.Architecture, Variant: def.Variant}
	if p.Spec.OS != nil && p.Spec.OS.Name != "" {
		plat.OS = p.Spec.OS.Name
	}
	if os := p.Spec.NodeSelector[corev1.LabelOSStable]; os != "" {
		plat.OS = os
	}
	if arch := p.Spec.NodeSelector[corev1.LabelArchStable]; arch != "" && arch != def.Architecture {
		plat.Architecture, plat.Variant = arch, ""
	}
	return plat
}

// PullSecrets are the names of the pod's own imagePullSecrets.
func (p *Pod) PullSecrets() []string {
	var names []string
	for _, s := range p.Spec.ImagePullSecrets {
		if s.Name != "" && !slices.Contains(names, s.Name) {
			names = append(names, s.Name)
		}
	}
	return names
}

// ParsePlatform reads "os/arch[/variant]".
func ParsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant], such as linux/amd64", s)
	}
	return *p, nil
}
