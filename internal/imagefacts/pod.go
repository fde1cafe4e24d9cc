package imagefacts

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pod-hardener/pod-hardener/mutate"
)

// LookupPod looks up the images of the pod's containers (every one, or
// with only set those ephemeral ones) for the node platform the pod
// selects, def where it selects none; nil when the pod names no image.
func (r *Resolver) LookupPod(ctx context.Context, pod *mutate.Pod, only map[string]bool, def v1.Platform, q Request) mutate.ImageSet {
	q.Refs = pod.ImageRefs(only)
	if len(q.Refs) == 0 {
		return nil
	}
	os, arch := pod.NodePlatform()
	q.Platform = PlatformFor(os, arch, def)
	return r.Lookup(ctx, q)
}

// PlatformFor is def with the OS and architecture a pod selects ("" keeps
// def's); a selected architecture drops def's variant unless it is def's.
func PlatformFor(os, arch string, def v1.Platform) v1.Platform {
	p := v1.Platform{OS: def.OS, Architecture: def.Architecture, Variant: def.Variant}
	if os != "" {
		p.OS = os
	}
	if arch != "" && arch != def.Architecture {
		p.Architecture, p.Variant = arch, ""
	}
	return p
}

// ParsePlatform reads "os/arch[/variant]".
func ParsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant], such as linux/amd64", s)
	}
	return *p, nil
}
