package mutate

import (
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestControlHostPorts(t *testing.T) {
	const p0 = "spec.containers.0.ports.0"
	ctlRun(t, []ctlCase{
		{
			name:  "no hostPort, or 0: nothing",
			pod:   `{"spec":{"containers":[{"name":"app","ports":[{"containerPort":80},{"containerPort":81,"hostPort":0}]}]}}`,
			noOps: []string{"/spec/containers/0/ports"},
		},
		{
			name:      "hostPort warn: kept, named",
			pod:       `{"spec":{"containers":[{"name":"app","ports":[{"containerPort":80,"hostPort":8080}]}]}}`,
			conflicts: []cf{{"hostPorts", "containers[app]", warnA}},
			want:      map[string]any{p0 + ".hostPort": 8080},
			warnings:  []string{"containers[app]: ports[0].hostPort=8080 kept but unsafe", `exempt.pod-hardener.io/app: "hostPorts"`},
		},
		{
			name:      "hostPort enforce: removed, the rest of the port kept",
			pod:       `{"spec":{"initContainers":[{"name":"side","restartPolicy":"Always","ports":[{"containerPort":9,"hostPort":9}]}],"containers":[{"name":"app","ports":[{"name":"http","containerPort":80,"hostPort":8080,"hostIP":"10.0.0.1","protocol":"TCP"},{"containerPort":81}]}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"hostPorts", "initContainers[side]", enforceA}, {"hostPorts", "containers[app]", enforceA}},
			lost:      []string{"/spec/initContainers/0/ports/0/hostPort", "/spec/containers/0/ports/0/hostPort"},
			ops:       []string{"remove /spec/containers/0/ports/0/hostPort"},
			want:      map[string]any{"spec.containers.0.ports": []any{map[string]any{"name": "http", "containerPort": 80, "hostIP": "10.0.0.1", "protocol": "TCP"}, map[string]any{"containerPort": 81}}},
		},
		{
			name:      "enforce, hostNetwork enforced false too: removed",
			pod:       `{"spec":{"hostNetwork":true,"containers":[{"name":"app","ports":[{"containerPort":80,"hostPort":80}]}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"hostNamespaces", "pod", enforceA}, {"hostPorts", "containers[app]", enforceA}},
			lost:      []string{"/spec/hostNetwork", "/spec/containers/0/ports/0/hostPort"},
			want:      map[string]any{"spec.hostNetwork": false, p0 + ".hostPort": absent},
		},
		{
			name:      "enforce while hostNetwork stays true: kept, said why",
			pod:       `{"spec":{"hostNetwork":true,"containers":[{"name":"app","ports":[{"containerPort":80,"hostPort":80}]}]}}`,
			in:        restrictedIn(t, enforceA, withControl(profiles.HostNamespaces, profiles.ModeWarn)),
			conflicts: []cf{{"hostNamespaces", "pod", warnA}, {"hostPorts", "containers[app]", warnA}},
			want:      map[string]any{p0 + ".hostPort": 80},
			warnings:  []string{"ports[0].hostPort=80 kept but unsafe", "requires hostPort to equal containerPort"},
		},
		{
			name:      "a key written with escapes is read as the API server reads it",
			pod:       `{"spec":{"containers":[{"name":"app","ports":[{"containerPort":80,"host\u0050ort":8080}]}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"hostPorts", "containers[app]", enforceA}},
			lost:      []string{"/spec/containers/0/ports/0/hostPort"},
			want:      map[string]any{p0 + ".hostPort": absent},
		},
		{
			name:      "hostPort deny",
			pod:       `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","ports":[{"containerPort":80,"hostPort":8080}]}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"hostPorts", "containers[app]", denyA}},
			denied:    true,
			message:   []string{`pod "p"`, "containers[app]", "ports[0].hostPort=8080", `exempt.pod-hardener.io/app: "hostPorts"`},
		},
	})
}
