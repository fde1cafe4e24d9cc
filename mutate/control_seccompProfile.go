package mutate

import "github.com/pod-hardener/pod-hardener/profiles"

/*
seccompProfile: the container runtime's default seccomp filter blocks
syscalls that containers have no business making. PSS restricted requires
RuntimeDefault or Localhost, at pod level or on every container.

Fields: spec.securityContext.seccompProfile, and each container's.
Sets: pod seccompProfile {type: RuntimeDefault} unless the pod or every
container sets one. An ephemeral container added to a running pod gets it
at container level when the pod has none.
A container exempted with exempt.pod-hardener.io/<container> keeps its own
profile as written; when the pod sets none, the pod-level default would
cover it, so every other container without one gets RuntimeDefault at
container level instead. The pod's own profile is exempted only with
pod-hardener.io/exempt-controls.
Conflict: type Unconfined. Enforce replaces the type with RuntimeDefault.
An ephemeral container added to a running pod whose own profile is
Unconfined, with none of its own, inherits Unconfined: a conflict for that
container; enforce gives it RuntimeDefault at container level.
*/

func init() {
	register(&control{
		name:         profiles.SeccompProfile,
		perContainer: true,
		linuxOnly:    true,
		pod:          seccompProfile,
	})
}

const seccompUnconfined = "Unconfined"

func runtimeDefault() map[string]any { return map[string]any{"type": "RuntimeDefault"} }

func seccompProfile(h *hctx) {
	podSC := h.pod.Spec.SecurityContext
	ephemeral := h.in.EphemeralOnly != nil
	podSet := podSC != nil && podSC.SeccompProfile != nil
	if podSet && !ephemeral && podSC.SeccompProfile.Type == seccompUnconfined {
		if h.conflict(profiles.SeccompProfile, nil, "spec.securityContext.seccompProfile.type", seccompUnconfined).enforce() {
			setValue(h, h.podSC.child("seccompProfile", true), "type", &podSC.SeccompProfile.Type, "RuntimeDefault", enforced)
		}
	}
	allSet := len(h.targets) > 0
	exempt := false
	for _, t := range h.targets {
		if h.ex.exempt(profiles.SeccompProfile, t) {
			exempt = true
			continue
		}
		sc := t.c.SecurityContext
		if sc == nil || sc.SeccompProfile == nil {
			allSet = false
			continue
		}
		if sc.SeccompProfile.Type == seccompUnconfined &&
			h.conflict(profiles.SeccompProfile, t, "securityContext.seccompProfile.type", seccompUnconfined).enforce() {
			setValue(h, t.sc().child("seccompProfile", true), "type", &sc.SeccompProfile.Type, "RuntimeDefault", enforced)
		}
	}
	if ephemeral || (exempt && !podSet) {
		// A new container without a profile of its own inherits the pod's:
		// an Unconfined one there is a conflict for the new container, which
		// may still get its own RuntimeDefault (the pod's is immutable now).
		// With an exempt container and no pod profile, the containers get
		// theirs one by one, since the pod's would cover the exempt one.
		inherited := podSet && podSC.SeccompProfile.Type == seccompUnconfined
		if podSet && !inherited {
			return
		}
		for _, t := range h.targets {
			if h.ex.exempt(profiles.SeccompProfile, t) {
				continue
			}
			if sc := t.c.SecurityContext; sc != nil && sc.SeccompProfile != nil {
				continue
			}
			if inherited && !h.conflict(profiles.SeccompProfile, t, "seccompProfile.type (inherited from spec.securityContext)", seccompUnconfined).enforce() {
				continue
			}
			setAs(h, t.sc(), "seccompProfile", &t.securityContext().SeccompProfile, seccompView{Type: "RuntimeDefault"}, runtimeDefault(),
				change{control: profiles.SeccompProfile, t: t, field: "seccompProfile=RuntimeDefault"})
		}
		return
	}
	if podSet || allSet {
		return
	}
	setAs(h, h.podSC, "seccompProfile", &h.podSecurityContext().SeccompProfile, seccompView{Type: "RuntimeDefault"}, runtimeDefault(),
		change{control: profiles.SeccompProfile, field: "securityContext.seccompProfile=RuntimeDefault"})
}
