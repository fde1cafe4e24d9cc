package mutate

import "github.com/pod-hardener/pod-hardener/profiles"

/*
allowPrivilegeEscalation: no process may gain more privileges than its
parent (setuid binaries, file capabilities). PSS restricted requires false.

Fields: containers[*].securityContext.allowPrivilegeEscalation.
Sets: false where unset, except on a container that is privileged or adds
CAP_SYS_ADMIN (that exact spelling; "SYS_ADMIN" gets false): the API server
rejects that combination, so the field stays unset there and the
privileged/capabilities conflict says why.
Conflict: true. Enforce replaces it with false (same exception).
*/

func init() {
	register(&control{
		name:      profiles.AllowPrivilegeEscalation,
		linuxOnly: true,
		container: allowPrivilegeEscalation,
	})
}

func allowPrivilegeEscalation(h *hctx, t *target) {
	sc := t.c.SecurityContext
	blocked := ""
	switch {
	case sc != nil && isTrue(sc.Privileged):
		blocked = "the container is privileged"
	case addsSysAdmin(t):
		blocked = "the container adds CAP_SYS_ADMIN"
	}
	if sc != nil && isTrue(sc.AllowPrivilegeEscalation) {
		if c := h.conflict(profiles.AllowPrivilegeEscalation, t, "securityContext.allowPrivilegeEscalation", "true"); c.enforce() {
			if blocked != "" {
				c.cannotEnforce("cannot set false: " + blocked + " and the API server rejects that combination")
				return
			}
			set(h, t.sc(), "allowPrivilegeEscalation", &sc.AllowPrivilegeEscalation, false, enforced)
		}
		return
	}
	if sc != nil && sc.AllowPrivilegeEscalation != nil {
		return
	}
	if blocked != "" {
		h.problems = append(h.problems, t.where()+": allowPrivilegeEscalation left unset: "+blocked)
		return
	}
	set(h, t.sc(), "allowPrivilegeEscalation", &t.securityContext().AllowPrivilegeEscalation, false,
		change{control: profiles.AllowPrivilegeEscalation, t: t, field: "allowPrivilegeEscalation=false"})
}
