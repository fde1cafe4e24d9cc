package mutate

import (
	"fmt"

	"github.com/pod-hardener/pod-hardener/profiles"
)

/*
runAsNonRoot: the kubelet refuses to start a container whose user is root.
PSS restricted requires runAsNonRoot: true (pod, or every container) and
no runAsUser: 0.

Fields: spec.securityContext.runAsNonRoot, runAsUser; the same in each
container's securityContext.
Sets: pod runAsNonRoot: true where unset. When a container keeps an
explicit runAsUser: 0 (warn), the pod-level field would stop that container
from starting, so instead every other container gets runAsNonRoot: true.
Ephemeral containers added to a running pod get it at container level when
the pod does not already say true.
Conflict: runAsNonRoot: false, and runAsUser: 0 anywhere. Enforce replaces
false with true and 0 with the profile's runAsUser (default 65532).
A container exempted with exempt.pod-hardener.io/<container> keeps its own
fields as written and gets no runAsNonRoot; the pod-level field is then
left unset (it would cover that container) and every other container gets
runAsNonRoot: true. The pod's own fields are exempted only with
pod-hardener.io/exempt-controls.
Pods with hostUsers: false (user namespaces) are exempt, as in PSS: root in
the container is not root on the node. Windows HostProcess pods run as a
node account by design and are left alone.
*/

func init() {
	register(&control{
		name:         profiles.RunAsNonRoot,
		perContainer: true,
		pod:          runAsNonRoot,
	})
}

// defaultNonRootUID replaces runAsUser: 0 under enforce when the profile
// names no UID: the conventional "nonroot" user of distroless images.
const defaultNonRootUID int64 = 65532

func runAsNonRoot(h *hctx) {
	spec := h.pod.Spec
	if isFalse(spec.HostUsers) {
		return
	}
	if h.hostProcess {
		h.problems = append(h.problems, "runAsNonRoot not set: Windows HostProcess pods run as a node account")
		return
	}
	safeUID := defaultNonRootUID
	if h.prof.RunAsUser != nil {
		safeUID = *h.prof.RunAsUser
	}
	podSC := spec.SecurityContext
	ephemeral := h.in.EphemeralOnly != nil
	if !ephemeral && podSC != nil {
		if isFalse(podSC.RunAsNonRoot) && h.conflict(profiles.RunAsNonRoot, nil, "spec.securityContext.runAsNonRoot", "false").enforce() {
			set(h, h.podSC, "runAsNonRoot", &podSC.RunAsNonRoot, true, enforced)
		}
		if podSC.RunAsUser != nil && *podSC.RunAsUser == 0 && h.conflict(profiles.RunAsNonRoot, nil, "spec.securityContext.runAsUser", "0").enforce() {
			set(h, h.podSC, "runAsUser", &podSC.RunAsUser, safeUID, enforced)
		}
	}
	podUID := func() *int64 {
		if podSC == nil {
			return nil
		}
		return podSC.RunAsUser
	}()
	var rootTargets, exemptTargets int
	for _, t := range h.targets {
		if h.ex.exempt(profiles.RunAsNonRoot, t) {
			exemptTargets++
			continue
		}
		sc := t.c.SecurityContext
		if sc == nil {
			if podUID != nil && *podUID == 0 {
				rootTargets++
			}
			continue
		}
		if isFalse(sc.RunAsNonRoot) && h.conflict(profiles.RunAsNonRoot, t, "securityContext.runAsNonRoot", "false").enforce() {
			set(h, t.sc(), "runAsNonRoot", &sc.RunAsNonRoot, true, enforced)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 && h.conflict(profiles.RunAsNonRoot, t, "securityContext.runAsUser", "0").enforce() {
			set(h, t.sc(), "runAsUser", &sc.RunAsUser, safeUID, enforced)
		}
		if uid := effectiveUID(sc.RunAsUser, podUID); uid != nil && *uid == 0 {
			rootTargets++
		}
	}
	podSays := podSC != nil && podSC.RunAsNonRoot != nil
	if podSays && !ephemeral {
		return
	}
	if !ephemeral && rootTargets == 0 && exemptTargets == 0 {
		set(h, h.podSC, "runAsNonRoot", &h.podSecurityContext().RunAsNonRoot, true,
			change{control: profiles.RunAsNonRoot, field: "securityContext.runAsNonRoot=true"})
		return
	}
	if podSays && isTrue(podSC.RunAsNonRoot) {
		return
	}
	// Container level: ephemeral containers, or the non-root containers of
	// a pod that keeps a root or an exempt container.
	for _, t := range h.targets {
		if h.ex.exempt(profiles.RunAsNonRoot, t) {
			continue
		}
		sc := t.c.SecurityContext
		if sc != nil && sc.RunAsNonRoot != nil {
			continue
		}
		var uid *int64
		if sc != nil {
			uid = sc.RunAsUser
		}
		if u := effectiveUID(uid, podUID); u != nil && *u == 0 {
			continue
		}
		set(h, t.sc(), "runAsNonRoot", &t.securityContext().RunAsNonRoot, true,
			change{control: profiles.RunAsNonRoot, t: t, field: "runAsNonRoot=true"})
	}
	if rootTargets > 0 && !ephemeral {
		h.problems = append(h.problems, fmt.Sprintf("pod-level runAsNonRoot not set: %d container(s) keep runAsUser: 0", rootTargets))
	}
}

func effectiveUID(container, pod *int64) *int64 {
	if container != nil {
		return container
	}
	return pod
}
