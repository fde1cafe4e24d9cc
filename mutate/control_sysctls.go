package mutate

import (
	"strconv"

	"github.com/pod-hardener/pod-hardener/profiles"
)

/*
sysctls: most kernel parameters are shared with the node or other pods.
PSS baseline allows only the namespaced, isolated ones the evaluator lists
(policy/check_sysctls.go; each name is judged by the evaluator itself).

Fields: spec.securityContext.sysctls[*].name.
Sets: nothing.
Conflict: a sysctl outside the allowed set. Enforce removes that entry and
keeps the others.
*/

func init() {
	register(&control{
		name:      profiles.Sysctls,
		linuxOnly: true,
		pod:       sysctls,
	})
}

func sysctls(h *hctx) {
	sc := h.pod.Spec.SecurityContext
	if h.in.EphemeralOnly != nil || sc == nil || len(sc.Sysctls) == 0 {
		return
	}
	var drop []int
	for i, s := range sc.Sysctls {
		if sysctlAllowed(s.Name) {
			continue
		}
		if h.conflict(profiles.Sysctls, nil, "spec.securityContext.sysctls["+strconv.Itoa(i)+"].name", s.Name).enforce() {
			drop = append(drop, i)
		}
	}
	removeEntries(h, h.podSC, "sysctls", &sc.Sysctls, drop)
}
