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
		linuxOnly: true,
		pod:       runAsUser,
	})
}

func runAsUser(h *hctx) {
	if h.in.EphemeralOnly != nil {
		return
	}
	if h.prof.RunAsUser == nil && h.prof.RunAsGroup == nil && h.prof.FSGroup == nil {
		return
	}
	sc := h.podSecurityContext()
	for _, f := range []struct {
		key  string
		want *int64
		have **int64
	}{
		{"runAsUser", h.prof.RunAsUser, &sc.RunAsUser},
		{"runAsGroup", h.prof.RunAsGroup, &sc.RunAsGroup},
		{"fsGroup", h.prof.FSGroup, &sc.FSGroup},
	} {
		if f.want == nil || *f.have != nil {
			continue
		}
		set(h, h.podSC, f.key, f.have, *f.want, change{control: profiles.RunAsUser, field: "securityContext." + f.key})
	}
}
