package mutate

import "github.com/pod-hardener/pod-hardener/profiles"

/*
runAsUser: default user, group and fsGroup IDs for images that do not
name a non-root user (off in restricted: runAsNonRoot alone already refuses
root, and an arbitrary UID can break an image that expects its own).

Fields: spec.securityContext.runAsUser, runAsGroup, fsGroup.
Sets: each ID the profile gives, where the pod leaves it unset. Container
level values win over the pod's, so they are left alone.
Conflict: none of its own; runAsUser: 0 is the runAsNonRoot control's.
*/

func init() {
	register(&control{
		name:      profiles.RunAsUser,
		level:     levelPod,
		linuxOnly: true,
		pod:       runAsUser,
	})
}

func runAsUser(h *hctx) {
	if h.in.EphemeralOnly != nil {
		return
	}
	sc := h.pod.Spec.SecurityContext
	for _, f := range []struct {
		key  string
		want *int64
		have func(*podSCView) *int64
	}{
		{"runAsUser", h.prof.RunAsUser, func(s *podSCView) *int64 { return s.RunAsUser }},
		{"runAsGroup", h.prof.RunAsGroup, func(s *podSCView) *int64 { return s.RunAsGroup }},
		{"fsGroup", h.prof.FSGroup, func(s *podSCView) *int64 { return s.FSGroup }},
	} {
		if f.want == nil || (sc != nil && f.have(sc) != nil) {
			continue
		}
		h.podSC.set(f.key, *f.want)
		h.changed(profiles.RunAsUser, nil, "securityContext."+f.key)
	}
}
