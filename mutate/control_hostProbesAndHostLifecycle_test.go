package mutate

import "testing"

func TestControlHostProbesAndHostLifecycle(t *testing.T) {
	const c0 = "spec.containers.0"
	ctlRun(t, []ctlCase{
		{
			name:  "no host, or empty: nothing",
			pod:   `{"spec":{"containers":[{"name":"app","livenessProbe":{"httpGet":{"path":"/","port":80,"host":""}},"readinessProbe":{"tcpSocket":{"port":80}},"lifecycle":{"preStop":{"exec":{"command":["x"]}}}}]}}`,
			noOps: []string{"/spec/containers/0/livenessProbe", "/spec/containers/0/readinessProbe", "/spec/containers/0/lifecycle"},
		},
		{
			name:      "probe host warn: kept, named",
			pod:       `{"spec":{"containers":[{"name":"app","livenessProbe":{"httpGet":{"port":80,"host":"10.0.0.1"}}}]}}`,
			conflicts: []cf{{"hostProbesAndHostLifecycle", "containers[app]", warnA}},
			want:      map[string]any{c0 + ".livenessProbe.httpGet.host": "10.0.0.1"},
			warnings:  []string{"containers[app]: livenessProbe.httpGet.host=10.0.0.1 kept but unsafe", `exempt.pod-hardener.io/app: "hostProbesAndHostLifecycle"`},
		},
		{
			name: "every handler enforce: host removed, port and path kept",
			pod: `{"spec":{"containers":[{"name":"app",` +
				`"livenessProbe":{"httpGet":{"path":"/h","port":80,"host":"a"}},"readinessProbe":{"tcpSocket":{"port":80,"host":"b"}},"startupProbe":{"httpGet":{"port":80,"host":"c"}},` +
				`"lifecycle":{"postStart":{"httpGet":{"port":80,"host":"d"}},"preStop":{"tcpSocket":{"port":80,"host":"e"}}}}]}}`,
			in: restrictedIn(t, enforceA),
			conflicts: []cf{
				{"hostProbesAndHostLifecycle", "containers[app]", enforceA}, {"hostProbesAndHostLifecycle", "containers[app]", enforceA},
				{"hostProbesAndHostLifecycle", "containers[app]", enforceA}, {"hostProbesAndHostLifecycle", "containers[app]", enforceA},
				{"hostProbesAndHostLifecycle", "containers[app]", enforceA},
			},
			lost: []string{"/spec/containers/0/livenessProbe/httpGet/host", "/spec/containers/0/readinessProbe/tcpSocket/host",
				"/spec/containers/0/startupProbe/httpGet/host", "/spec/containers/0/lifecycle/postStart/httpGet/host", "/spec/containers/0/lifecycle/preStop/tcpSocket/host"},
			ops:  []string{"remove /spec/containers/0/lifecycle/preStop/tcpSocket/host"},
			want: map[string]any{c0 + ".livenessProbe.httpGet": map[string]any{"path": "/h", "port": 80}, c0 + ".lifecycle.preStop.tcpSocket": map[string]any{"port": 80}},
		},
		{
			name:      "keys written with escapes are read as the API server reads them; null handlers are unset",
			pod:       `{"spec":{"containers":[{"name":"app","livenessProbe":null,"lifecycle":{"preStop":null},"readinessProbe":{"httpGet":{"port":80,"h\u006fst":"x"}},"startupProbe":{"tcpSocket":{"port":80},"httpGet":{"port":81,"httpHeaders":[{"name":"host","value":"host"}]}}}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"hostProbesAndHostLifecycle", "containers[app]", enforceA}},
			lost:      []string{"/spec/containers/0/readinessProbe/httpGet/host"},
			want:      map[string]any{c0 + ".readinessProbe.httpGet": map[string]any{"port": 80}},
		},
		{
			name:      "lifecycle host deny",
			pod:       `{"spec":{"initContainers":[{"name":"i","lifecycle":{"postStart":{"httpGet":{"port":80,"host":"x"}}}}],"containers":[{"name":"app"}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"hostProbesAndHostLifecycle", "initContainers[i]", denyA}},
			denied:    true,
			message:   []string{"initContainers[i]", "lifecycle.postStart.httpGet.host=x", `exempt.pod-hardener.io/i: "hostProbesAndHostLifecycle"`},
		},
	})
}
