package mutate

import (
	"sort"
	"strings"

	"github.com/pod-hardener/pod-hardener/profiles"
)

/*
appArmorProfile: AppArmor confines what a container may do on the node;
Unconfined turns it off. PSS baseline allows only RuntimeDefault and
Localhost, and in the deprecated annotations runtime/default and
localhost/<profile> (k8s.io/pod-security-admission judges each value).

Fields: spec.securityContext.appArmorProfile.type, each container's, and
the annotations container.apparmor.security.beta.kubernetes.io/<container>.
Sets: nothing; unset stays unset (the runtime's default applies).
Conflict: any other type or annotation value (Unconfined). Enforce
replaces it with RuntimeDefault (runtime/default in an annotation): the API
server requires a container's annotation and field to agree, and enforcing
both keeps them agreeing.
*/

func init() {
	register(&control{
		name:      profiles.AppArmorProfile,
		linuxOnly: true,
		pod:       appArmorProfile,
	})
}

func appArmorProfile(h *hctx) {
	ephemeral := h.in.EphemeralOnly != nil
	if sc := h.pod.Spec.SecurityContext; !ephemeral && sc != nil && sc.AppArmorProfile != nil && !appArmorTypeAllowed(sc.AppArmorProfile.Type) {
		if h.conflict(profiles.AppArmorProfile, nil, "spec.securityContext.appArmorProfile.type", sc.AppArmorProfile.Type).enforce() {
			setValue(h, h.podSC.child("appArmorProfile", true), "type", &sc.AppArmorProfile.Type, "RuntimeDefault", enforced)
		}
	}
	var seen verdict
	for _, t := range h.targets {
		sc := t.c.SecurityContext
		if sc == nil || sc.AppArmorProfile == nil || seen.of(sc.AppArmorProfile.Type, appArmorTypeAllowed) {
			continue
		}
		if h.conflict(profiles.AppArmorProfile, t, "securityContext.appArmorProfile.type", sc.AppArmorProfile.Type).enforce() {
			setValue(h, t.sc().child("appArmorProfile", true), "type", &sc.AppArmorProfile.Type, "RuntimeDefault", enforced)
		}
	}
	if ephemeral {
		return
	}
	ann := h.pod.Metadata.annotationsOrNil()
	var bad []string
	for k, v := range ann {
		if strings.HasPrefix(k, appArmorAnnotationPrefix) && !appArmorAnnotationAllowed(k, v) {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	for _, k := range bad {
		if h.conflict(profiles.AppArmorProfile, nil, "metadata.annotations["+k+"]", ann[k]).enforce() {
			h.annotate(k, "runtime/default")
		}
	}
}
