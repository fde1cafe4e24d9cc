package mutate

import "github.com/pod-hardener/pod-hardener/profiles"

/*
privileged: a privileged container has every capability and every device of
the node. PSS baseline forbids it.

Fields: containers[*].securityContext.privileged (all container kinds).
Sets: nothing; unset stays unset (false is the default).
Conflict: privileged: true. Enforce replaces it with false.
*/

func init() {
	register(&control{
		name:      profiles.Privileged,
		linuxOnly: true,
		container: privileged,
	})
}

func privileged(h *hctx, t *target) {
	sc := t.c.SecurityContext
	if sc == nil || !isTrue(sc.Privileged) {
		return
	}
	if h.conflict(profiles.Privileged, t, "securityContext.privileged", "true").enforce() {
		set(h, t.sc(), "privileged", &sc.Privileged, false, enforced)
	}
}
