package mutate

import "github.com/pod-hardener/pod-hardener/profiles"

/*
procMount: the container runtime masks parts of /proc that would reveal or
change the node; Unmasked turns the masks off. PSS restricted allows only
Default; baseline allows any value in a user namespace (hostUsers: false).
The profile's level decides which of the two checks judges the value.

Fields: containers[*].securityContext.procMount (all container kinds).
Sets: nothing; unset stays unset (Default).
Conflict: any value the check refuses (Unmasked). Enforce replaces it with
Default.
*/

func init() {
	register(&control{
		name:      profiles.ProcMount,
		linuxOnly: true,
		container: procMount,
	})
}

func procMount(h *hctx, t *target) {
	sc := t.c.SecurityContext
	if sc == nil || sc.ProcMount == nil || procMountAllowed(*sc.ProcMount, h.pod.Spec.HostUsers, h.prof.Level) {
		return
	}
	if h.conflict(profiles.ProcMount, t, "securityContext.procMount", *sc.ProcMount).enforce() {
		set(h, t.sc(), "procMount", &sc.ProcMount, "Default", enforced)
	}
}
