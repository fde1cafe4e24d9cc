package mutate

import "github.com/pod-hardener/pod-hardener/profiles"

/*
restrictedVolumes: PSS restricted allows only volume types that hold the
pod's own data (configMap, csi, downwardAPI, emptyDir, ephemeral, image,
persistentVolumeClaim, projected, secret); every other type reaches storage
the cluster admin, not the pod's namespace, should broker through a
PersistentVolume.

Fields: spec.volumes[*] (its source).
Sets: nothing.
Conflict: a volume of another type. A hostPath volume is left to
hostPathVolumes when that control runs for the pod, so it is reported
once. There is no safe value (see hostPathVolumes): enforce keeps it and
warns; deny refuses the pod.
*/

func init() {
	register(&control{
		name: profiles.RestrictedVolumes,
		pod:  restrictedVolumes,
	})
}

func restrictedVolumes(h *hctx) {
	if h.in.EphemeralOnly != nil {
		return
	}
	hostPathOwned := h.prof.Enabled(profiles.HostPathVolumes) && !h.ex.exempt(profiles.HostPathVolumes, nil)
	for _, v := range h.pod.Spec.Volumes {
		src := v.restricted()
		if src == "" || src == "hostPath" && hostPathOwned {
			continue
		}
		h.unfixable(profiles.RestrictedVolumes, nil, "spec.volumes["+v.Name+"]", src, noSafeVolume)
	}
}
