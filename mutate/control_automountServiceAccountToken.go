package mutate

import "github.com/pod-hardener/pod-hardener/profiles"

/*
automountServiceAccountToken: most pods never call the API server, and a
mounted token is a credential an attacker can take (off in restricted,
which PSS does not require, since many pods do need their token).

Fields: spec.automountServiceAccountToken.
Sets: false where unset.
Conflict: true.  Enforce replaces it with false.
*/

func init() {
	register(&control{
		name: profiles.AutomountServiceAccountToken,
		pod:  automountServiceAccountToken,
	})
}

func automountServiceAccountToken(h *hctx) {
	if h.in.EphemeralOnly != nil {
		return
	}
	v := h.pod.Spec.AutomountServiceAccountToken
	switch {
	case v == nil:
		set(h, h.spec, "automountServiceAccountToken", &h.pod.Spec.AutomountServiceAccountToken, false,
			change{control: profiles.AutomountServiceAccountToken, field: "automountServiceAccountToken=false"})
	case *v:
		if h.conflict(profiles.AutomountServiceAccountToken, nil, "spec.automountServiceAccountToken", "true").enforce() {
			set(h, h.spec, "automountServiceAccountToken", &h.pod.Spec.AutomountServiceAccountToken, false, enforced)
		}
	}
}
