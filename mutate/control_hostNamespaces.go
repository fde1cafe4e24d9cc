package mutate

import "github.com/pod-hardener/pod-hardener/profiles"

/*
hostNamespaces: sharing the node's network, PID or IPC namespace lets a pod
see and reach what other pods and the node keep private. PSS baseline
forbids it.

Fields: spec.hostNetwork, spec.hostPID, spec.hostIPC.
Sets: nothing; unset stays unset (false is the default).
Conflict: true. Enforce replaces it with false, except hostNetwork on a
Windows HostProcess pod, which the API server requires to be true.
*/

func init() {
	register(&control{
		name: profiles.HostNamespaces,
		pod:  hostNamespaces,
	})
}

func hostNamespaces(h *hctx) {
	if h.in.EphemeralOnly != nil {
		return
	}
	s := h.pod.Spec
	for _, f := range []struct {
		key string
		v   **bool
	}{{"hostNetwork", &s.HostNetwork}, {"hostPID", &s.HostPID}, {"hostIPC", &s.HostIPC}} {
		if !isTrue(*f.v) {
			continue
		}
		c := h.conflict(profiles.HostNamespaces, nil, "spec."+f.key, "true")
		if !c.enforce() {
			continue
		}
		if f.key == "hostNetwork" && h.hostProcess {
			c.cannotEnforce("Windows HostProcess pods must use the host network")
			continue
		}
		set(h, h.spec, f.key, f.v, false, enforced)
	}
}
