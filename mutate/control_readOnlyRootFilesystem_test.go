package mutate

import (
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
	"k8s.io/apimachinery/pkg/util/validation"
)

// mounts returns a container's mountPath -> volume name.
func rorfsMounts(t *testing.T, out []byte, container string) map[string]string {
	t.Helper()
	m := map[string]string{}
	l, _ := get(t, out, container+".volumeMounts").([]any)
	for _, x := range l {
		vm := x.(map[string]any)
		m[vm["mountPath"].(string)] = vm["name"].(string)
	}
	return m
}

// rorfsVolumes returns volume name -> emptyDir (nil for other sources).
func rorfsVolumes(t *testing.T, out []byte) map[string]any {
	t.Helper()
	m := map[string]any{}
	l, _ := get(t, out, "spec.volumes").([]any)
	for _, x := range l {
		v := x.(map[string]any)
		m[v["name"].(string)] = v["emptyDir"]
	}
	return m
}

// rorfsWantMounts checks a container mounts exactly these paths, each
// from an emptyDir volume of the pod (or the named volume when given).
func rorfsWantMounts(container string, want map[string]string) func(t *testing.T, r *Result, out []byte) {
	return func(t *testing.T, r *Result, out []byte) {
		t.Helper()
		got := rorfsMounts(t, out, container)
		vols := rorfsVolumes(t, out)
		if len(got) != len(want) {
			t.Errorf("%s mounts %v, want paths %v", container, got, want)
		}
		for p, name := range want {
			if name == "" {
				name = volumeName(p)
			}
			if got[p] != name {
				t.Errorf("%s mounts %s from %q, want %q", container, p, got[p], name)
			}
			if _, ok := vols[name]; !ok {
				t.Errorf("pod has no volume %q for %s", name, p)
			}
		}
	}
}

func both(fs ...func(t *testing.T, r *Result, out []byte)) func(t *testing.T, r *Result, out []byte) {
	return func(t *testing.T, r *Result, out []byte) {
		t.Helper()
		for _, f := range fs {
			f(t, r, out)
		}
	}
}

func TestControlReadOnlyRootFilesystem(t *testing.T) {
	const c0 = "spec.containers.0"
	const ro = c0 + ".securityContext.readOnlyRootFilesystem"
	tmp := volumeName("/tmp")
	ctlRun(t, []ctlCase{
		{
			name: "unset: true, with an emptyDir at /tmp",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			want: map[string]any{
				ro:                   true,
				"spec.volumes":       []any{map[string]any{"name": tmp, "emptyDir": map[string]any{}}},
				c0 + ".volumeMounts": []any{map[string]any{"name": tmp, "mountPath": "/tmp"}},
			},
			warnings: []string{"set readOnlyRootFilesystem=true on containers[app]", "set writable emptyDir /tmp on containers[app]"},
		},
		{
			name:  "explicit true: no operation on the field, /tmp still mounted",
			pod:   `{"spec":{"containers":[{"name":"app","securityContext":{"readOnlyRootFilesystem":true}}]}}`,
			want:  map[string]any{ro: true},
			noOps: []string{"/spec/containers/0/securityContext/readOnlyRootFilesystem"},
			check: rorfsWantMounts(c0, map[string]string{"/tmp": ""}),
		},
		{
			name:      "false warn: kept, no writable paths added",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"readOnlyRootFilesystem":false}}]}}`,
			conflicts: []cf{{"readOnlyRootFilesystem", "containers[app]", warnA}},
			want:      map[string]any{ro: false, "spec.volumes": absent, c0 + ".volumeMounts": absent},
			warnings:  []string{"readOnlyRootFilesystem=false kept but unsafe", `exempt.pod-hardener.io/app: "readOnlyRootFilesystem"`},
		},
		{
			name:      "false enforce: true, with /tmp",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"readOnlyRootFilesystem":false}}]}}`,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"readOnlyRootFilesystem", "containers[app]", enforceA}},
			lost:      []string{"/spec/containers/0/securityContext/readOnlyRootFilesystem"},
			ops:       []string{"replace /spec/containers/0/securityContext/readOnlyRootFilesystem"},
			want:      map[string]any{ro: true},
			check:     rorfsWantMounts(c0, map[string]string{"/tmp": ""}),
		},
		{
			name:      "false deny",
			pod:       `{"spec":{"containers":[{"name":"app","securityContext":{"readOnlyRootFilesystem":false}}]}}`,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"readOnlyRootFilesystem", "containers[app]", denyA}},
			denied:    true,
			message:   []string{"containers[app]", "securityContext.readOnlyRootFilesystem=false", `exempt.pod-hardener.io/app: "readOnlyRootFilesystem"`},
		},
		{
			name:  "existing volumes and mounts are appended to",
			pod:   `{"spec":{"volumes":[{"name":"cfg","configMap":{"name":"c"}}],"containers":[{"name":"app","volumeMounts":[{"name":"cfg","mountPath":"/etc/app"}]}]}}`,
			ops:   []string{"add /spec/volumes/-", "add /spec/containers/0/volumeMounts/-"},
			want:  map[string]any{"spec.volumes.0.name": "cfg", "spec.volumes.1.name": tmp, c0 + ".volumeMounts.0.mountPath": "/etc/app"},
			check: rorfsWantMounts(c0, map[string]string{"/etc/app": "cfg", "/tmp": ""}),
		},
		{
			name:  "empty volumes and mounts arrays are appended to",
			pod:   `{"spec":{"volumes":[],"containers":[{"name":"app","volumeMounts":[]}]}}`,
			ops:   []string{"add /spec/volumes/-", "add /spec/containers/0/volumeMounts/-"},
			check: rorfsWantMounts(c0, map[string]string{"/tmp": ""}),
		},
		{
			name:  "null volumes and volumeMounts are unset",
			pod:   `{"spec":{"volumes":null,"containers":[{"name":"app","volumeMounts":null}]}}`,
			ops:   []string{"add /spec/volumes", "add /spec/containers/0/volumeMounts"},
			check: rorfsWantMounts(c0, map[string]string{"/tmp": ""}),
		},
		{
			name:  "a path the container already mounts is not mounted again",
			pod:   `{"spec":{"volumes":[{"name":"scratch","emptyDir":{}}],"containers":[{"name":"app","volumeMounts":[{"name":"scratch","mountPath":"/tmp"}]}]}}`,
			want:  map[string]any{ro: true, "spec.volumes": []any{map[string]any{"name": "scratch", "emptyDir": map[string]any{}}}},
			noOps: []string{"/spec/volumes", "/spec/containers/0/volumeMounts"},
		},
		{
			name: "one volume shared, each container mounts it unless it has the path",
			pod:  `{"spec":{"volumes":[{"name":"s","emptyDir":{}}],"containers":[{"name":"a","volumeMounts":[{"name":"s","mountPath":"/tmp"}]},{"name":"b"}]}}`,
			check: both(
				rorfsWantMounts("spec.containers.0", map[string]string{"/tmp": "s"}),
				rorfsWantMounts("spec.containers.1", map[string]string{"/tmp": ""}),
				func(t *testing.T, r *Result, out []byte) {
					if n := len(rorfsVolumes(t, out)); n != 2 {
						t.Errorf("%d volumes, want 2", n)
					}
				}),
		},
		{
			name: "pod annotation: writable paths on every container",
			pod:  `{"metadata":{"annotations":{"pod-hardener.io/writable-paths":"/var/cache/nginx, /var/run"}},"spec":{"initContainers":[{"name":"i"}],"containers":[{"name":"a"},{"name":"b"}]}}`,
			check: both(
				rorfsWantMounts("spec.initContainers.0", map[string]string{"/tmp": "", "/var/cache/nginx": "", "/var/run": ""}),
				rorfsWantMounts("spec.containers.0", map[string]string{"/tmp": "", "/var/cache/nginx": "", "/var/run": ""}),
				rorfsWantMounts("spec.containers.1", map[string]string{"/tmp": "", "/var/cache/nginx": "", "/var/run": ""}),
				func(t *testing.T, r *Result, out []byte) {
					if n := len(rorfsVolumes(t, out)); n != 3 {
						t.Errorf("%d volumes, want 3", n)
					}
				}),
		},
		{
			name: "per-container annotation: only that container",
			pod:  `{"metadata":{"annotations":{"writable-paths.pod-hardener.io/a":"/data/scratch"}},"spec":{"containers":[{"name":"a"},{"name":"b"}]}}`,
			check: both(
				rorfsWantMounts("spec.containers.0", map[string]string{"/tmp": "", "/data/scratch": ""}),
				rorfsWantMounts("spec.containers.1", map[string]string{"/tmp": ""})),
		},
		{
			name:  "the same path from profile, pod and container annotations is mounted once",
			pod:   `{"metadata":{"annotations":{"pod-hardener.io/writable-paths":"/tmp,/tmp","writable-paths.pod-hardener.io/a":"/tmp"}},"spec":{"containers":[{"name":"a"}]}}`,
			check: rorfsWantMounts(c0, map[string]string{"/tmp": ""}),
			want:  map[string]any{"spec.volumes.1": absent},
		},
		{
			name: "bad paths are reported and skipped, good ones kept",
			pod:  `{"metadata":{"annotations":{"pod-hardener.io/writable-paths":"relative,/a/../b,/,/ok","writable-paths.pod-hardener.io/a":"/x/,/data"}},"spec":{"containers":[{"name":"a"}]}}`,
			warnings: []string{
				`annotation pod-hardener.io/writable-paths: path "relative" is not absolute; ignored`,
				`path "/a/../b" contains ".."; ignored`,
				`path "/" would hide the whole root filesystem; ignored`,
				`annotation writable-paths.pod-hardener.io/a: path "/x/" is not clean`,
			},
			check: both(
				rorfsWantMounts(c0, map[string]string{"/tmp": "", "/ok": "", "/data": ""}),
				func(t *testing.T, r *Result, out []byte) {
					if n := len(rorfsVolumes(t, out)); n != 3 {
						t.Errorf("%d volumes, want 3", n)
					}
				}),
		},
		{
			name:     "writable-paths annotation for an unknown container is reported",
			pod:      `{"metadata":{"annotations":{"writable-paths.pod-hardener.io/ghost":"/data"}},"spec":{"containers":[{"name":"app"}]}}`,
			warnings: []string{"annotation writable-paths.pod-hardener.io/ghost names no container of this pod"},
			check:    rorfsWantMounts(c0, map[string]string{"/tmp": ""}),
		},
		{
			name: "volume names are distinct for /var/cache-x and /var/cache/x",
			pod:  `{"metadata":{"annotations":{"pod-hardener.io/writable-paths":"/var/cache-x,/var/cache/x"}},"spec":{"containers":[{"name":"app"}]}}`,
			check: func(t *testing.T, r *Result, out []byte) {
				m := rorfsMounts(t, out, c0)
				a, b := m["/var/cache-x"], m["/var/cache/x"]
				if a == "" || b == "" || a == b {
					t.Errorf("volume names %q and %q: want two distinct names", a, b)
				}
				if n := len(rorfsVolumes(t, out)); n != 3 {
					t.Errorf("%d volumes, want 3", n)
				}
			},
		},
		{
			name: "profile emptyDir medium and sizeLimit",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			in: restrictedIn(t, warnA, func(p *profiles.Profile) {
				p.EmptyDir = profiles.EmptyDir{Medium: "Memory", SizeLimit: "64Mi"}
			}),
			want: map[string]any{"spec.volumes.0.emptyDir": map[string]any{"medium": "Memory", "sizeLimit": "64Mi"}},
		},
		{
			name: "profile without writable paths: no volumes",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			in:   restrictedIn(t, warnA, func(p *profiles.Profile) { p.WritablePaths = nil }),
			want: map[string]any{ro: true, "spec.volumes": absent, c0 + ".volumeMounts": absent},
		},
		{
			name: "init, sidecar and ephemeral containers",
			pod:  `{"spec":{"initContainers":[{"name":"i"},{"name":"s","restartPolicy":"Always"}],"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"e"}]}}`,
			want: map[string]any{
				"spec.initContainers.0.securityContext.readOnlyRootFilesystem":      true,
				"spec.initContainers.1.securityContext.readOnlyRootFilesystem":      true,
				"spec.ephemeralContainers.0.securityContext.readOnlyRootFilesystem": true,
				ro: true,
			},
			check: both(
				rorfsWantMounts("spec.initContainers.1", map[string]string{"/tmp": ""}),
				rorfsWantMounts("spec.ephemeralContainers.0", map[string]string{"/tmp": ""})),
		},
		{
			name: "EphemeralOnly: mounts a volume the pod already has",
			pod:  `{"metadata":{"annotations":{"pod-hardener.io/hardened":"restricted"}},"spec":{"volumes":[{"name":"` + tmp + `","emptyDir":{}}],"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:   Input{Profile: profile(t, "restricted"), EphemeralOnly: map[string]bool{"dbg": true}},
			want: map[string]any{
				"spec.ephemeralContainers.0.securityContext.readOnlyRootFilesystem": true,
				c0 + ".securityContext": absent,
				"spec.volumes.1":        absent,
			},
			check: rorfsWantMounts("spec.ephemeralContainers.0", map[string]string{"/tmp": ""}),
		},
		{
			name:     "EphemeralOnly: adds no volume, says so",
			pod:      `{"metadata":{"annotations":{"pod-hardener.io/writable-paths":"/var/run"}},"spec":{"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:       Input{Profile: profile(t, "restricted"), EphemeralOnly: map[string]bool{"dbg": true}},
			want:     map[string]any{"spec.ephemeralContainers.0.securityContext.readOnlyRootFilesystem": true, "spec.volumes": absent, "spec.ephemeralContainers.0.volumeMounts": absent},
			warnings: []string{"ephemeralContainers[dbg]: writable path /tmp not mounted: volumes cannot be added to a running pod"},
		},
		{
			name: "windows pod: no field, no volume",
			pod:  `{"metadata":{"annotations":{"pod-hardener.io/writable-paths":"/data"}},"spec":{"os":{"name":"windows"},"containers":[{"name":"app"}]}}`,
			want: map[string]any{c0 + ".securityContext": absent, c0 + ".volumeMounts": absent, "spec.volumes": absent},
		},
		{
			name: "baseline leaves it alone",
			pod:  `{"spec":{"containers":[{"name":"app"}]}}`,
			in:   Input{Profile: profile(t, "baseline")},
			want: map[string]any{ro: absent, "spec.volumes": absent},
		},
	})
}

// TestVolumeNames: names are valid DNS-1123 labels, deterministic, and
// distinct for paths that slug alike.
func TestVolumeNames(t *testing.T) {
	paths := []string{
		"/tmp", "/var/cache-x", "/var/cache/x", "/var/cache_x", "/VAR/cache/x",
		"/data/" + strings.Repeat("very-long-directory-name/", 6) + "end",
		"/" + strings.Repeat("a", 200), "/-", "/___", "/.cache", "/ü",
	}
	seen := map[string]string{}
	for _, p := range paths {
		n := volumeName(p)
		if errs := validation.IsDNS1123Label(n); len(errs) != 0 {
			t.Errorf("volumeName(%q) = %q: %v", p, n, errs)
		}
		if again := volumeName(p); again != n {
			t.Errorf("volumeName(%q) not deterministic: %q then %q", p, n, again)
		}
		// The names taken when the pod has a volume of that name already.
		if errs := validation.IsDNS1123Label(n + "-" + itoa(9999)); len(errs) != 0 {
			t.Errorf("volumeName(%q) with a suffix: %v", p, errs)
		}
		if q, dup := seen[n]; dup {
			t.Errorf("volumeName(%q) = volumeName(%q) = %q", p, q, n)
		}
		seen[n] = p
	}
}

// A volume named as the engine would name its emptyDir, but with another
// source (here a hostPath of /), belongs to the pod's author: it is never
// mounted for a writable path. The engine's volume takes the next free
// name, which a second pass recognises (ctlRun checks the second pass is
// empty).
func TestWritableVolumeNameTaken(t *testing.T) {
	const c0, c1 = "spec.containers.0", "spec.containers.1"
	tmp := volumeName("/tmp")
	hostRoot := `{"name":"` + tmp + `","hostPath":{"path":"/"}}`
	notMounted := func(name string) func(t *testing.T, r *Result, out []byte) {
		return func(t *testing.T, r *Result, out []byte) {
			t.Helper()
			for _, c := range []string{c0, c1} {
				for p, v := range rorfsMounts(t, out, c) {
					if v == name && p == "/tmp" {
						t.Errorf("%s mounts the pod's own volume %s at %s", c, name, p)
					}
				}
			}
		}
	}
	sized := func(limit string) Input {
		return Input{Profile: profile(t, "restricted", func(p *profiles.Profile) { p.EmptyDir = profiles.EmptyDir{SizeLimit: limit} })}
	}
	ctlRun(t, []ctlCase{
		{
			name: "hostPath of / under the engine's name: a new emptyDir beside it",
			pod:  `{"spec":{"volumes":[` + hostRoot + `],"containers":[{"name":"app"},{"name":"side"}]}}`,
			want: map[string]any{
				"spec.volumes.0":     map[string]any{"name": tmp, "hostPath": map[string]any{"path": "/"}},
				"spec.volumes.1":     map[string]any{"name": tmp + "-2", "emptyDir": map[string]any{}},
				"spec.volumes.2":     absent,
				c0 + ".volumeMounts": []any{map[string]any{"name": tmp + "-2", "mountPath": "/tmp"}},
			},
			warnings:  []string{"writable path /tmp: volume " + tmp + " is not an emptyDir this profile adds; using " + tmp + "-2 instead"},
			noPSS:     "the pod keeps its own hostPath volume: no control removes volumes",
			conflicts: []cf{{"hostPathVolumes", "pod", warnA}},
			check: both(notMounted(tmp),
				rorfsWantMounts(c1, map[string]string{"/tmp": tmp + "-2"})),
		},
		{
			name:  "an emptyDir of another medium is not the engine's either",
			pod:   `{"spec":{"volumes":[{"name":"` + tmp + `","emptyDir":{"medium":"Memory"}}],"containers":[{"name":"app"}]}}`,
			want:  map[string]any{"spec.volumes.1": map[string]any{"name": tmp + "-2", "emptyDir": map[string]any{}}},
			check: rorfsWantMounts(c0, map[string]string{"/tmp": tmp + "-2"}),
		},
		{
			name:      "the engine's name and the next both taken: the one after",
			pod:       `{"spec":{"volumes":[` + hostRoot + `,{"name":"` + tmp + `-2","configMap":{"name":"x"}}],"containers":[{"name":"app"}]}}`,
			want:      map[string]any{"spec.volumes.2": map[string]any{"name": tmp + "-3", "emptyDir": map[string]any{}}},
			check:     rorfsWantMounts(c0, map[string]string{"/tmp": tmp + "-3"}),
			noPSS:     "the pod keeps its own hostPath volume: no control removes volumes",
			conflicts: []cf{{"hostPathVolumes", "pod", warnA}},
		},
		{
			name:  "the engine's own emptyDir is reused",
			pod:   `{"spec":{"volumes":[{"name":"` + tmp + `","emptyDir":{}}],"containers":[{"name":"app"}]}}`,
			want:  map[string]any{"spec.volumes.1": absent},
			check: rorfsWantMounts(c0, map[string]string{"/tmp": tmp}),
		},
		{
			name:  "a size limit compares as a quantity, as the API server writes it back",
			pod:   `{"spec":{"volumes":[{"name":"` + tmp + `","emptyDir":{"sizeLimit":"1Gi"}}],"containers":[{"name":"app"}]}}`,
			in:    sized("1024Mi"),
			want:  map[string]any{"spec.volumes.1": absent},
			check: rorfsWantMounts(c0, map[string]string{"/tmp": tmp}),
		},
		{
			name:  "another size limit is another volume",
			pod:   `{"spec":{"volumes":[{"name":"` + tmp + `","emptyDir":{"sizeLimit":"2Gi"}}],"containers":[{"name":"app"}]}}`,
			in:    sized("1Gi"),
			want:  map[string]any{"spec.volumes.1": map[string]any{"name": tmp + "-2", "emptyDir": map[string]any{"sizeLimit": "1Gi"}}},
			check: rorfsWantMounts(c0, map[string]string{"/tmp": tmp + "-2"}),
		},
		{
			name:       "EphemeralOnly: the pod's own volume is not mounted",
			pod:        `{"spec":{"volumes":[` + hostRoot + `],"containers":[{"name":"app","volumeMounts":[{"name":"` + tmp + `","mountPath":"/host"}]}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:         Input{Profile: profile(t, "restricted"), EphemeralOnly: map[string]bool{"dbg": true}},
			want:       map[string]any{"spec.ephemeralContainers.0.volumeMounts": absent},
			warnings:   []string{"ephemeralContainers[dbg]: writable path /tmp not mounted: volumes cannot be added to a running pod"},
			noWarnings: []string{"instead"},
		},
		{
			name:  "EphemeralOnly: the engine's volume under the next name is found",
			pod:   `{"spec":{"volumes":[` + hostRoot + `,{"name":"` + tmp + `-2","emptyDir":{}}],"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:    Input{Profile: profile(t, "restricted"), EphemeralOnly: map[string]bool{"dbg": true}},
			check: rorfsWantMounts("spec.ephemeralContainers.0", map[string]string{"/tmp": tmp + "-2"}),
		},
	})
}
