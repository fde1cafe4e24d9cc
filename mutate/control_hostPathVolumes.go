package mutate

import "github.com/pod-hardener/pod-hardener/profiles"

/*
hostPathVolumes: a hostPath volume mounts the node's own files into the
pod. PSS baseline forbids it.

Fields: spec.volumes[*].hostPath.
Sets: nothing.
Conflict: any hostPath volume. There is no safe value: removing the volume
would break the containers that mount it, and the pod would be refused or
not work. So enforce keeps it and warns, as warn does; deny refuses the
pod. Either way the warning names the volume and the exempting annotation.
*/

func init() {
	register(&control{
		name: profiles.HostPathVolumes,
		pod:  hostPathVolumes,
	})
}

// noSafeVolume is the note of a volume conflict that enforce cannot fix.
const noSafeVolume = "no safe value: removing the volume would break the containers that mount it"

func hostPathVolumes(h *hctx) {
	if h.in.EphemeralOnly != nil {
		return
	}
	for _, v := range h.pod.Spec.Volumes {
		if v.HostPath == nil {
			continue
		}
		h.unfixable(profiles.HostPathVolumes, nil, "spec.volumes["+v.Name+"]", "hostPath", noSafeVolume)
	}
}
