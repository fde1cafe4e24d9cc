package mutate

import (
	"strconv"

	"github.com/pod-hardener/pod-hardener/profiles"
)

/*
hostPorts: a hostPort opens a port on the node's address and ties the pod
to nodes where it is free. PSS baseline forbids any hostPort but 0.

Fields: containers[*].ports[*].hostPort (all container kinds).
Sets: nothing.
Conflict: a hostPort other than 0. Enforce removes it; the containerPort
stays, reachable through the pod's address and Services. Not while
hostNetwork stays true (kept by warn, or by a Windows HostProcess pod):
the API server then requires hostPort to equal containerPort.
*/

func init() {
	register(&control{
		name:      profiles.HostPorts,
		container: hostPorts,
	})
}

func hostPorts(h *hctx, t *target) {
	for i, p := range t.c.Ports {
		if p.HostPort == 0 {
			continue
		}
		field := "ports[" + strconv.Itoa(i) + "].hostPort"
		c := h.conflict(profiles.HostPorts, t, field, strconv.FormatInt(p.HostPort, 10))
		if !c.enforce() {
			continue
		}
		if isTrue(h.pod.Spec.HostNetwork) {
			c.cannotEnforce("hostNetwork is true, and the API server then requires hostPort to equal containerPort")
			continue
		}
		remove(h, t.obj, "ports/"+strconv.Itoa(i)+"/hostPort", &t.c.Ports[i].HostPort)
	}
}
