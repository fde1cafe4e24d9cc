package mutate

import "github.com/pod-hardener/pod-hardener/profiles"

/*
seLinuxOptions: an SELinux type or user of the user's choosing can lift the
confinement the runtime gives a container. PSS baseline allows only the
container types (container_t and the few others the evaluator accepts) and
no user or role.

Fields: spec.securityContext.seLinuxOptions.{type,user,role}, and each
container's.
Sets: nothing; unset stays unset (the runtime labels the container).
Conflict: a type the check refuses, a user, a role. Enforce removes the
field, so the runtime picks the label; level is left alone.
*/

func init() {
	register(&control{
		name:      profiles.SELinuxOptions,
		linuxOnly: true,
		pod:       seLinuxOptions,
	})
}

func seLinuxOptions(h *hctx) {
	var seen verdict
	if sc := h.pod.Spec.SecurityContext; h.in.EphemeralOnly == nil && sc != nil && sc.SELinuxOptions != nil {
		seLinuxFields(h, nil, "spec.securityContext.seLinuxOptions", sc.SELinuxOptions, &seen, func() *obj { return h.podSC.child("seLinuxOptions", true) })
	}
	for _, t := range h.targets {
		if sc := t.c.SecurityContext; sc != nil && sc.SELinuxOptions != nil {
			seLinuxFields(h, t, "securityContext.seLinuxOptions", sc.SELinuxOptions, &seen, func() *obj { return t.sc().child("seLinuxOptions", true) })
		}
	}
}

func seLinuxFields(h *hctx, t *target, field string, v *seLinuxView, seen *verdict, o func() *obj) {
	for _, f := range []struct {
		key string
		val *string
		bad bool
	}{
		{"type", &v.Type, v.Type != "" && !seen.of(v.Type, seLinuxTypeAllowed)},
		{"user", &v.User, v.User != ""},
		{"role", &v.Role, v.Role != ""},
	} {
		if !f.bad {
			continue
		}
		if h.conflict(profiles.SELinuxOptions, t, field+"."+f.key, *f.val).enforce() {
			remove(h, o(), f.key, f.val)
		}
	}
}
