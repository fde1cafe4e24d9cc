package mutate

import (
	"strings"

	"github.com/pod-hardener/pod-hardener/profiles"
)

/*
hostProbesAndHostLifecycle: a probe or lifecycle handler with a host makes
the kubelet, from the node, connect wherever the pod says: a way to reach
what the pod itself could not. PSS baseline forbids a host.

Fields: containers[*].{livenessProbe,readinessProbe,startupProbe}.
{httpGet,tcpSocket}.host and lifecycle.{postStart,preStop}.
{httpGet,tcpSocket}.host (all container kinds).
Sets: nothing.
Conflict: a host other than "". Enforce removes it: the handler then
reaches the pod's own address, the default.
*/

func init() {
	register(&control{
		name:      profiles.HostProbesAndHostLifecycle,
		container: hostProbesAndHostLifecycle,
	})
}

func hostProbesAndHostLifecycle(h *hctx, t *target) {
	c := t.c
	for _, hd := range []struct {
		path string
		v    *handlerView
	}{
		{"livenessProbe", &c.LivenessProbe}, {"readinessProbe", &c.ReadinessProbe}, {"startupProbe", &c.StartupProbe},
		{"lifecycle/postStart", &c.Lifecycle.PostStart}, {"lifecycle/preStop", &c.Lifecycle.PreStop},
	} {
		if hd.v.hosts == nil {
			continue
		}
		for _, k := range []struct {
			key string
			v   *hostView
		}{{"httpGet", &hd.v.hosts.HTTPGet}, {"tcpSocket", &hd.v.hosts.TCPSocket}} {
			if k.v.Host == "" {
				continue
			}
			field := strings.ReplaceAll(hd.path, "/", ".") + "." + k.key + ".host"
			if h.conflict(profiles.HostProbesAndHostLifecycle, t, field, k.v.Host).enforce() {
				remove(h, t.obj, hd.path+"/"+k.key+"/host", &k.v.Host)
			}
		}
	}
}
