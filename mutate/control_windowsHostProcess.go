package mutate

import "github.com/pod-hardener/pod-hardener/profiles"

/*
windowsHostProcess: a Windows HostProcess container runs as a process on
the node, with the node's network and a node account. PSS baseline forbids
it.

Fields: spec.securityContext.windowsOptions.hostProcess, and each
container's.
Sets: nothing.
Conflict: hostProcess: true. There is no safe value: such a pod is built to
run on the node (the API server requires hostNetwork and every container
to agree), and false would be a different pod. So enforce keeps it and
warns, as warn does; deny refuses the pod.
*/

func init() {
	register(&control{
		name: profiles.WindowsHostProcess,
		pod:  windowsHostProcess,
	})
}

const noSafeHostProcess = "no safe value: a HostProcess pod is built to run on the node"

func windowsHostProcess(h *hctx) {
	if sc := h.pod.Spec.SecurityContext; h.in.EphemeralOnly == nil && sc != nil && sc.WindowsOptions.hostProcess() {
		h.unfixable(profiles.WindowsHostProcess, nil, "spec.securityContext.windowsOptions.hostProcess", "true", noSafeHostProcess)
	}
	for _, t := range h.targets {
		if sc := t.c.SecurityContext; sc != nil && sc.WindowsOptions.hostProcess() {
			h.unfixable(profiles.WindowsHostProcess, t, "securityContext.windowsOptions.hostProcess", "true", noSafeHostProcess)
		}
	}
}
