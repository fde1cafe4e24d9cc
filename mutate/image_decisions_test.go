package mutate

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

const (
	imgApp   = "registry.example/team/app:1.2"
	imgNode  = "registry.example/node:20"
	imgDB    = "registry.example/db:8"
	imgProxy = "registry.example/proxy:1"
)

// withImages is in with the facts of the given images.
func withImages(in Input, fs ...*ImageFacts) Input {
	in.Images = ImageSet{}
	for _, f := range fs {
		in.Images[f.Ref] = f
	}
	return in
}

func facts(ref, user string, fns ...func(*ImageFacts)) *ImageFacts {
	f := &ImageFacts{Ref: ref, Digest: "sha256:" + strings.Repeat("a", 64), User: user}
	for _, fn := range fns {
		fn(f)
	}
	return f
}

func ids(uid, gid int64) func(*ImageFacts) {
	return func(f *ImageFacts) { f.UID, f.GID = i64(uid), i64(gid) }
}

func exposes(ports ...int32) func(*ImageFacts) {
	return func(f *ImageFacts) { f.ExposedPorts = ports }
}

func volumes(paths ...string) func(*ImageFacts) {
	return func(f *ImageFacts) { f.Volumes = paths }
}

// onePod is a pod of one container "app" running image, with extra JSON
// members spliced into the container and the spec.
func onePod(image, container, spec string) string {
	if container != "" {
		container = "," + container
	}
	if spec != "" {
		spec = "," + spec
	}
	return `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"` + image + `"` + container + `}]` + spec + `}}`
}

// sameAsWithout: with these facts the engine does exactly what it does
// without any, besides the audit annotation.
func sameAsWithout(pod string, in Input) func(t *testing.T, r *Result, out []byte) {
	return func(t *testing.T, r *Result, out []byte) {
		t.Helper()
		plain := in
		plain.Images = nil
		want := apply(t, pod, harden(t, pod, plain).Operations)
		var got, wantDoc map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, &wantDoc); err != nil {
			t.Fatal(err)
		}
		if ann, ok := got["metadata"].(map[string]any)["annotations"].(map[string]any); ok {
			delete(ann, AnnotationImageDecisions)
		}
		if !reflect.DeepEqual(got, wantDoc) {
			t.Errorf("with facts:\n%s\nwithout:\n%s", out, want)
		}
	}
}

func TestImageDecisions(t *testing.T) {
	const c0 = "spec.containers.0.securityContext"
	const c1 = "spec.containers.1.securityContext"
	const psc = "spec.securityContext"
	r := Input{Profile: profile(t, "restricted")}
	rootWith := func(ri profiles.RootImages, fns ...func(*profiles.Profile)) Input {
		return Input{Profile: profile(t, "restricted", append([]func(*profiles.Profile){func(p *profiles.Profile) { p.RootImages = ri }}, fns...)...)}
	}
	lookupFailed := withImages(r, &ImageFacts{Ref: imgApp, Err: "GET https://registry.example/v2/team/app/manifests/1.2: 503 Service Unavailable"})
	numeric := withImages(r, facts(imgApp, "1000", ids(1000, 1000), exposes(8080)))
	sysctl := func(v string) []any {
		return []any{map[string]any{"name": SysctlUnprivilegedPortStart, "value": v}}
	}
	ctlRun(t, []ctlCase{
		{
			name:     "lookup failed: a warning naming container, image and reason; hardened as today",
			pod:      onePod(imgApp, "", ""),
			in:       lookupFailed,
			warnings: []string{`containers[app]: image "` + imgApp + `" could not be looked up (GET https://registry.example/v2/team/app/manifests/1.2: 503 Service Unavailable): hardened without image facts`},
			ann:      map[string]any{AnnotationImageDecisions: "lookup-failed@app"},
			want:     map[string]any{c0 + ".readOnlyRootFilesystem": true, psc + ".runAsNonRoot": true, c0 + ".runAsUser": absent},
			check:    sameAsWithout(onePod(imgApp, "", ""), lookupFailed),
		},
		{
			name:       "numeric non-root USER: nothing extra",
			pod:        onePod(imgApp, "", ""),
			in:         numeric,
			ann:        map[string]any{AnnotationImageDecisions: absent},
			noWarnings: []string{imgApp},
			check:      sameAsWithout(onePod(imgApp, "", ""), numeric),
		},
		{
			name:       "no facts for this image: nothing extra",
			pod:        onePod(imgApp, "", ""),
			in:         withImages(r, facts(imgDB, "")),
			ann:        map[string]any{AnnotationImageDecisions: absent},
			noWarnings: []string{imgDB},
			want:       map[string]any{c0 + ".runAsUser": absent},
		},
		{
			name:     "named USER resolved: its uid and gid become runAsUser and runAsGroup",
			pod:      onePod(imgNode, "", ""),
			in:       withImages(r, facts(imgNode, "node", ids(1000, 1001))),
			want:     map[string]any{c0 + ".runAsUser": 1000, c0 + ".runAsGroup": 1001, psc + ".runAsNonRoot": true, psc + ".fsGroup": absent},
			ann:      map[string]any{AnnotationImageDecisions: "user=1000:1001@app"},
			warnings: []string{`containers[app]: image "` + imgNode + `" runs as the named user "node": runAsUser=1000 and runAsGroup=1001 set, so the kubelet can check it is not root`},
		},
		{
			name:  "named USER resolved, the pod sets runAsUser: the container inherits it, nothing set",
			pod:   onePod(imgNode, "", `"securityContext":{"runAsUser":2000}`),
			in:    withImages(r, facts(imgNode, "node", ids(1000, 1001))),
			noOps: []string{"/spec/containers/0/securityContext/runAsUser", "/spec/containers/0/securityContext/runAsGroup"},
			ann:   map[string]any{AnnotationImageDecisions: absent},
		},
		{
			name:  "named USER resolved, the pod sets runAsGroup: only runAsUser",
			pod:   onePod(imgNode, "", `"securityContext":{"runAsGroup":3000}`),
			in:    withImages(r, facts(imgNode, "node", ids(1000, 1001))),
			want:  map[string]any{c0 + ".runAsUser": 1000, c0 + ".runAsGroup": absent},
			ann:   map[string]any{AnnotationImageDecisions: "user=1000@app"},
			noOps: []string{"/spec/securityContext/runAsGroup"},
		},
		{
			name: "named USER unresolved: the prediction, nothing set",
			pod:  onePod(imgNode, "", ""),
			in:   withImages(r, facts(imgNode, "node", func(f *ImageFacts) { f.UserErr = "no /etc/passwd in the image" })),
			warnings: []string{`container app will not start: image "` + imgNode + `" has the non-numeric user "node", which could not be resolved to a uid ` +
				`(no /etc/passwd in the image); set runAsUser`},
			want: map[string]any{c0 + ".runAsUser": absent},
			ann:  map[string]any{AnnotationImageDecisions: "user-unresolved@app"},
		},
		{
			name:     "named USER that is uid 0: root, assigned",
			pod:      onePod(imgNode, "", ""),
			in:       withImages(r, facts(imgNode, "admin", ids(0, 0))),
			want:     map[string]any{c0 + ".runAsUser": 65532, c0 + ".runAsGroup": 65532, psc + ".fsGroup": 65532},
			ann:      map[string]any{AnnotationImageDecisions: "fsGroup=65532@pod,root-assign=65532:65532@app"},
			warnings: []string{`containers[app]: image "` + imgNode + `" runs as root, which runAsNonRoot refuses: runAsUser=65532 and runAsGroup=65532 set (profile "restricted", rootImages: assign)`},
		},
		{
			name: "root image (no USER): assign with the defaults, fsGroup so volumes stay writable",
			pod:  onePod(imgApp, "", ""),
			in:   withImages(r, facts(imgApp, "")),
			want: map[string]any{c0 + ".runAsUser": 65532, c0 + ".runAsGroup": 65532, psc + ".fsGroup": 65532, psc + ".runAsNonRoot": true},
			ann:  map[string]any{AnnotationImageDecisions: "fsGroup=65532@pod,root-assign=65532:65532@app"},
			warnings: []string{
				`pod: fsGroup=65532 set, so the volumes stay writable for the user given to root images`,
				`hardened (profile restricted): set runAsUser for a root image on containers[app]`,
			},
		},
		{
			name: "root image USER 0:0: assign with the profile's IDs; the pod's fsGroup stands",
			pod:  onePod(imgApp, "", `"securityContext":{"fsGroup":7}`),
			in: withImages(rootWith(profiles.RootImagesAssign, func(p *profiles.Profile) { p.RunAsUser, p.RunAsGroup, p.FSGroup = i64(10001), i64(10002), i64(10003) }),
				facts(imgApp, "0:0")),
			want:  map[string]any{c0 + ".runAsUser": 10001, c0 + ".runAsGroup": 10002, psc + ".fsGroup": 7, psc + ".runAsUser": absent},
			ann:   map[string]any{AnnotationImageDecisions: "root-assign=10001:10002@app"},
			noOps: []string{"/spec/securityContext/fsGroup"},
		},
		{
			name: "root image USER root, runAsUser control on with IDs: the pod's IDs apply, nothing set twice",
			pod:  onePod(imgApp, "", ""),
			in: withImages(rootWith(profiles.RootImagesAssign, func(p *profiles.Profile) {
				p.Controls[profiles.RunAsUser] = profiles.ModeDefault
				p.RunAsUser, p.RunAsGroup, p.FSGroup = i64(10001), i64(10002), i64(10003)
			}), facts(imgApp, "root")),
			want: map[string]any{psc + ".runAsUser": 10001, psc + ".runAsGroup": 10002, psc + ".fsGroup": 10003, c0 + ".runAsUser": absent, c0 + ".runAsGroup": absent},
			ann:  map[string]any{AnnotationImageDecisions: absent},
		},
		{
			name:       "root image, the manifest sets runAsUser: nothing",
			pod:        onePod(imgApp, `"securityContext":{"runAsUser":1000}`, ""),
			in:         withImages(r, facts(imgApp, "")),
			want:       map[string]any{c0 + ".runAsUser": 1000, c0 + ".runAsGroup": absent, psc + ".fsGroup": absent},
			ann:        map[string]any{AnnotationImageDecisions: absent},
			noWarnings: []string{imgApp},
		},
		{
			name:      "root image, the manifest keeps runAsUser 0 (warn): runAsNonRoot is not in force for it, nothing",
			pod:       onePod(imgApp, `"securityContext":{"runAsUser":0}`, ""),
			in:        withImages(r, facts(imgApp, "")),
			conflicts: []cf{{profiles.RunAsNonRoot, "containers[app]", warnA}},
			want:      map[string]any{c0 + ".runAsUser": 0, psc + ".fsGroup": absent},
			ann:       map[string]any{AnnotationImageDecisions: absent},
		},
		{
			name: "root image under rootImages: warn: admitted, the prediction",
			pod:  onePod(imgApp, "", ""),
			in:   withImages(rootWith(profiles.RootImagesWarn), facts(imgApp, "")),
			want: map[string]any{c0 + ".runAsUser": absent, psc + ".fsGroup": absent, psc + ".runAsNonRoot": true},
			ann:  map[string]any{AnnotationImageDecisions: "root-warn@app"},
			warnings: []string{`container app will not start: image "` + imgApp + `" runs as root and runAsNonRoot is true (profile "restricted", rootImages: warn); ` +
				`set securityContext.runAsUser to a non-zero uid the image can run as, or use an image with a non-root USER`},
		},
		{
			name:   "root image under rootImages: deny: rejected, naming the image and the fix",
			pod:    onePod(imgApp, "", ""),
			in:     withImages(rootWith(profiles.RootImagesDeny), facts(imgApp, "")),
			denied: true,
			message: []string{`pod "p" rejected: container app: image "` + imgApp + `" runs as root, which runAsNonRoot refuses (profile "restricted", rootImages: deny); ` +
				`set securityContext.runAsUser to a non-zero uid the image can run as, or use an image with a non-root USER`},
			check: func(t *testing.T, r *Result, _ []byte) {
				if len(r.ImageDecisions) != 1 || r.ImageDecisions[0] != "root-deny@app" {
					t.Errorf("ImageDecisions = %q", r.ImageDecisions)
				}
			},
		},
		{
			name: "root image, runAsNonRoot exempted: no user decision",
			pod: `{"metadata":{"name":"p","annotations":{"pod-hardener.io/exempt-controls":"runAsNonRoot"}},` +
				`"spec":{"containers":[{"name":"app","image":"` + imgApp + `"}]}}`,
			in:       withImages(Input{Profile: profile(t, "restricted"), Auth: authorized}, facts(imgApp, "", exposes(80))),
			want:     map[string]any{c0 + ".runAsUser": absent, psc + ".sysctls": absent, psc + ".runAsNonRoot": absent},
			ann:      map[string]any{AnnotationImageDecisions: absent},
			exempted: []string{"runAsNonRoot@pod"},
			noPSS:    "runAsNonRoot is exempt",
		},
		{
			name: "baseline (runAsNonRoot off): a root image is left as it is",
			pod:  onePod(imgApp, "", ""),
			in:   withImages(Input{Profile: profile(t, "baseline")}, facts(imgApp, "", exposes(80), volumes("/data"))),
			want: map[string]any{c0 + ".runAsUser": absent, psc + ".sysctls": absent, "spec.volumes": absent},
			ann:  map[string]any{AnnotationImageDecisions: absent},
		},
		{
			name:     "low exposed port, non-root image: the sysctl at that port",
			pod:      onePod(imgApp, "", ""),
			in:       withImages(r, facts(imgApp, "101", exposes(8443, 80))),
			want:     map[string]any{psc + ".sysctls": sysctl("80")},
			ann:      map[string]any{AnnotationImageDecisions: "unprivileged-port-start=80@pod"},
			warnings: []string{`pod: sysctl net.ipv4.ip_unprivileged_port_start=80 set, so containers[app], running as non-root, can bind port 80`},
		},
		{
			name: "root image assigned and listening on 443: assign and the sysctl",
			pod:  onePod(imgApp, "", ""),
			in:   withImages(r, facts(imgApp, "", exposes(443))),
			want: map[string]any{c0 + ".runAsUser": 65532, psc + ".sysctls": sysctl("443")},
			ann:  map[string]any{AnnotationImageDecisions: "fsGroup=65532@pod,root-assign=65532:65532@app,unprivileged-port-start=443@pod"},
		},
		{
			name: "the lowest port over containers, a spec containerPort counted, existing sysctls appended to",
			pod: `{"metadata":{"name":"p"},"spec":{"securityContext":{"sysctls":[{"name":"net.ipv4.tcp_syncookies","value":"1"}]},"containers":[` +
				`{"name":"app","image":"` + imgApp + `"},` +
				`{"name":"proxy","image":"` + imgProxy + `","ports":[{"containerPort":8080},{"containerPort":80}]}]}}`,
			in: withImages(r, facts(imgApp, "1000", exposes(443)), facts(imgProxy, "1000")),
			want: map[string]any{psc + ".sysctls": []any{map[string]any{"name": "net.ipv4.tcp_syncookies", "value": "1"},
				map[string]any{"name": SysctlUnprivilegedPortStart, "value": "80"}}},
			ops:      []string{"add /spec/securityContext/sysctls/-"},
			warnings: []string{"so containers[app], containers[proxy], running as non-root, can bind port 80"},
		},
		{
			name: "a low port on a root image under warn: no sysctl (the container does not start as non-root)",
			pod:  onePod(imgApp, "", ""),
			in:   withImages(rootWith(profiles.RootImagesWarn), facts(imgApp, "", exposes(80))),
			want: map[string]any{psc + ".sysctls": absent},
			ann:  map[string]any{AnnotationImageDecisions: "root-warn@app"},
		},
		{
			name:      "hostNetwork with a low port: no sysctl, a warning",
			pod:       onePod(imgApp, "", `"hostNetwork":true`),
			in:        withImages(r, facts(imgApp, "1000", exposes(80))),
			conflicts: []cf{{profiles.HostNamespaces, "pod", warnA}},
			want:      map[string]any{psc + ".sysctls": absent},
			warnings:  []string{"containers[app] run as non-root and listen on port 80, on the host network: they can bind it only if the node's net.ipv4.ip_unprivileged_port_start allows it"},
			ann:       map[string]any{AnnotationImageDecisions: absent},
		},
		{
			name:      "hostNetwork enforced off: the sysctl",
			pod:       onePod(imgApp, "", `"hostNetwork":true`),
			in:        withImages(restrictedIn(t, enforceA), facts(imgApp, "1000", exposes(80))),
			conflicts: []cf{{profiles.HostNamespaces, "pod", enforceA}},
			want:      map[string]any{"spec.hostNetwork": false, psc + ".sysctls": sysctl("80")},
			lost:      []string{"/spec/hostNetwork"},
		},
		{
			name:       "the pod sets the sysctl already: its value stands, and the sysctls control keeps it",
			pod:        onePod(imgApp, "", `"securityContext":{"sysctls":[{"name":"net.ipv4.ip_unprivileged_port_start","value":"1000"}]}`),
			in:         withImages(restrictedIn(t, enforceA), facts(imgApp, "1000", exposes(80))),
			want:       map[string]any{psc + ".sysctls": sysctl("1000")},
			noOps:      []string{"/spec/securityContext/sysctls"},
			noWarnings: []string{"can bind"},
		},
		{
			name: "image VOLUMEs: writable emptyDirs under a read-only root",
			pod:  onePod(imgDB, "", ""),
			in:   withImages(r, facts(imgDB, "999", volumes("/var/lib/mysql", "/data/", "/tmp"))),
			check: both(rorfsWantMounts("spec.containers.0", map[string]string{"/tmp": "", "/var/lib/mysql": "", "/data": ""}),
				func(t *testing.T, r *Result, out []byte) {
					if v := ctlAnn(t, out, AnnotationImageDecisions); v != "volume=/data@app,volume=/var/lib/mysql@app" {
						t.Errorf("annotation %v", v)
					}
				}),
			warnings: []string{`containers[app]: writable emptyDir ph-var-lib-mysql-`, `mounted at /var/lib/mysql, a VOLUME of image "` + imgDB + `", since the root filesystem is read-only`},
		},
		{
			name: "image VOLUME already mounted, at the path or above it: no emptyDir",
			pod: onePod(imgDB, `"volumeMounts":[{"name":"state","mountPath":"/var/lib/"},{"name":"cache","mountPath":"/cache"}]`,
				`"volumes":[{"name":"state","persistentVolumeClaim":{"claimName":"db"}},{"name":"cache","emptyDir":{}}]`),
			in:    withImages(r, facts(imgDB, "999", volumes("/var/lib/mysql", "/cache"))),
			check: rorfsWantMounts("spec.containers.0", map[string]string{"/tmp": "", "/var/lib/": "state", "/cache": "cache"}),
			ann:   map[string]any{AnnotationImageDecisions: absent},
		},
		{
			name: "image VOLUMEs that are no writable path: a warning, the others mounted",
			pod:  onePod(imgDB, "", ""),
			in:   withImages(r, facts(imgDB, "999", volumes("relative", "/", "/a:b", "/ok"))),
			warnings: []string{`containers[app]: 3 VOLUME(s) of image "` + imgDB + `" not mounted: path "relative" is not absolute; path "/" would hide the whole root filesystem; ` +
				`path "/a:b" contains a comma, colon or control character`},
			ann: map[string]any{AnnotationImageDecisions: "volume=/ok@app"},
		},
		{
			name: "readOnlyRootFilesystem exempted for the container: no VOLUME mount",
			pod: `{"metadata":{"name":"p","annotations":{"exempt.pod-hardener.io/app":"readOnlyRootFilesystem"}},` +
				`"spec":{"containers":[{"name":"app","image":"` + imgDB + `"},{"name":"side","image":"` + imgDB + `"}]}}`,
			in:       withImages(Input{Profile: profile(t, "restricted"), Auth: authorized}, facts(imgDB, "999", volumes("/data"))),
			check:    both(rorfsWantMounts("spec.containers.0", map[string]string{}), rorfsWantMounts("spec.containers.1", map[string]string{"/tmp": "", "/data": ""})),
			ann:      map[string]any{AnnotationImageDecisions: "volume=/data@side"},
			exempted: []string{"readOnlyRootFilesystem@app"},
			want:     map[string]any{c0 + ".readOnlyRootFilesystem": absent, c1 + ".readOnlyRootFilesystem": true},
		},
		{
			name:      "readOnlyRootFilesystem false kept: no VOLUME mount",
			pod:       onePod(imgDB, `"securityContext":{"readOnlyRootFilesystem":false}`, ""),
			in:        withImages(r, facts(imgDB, "999", volumes("/data"))),
			conflicts: []cf{{profiles.ReadOnlyRootFilesystem, "containers[app]", warnA}},
			want:      map[string]any{"spec.volumes": absent},
			ann:       map[string]any{AnnotationImageDecisions: absent},
		},
		{
			name: "Windows pod: no image decision",
			pod:  `{"metadata":{"name":"p"},"spec":{"os":{"name":"windows"},"containers":[{"name":"app","image":"` + imgApp + `"}]}}`,
			in:   withImages(r, facts(imgApp, "", exposes(80), volumes("/data")), facts(imgDB, "", func(f *ImageFacts) { f.Err = "x" })),
			ann:  map[string]any{AnnotationImageDecisions: absent},
			want: map[string]any{c0 + ".runAsUser": absent, psc + ".sysctls": absent, "spec.volumes": absent},
		},
		{
			name: "an init container and a container, each decided by its own image",
			pod: `{"metadata":{"name":"p"},"spec":{"initContainers":[{"name":"init","image":"` + imgApp + `"}],` +
				`"containers":[{"name":"app","image":"` + imgNode + `"}]}}`,
			in: withImages(r, facts(imgApp, ""), facts(imgNode, "node", ids(1000, 1000))),
			want: map[string]any{"spec.initContainers.0.securityContext.runAsUser": 65532, c0 + ".runAsUser": 1000,
				psc + ".fsGroup": 65532},
			ann: map[string]any{AnnotationImageDecisions: "fsGroup=65532@pod,root-assign=65532:65532@init,user=1000:1000@app"},
		},
		{
			name: "an UPDATE of ephemeral containers: the new one's user only, nothing at pod level",
			pod: `{"metadata":{"name":"p"},"spec":{"securityContext":{"runAsNonRoot":true},"containers":[{"name":"app","image":"` + imgApp + `"}],` +
				`"ephemeralContainers":[{"name":"dbg","image":"` + imgApp + `"}]}}`,
			in:   withImages(Input{Profile: profile(t, "restricted"), EphemeralOnly: map[string]bool{"dbg": true}}, facts(imgApp, "", exposes(80))),
			want: map[string]any{"spec.ephemeralContainers.0.securityContext.runAsUser": 65532, psc + ".fsGroup": absent, psc + ".sysctls": absent, c0 + ".securityContext": absent},
			ann:  map[string]any{AnnotationImageDecisions: absent},
		},
		{
			name: "decisions of an earlier pass are kept in the annotation, new ones added",
			pod: `{"metadata":{"name":"p","annotations":{"pod-hardener.io/image-decisions":"user=1000:1000@app"}},"spec":{"securityContext":{"runAsNonRoot":true},` +
				`"containers":[{"name":"app","image":"` + imgNode + `","securityContext":{"runAsUser":1000,"runAsGroup":1000}},{"name":"proxy","image":"` + imgProxy + `"}]}}`,
			in:   withImages(r, facts(imgNode, "node", ids(1000, 1000)), facts(imgProxy, "")),
			want: map[string]any{c1 + ".runAsUser": 65532},
			ann:  map[string]any{AnnotationImageDecisions: "fsGroup=65532@pod,root-assign=65532:65532@proxy,user=1000:1000@app"},
			lost: []string{"/metadata/annotations/" + AnnotationImageDecisions},
		},
	})
}

// TestImageDecisionsReportMode: report mode changes nothing, rejects
// nothing, and says as "would" every decision harden mode makes.
func TestImageDecisionsReportMode(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  string
		in   Input
	}{
		{"assign, sysctl, volumes", onePod(imgApp, "", ""), withImages(Input{}, facts(imgApp, "", exposes(80), volumes("/data")))},
		{"named user", onePod(imgNode, "", ""), withImages(Input{}, facts(imgNode, "node", ids(1000, 1000)))},
		{"deny", onePod(imgApp, "", ""), withImages(Input{Profile: profile(t, "restricted", func(p *profiles.Profile) { p.RootImages = profiles.RootImagesDeny })}, facts(imgApp, ""))},
		{"warn", onePod(imgApp, "", ""), withImages(Input{Profile: profile(t, "restricted", func(p *profiles.Profile) { p.RootImages = profiles.RootImagesWarn })}, facts(imgApp, ""))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := harden(t, tc.pod, tc.in)
			in := tc.in
			in.Report = true
			r := harden(t, tc.pod, in)
			if len(r.Operations) != 0 || r.Denied || r.WouldDeny != h.Denied {
				t.Fatalf("report mode: %d operations, denied %v, would deny %v (harden mode denied %v)", len(r.Operations), r.Denied, r.WouldDeny, h.Denied)
			}
			if len(h.ImageDecisions) == 0 || strings.Join(r.ImageDecisions, ",") != strings.Join(h.ImageDecisions, ",") {
				t.Errorf("decisions in report mode %q, harden mode %q", r.ImageDecisions, h.ImageDecisions)
			}
			all := strings.Join(r.Warnings, "\n")
			for _, w := range r.Warnings {
				if (strings.Contains(w, " set") || strings.Contains(w, "mounted at") || strings.Contains(w, "will not start")) && !strings.Contains(w, "would") {
					t.Errorf("a report mode warning says it acted: %q", w)
				}
			}
			if h.Denied && !strings.Contains(all, "hardening would refuse this pod: "+h.Message) {
				t.Errorf("warnings do not say the pod would be refused:\n%s", all)
			}
			if tc.name == "warn" && !strings.Contains(all, "container app would not start once hardened: image") {
				t.Errorf("no prediction in report mode:\n%s", all)
			}
		})
	}
}

// TestImageDecisionsIdempotentAfterSidecar: a later webhook injects a
// sidecar running a root image; the next pass decides for it alone and
// the pass after that is empty.
func TestImageDecisionsIdempotentAfterSidecar(t *testing.T) {
	in := withImages(Input{Profile: profile(t, "restricted")}, facts(imgNode, "node", ids(1000, 1000), exposes(3000)), facts(imgProxy, "", exposes(443), volumes("/var/cache/proxy")))
	pod := onePod(imgNode, "", "")
	out := apply(t, pod, harden(t, pod, in).Operations)
	var doc map[string]any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	spec := doc["spec"].(map[string]any)
	spec["containers"] = append(spec["containers"].([]any), map[string]any{"name": "proxy", "image": imgProxy})
	injected, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	r := harden(t, string(injected), in)
	again := apply(t, string(injected), r.Operations)
	if d := lost(t, injected, again); len(d) != 0 && !(len(d) == 1 && d[0] == "/metadata/annotations/"+AnnotationImageDecisions) {
		t.Errorf("lost %v", d)
	}
	want := "fsGroup=65532@pod,root-assign=65532:65532@proxy,unprivileged-port-start=443@pod,user=1000:1000@app,volume=/var/cache/proxy@proxy"
	if v := ctlAnn(t, again, AnnotationImageDecisions); v != want {
		t.Errorf("annotation %v, want %s", v, want)
	}
	if f := restrictedFailures(t, again); len(f) != 0 {
		t.Errorf("fails restricted: %v", f)
	}
	mustBeIdempotent(t, again, in)
}

// TestMayHoldLowPort: a ports list is decoded when it may hold a port
// below 1024, and only then.
func TestMayHoldLowPort(t *testing.T) {
	for in, want := range map[string]bool{
		`[{"containerPort":8080}]`:                          false,
		`[{"containerPort": 1024,"protocol":"TCP"}]`:        false,
		`[{"containerPort":8080},{"containerPort" : 1023}]`: true,
		`[{"containerPort":80}]`:                            true,
		`[{"containerPort":"PORT"}]`:                        true,
		`[{"name":"http"}]`:                                 false,
		`[{"containerPort":65535}]`:                         false,
		`[{"containerPort":123456}]`:                        false,
	} {
		if got := mayHoldLowPort([]byte(in)); got != want {
			t.Errorf("mayHoldLowPort(%s) = %v, want %v", in, got, want)
		}
	}
}

// TestImageNotAString: an image that is not a JSON string (an offline
// manifest's mistake) reads as none: hardened, no facts looked for, no
// decoding error.
func TestImageNotAString(t *testing.T) {
	in := withImages(Input{Profile: profile(t, "restricted")}, facts("", ""))
	for _, img := range []string{`5`, `null`, `{"name":"x"}`, `["a"]`, `true`} {
		raw := `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":` + img + `}]}}`
		r := harden(t, raw, in)
		if len(r.ImageDecisions) != 0 {
			t.Errorf("image %s: decisions %q from the facts of \"\"", img, r.ImageDecisions)
		}
		out := apply(t, raw, r.Operations)
		if get(t, out, "spec.containers.0.securityContext.readOnlyRootFilesystem") != true {
			t.Errorf("image %s: not hardened: %s", img, out)
		}
	}
}

// TestOddPortsListNotRefused: a ports list read only for its containerPorts
// does not get a pod refused when it is malformed; one with a hostPort is
// still read strictly, as before.
func TestOddPortsListNotRefused(t *testing.T) {
	in := Input{Profile: profile(t, "restricted")}
	for _, ports := range []string{`[{"containerPort":80},5]`, `[{"containerPort":80,"name":7}]`, `{"containerPort":80}`} {
		raw := `{"spec":{"containers":[{"name":"app","ports":` + ports + `}]}}`
		if _, err := hardenRaw(context.Background(), []byte(raw), in); err != nil {
			t.Errorf("ports %s: %v", ports, err)
		}
	}
	raw := `{"spec":{"containers":[{"name":"app","ports":[{"containerPort":80,"hostPort":"x"}]}]}}`
	if _, err := hardenRaw(context.Background(), []byte(raw), in); err == nil {
		t.Errorf("a hostPort that is not a number was read")
	}
}

// TestManyImageVolumesBounded: an image listing thousands of VOLUMEs gets
// MaxWritablePaths of them mounted, one warning for the rest, and no
// rejection.
func TestManyImageVolumesBounded(t *testing.T) {
	vols := make([]string, 10000)
	for i := range vols {
		vols[i] = "/v/" + itoa(i)
	}
	in := withImages(Input{Profile: profile(t, "restricted")}, facts(imgDB, "999", volumes(vols...)))
	pod := onePod(imgDB, "", "")
	r := harden(t, pod, in)
	if r.Denied {
		t.Fatalf("denied: %s", r.Message)
	}
	out := apply(t, pod, r.Operations)
	if n := len(rorfsMounts(t, out, "spec.containers.0")); n != MaxWritablePaths {
		t.Errorf("%d mounts, want %d (/tmp and %d VOLUMEs)", n, MaxWritablePaths, MaxWritablePaths-1)
	}
	ctlWarnings(t, r, []string{`containers[app]: 9937 VOLUME(s) of image "` + imgDB + `" not mounted: the pod has 64 writable paths, the most it may have`}, nil)
	mustBeIdempotent(t, out, in)
}

// TestRootImageIDs: the IDs of rootImages: assign, each defaulting to the
// one before it.
func TestRootImageIDs(t *testing.T) {
	for _, c := range []struct {
		u, g, fs     *int64
		wu, wg, wfsg int64
	}{
		{nil, nil, nil, 65532, 65532, 65532},
		{i64(10001), nil, nil, 10001, 10001, 10001},
		{i64(10001), i64(20), nil, 10001, 20, 20},
		{nil, nil, i64(7), 65532, 65532, 7},
		{i64(1), i64(2), i64(3), 1, 2, 3},
	} {
		p := &profiles.Profile{RunAsUser: c.u, RunAsGroup: c.g, FSGroup: c.fs}
		if u, g, fs := rootImageIDs(p); u != c.wu || g != c.wg || fs != c.wfsg {
			t.Errorf("profile %v/%v/%v: %d/%d/%d, want %d/%d/%d", c.u, c.g, c.fs, u, g, fs, c.wu, c.wg, c.wfsg)
		}
	}
}
