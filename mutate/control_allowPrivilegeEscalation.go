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
		level:     levelContainer,
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
		if h.conflict(profiles.AllowPrivilegeEscalation, t, "securityContext.allowPrivilegeEscalation", "true") == profiles.ActionEnforce {
			if blocked != "" {
				h.cannotEnforce("cannot set false: " + blocked + " and the API server rejects that combination")
				return
			}
			t.sc().replace("allowPrivilegeEscalation", false)
			*sc.AllowPrivilegeEscalation = false
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
	t.sc().set("allowPrivilegeEscalation", false)
	t.securityContext().AllowPrivilegeEscalation = boolp(false)
	h.changed(profiles.AllowPrivilegeEscalation, t, "allowPrivilegeEscalation=false")
}

func boolp(b bool) *bool { return &b }
