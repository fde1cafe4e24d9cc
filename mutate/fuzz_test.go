package mutate

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// FuzzHarden feeds arbitrary bytes to the engine, as the offline CLI may
// (PITFALLS.md: placeholders where integers belong, explicit nulls, fields
// from newer API versions). Properties, for each built-in way of handling
// conflicts:
//   - Harden never panics;
//   - on error it returns no result;
//   - a denied pod has no operations;
//   - on success the input is a JSON object, the patch applies to it with
//     evanphx/json-patch, and a second pass over the output is empty;
//   - the patch is no longer than the bound the engine counted for it.
//
// The seeds below and in testdata/fuzz/FuzzHarden run with every `go test`;
// explore further with
//
//	go test ./mutate/ -run XXX -fuzz FuzzHarden -fuzztime 60s
func FuzzHarden(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","xFuture":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}]}}`))
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","xFuture":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}]}}`))
	// Every field the controls named after PSS checks read.
	f.Add([]byte(finding6))
	f.Add([]byte(`{"metadata":{"annotations":{"container.apparmor.security.beta.kubernetes.io/a":"unconfined"}},"spec":{"hostUsers":false,` +
		`"securityContext":{"seLinuxOptions":{"type":"spc_t","user":"u","role":"r"},"sysctls":[{"name":"kernel.msgmax"},{"name":"net.ipv4.tcp_syncookies"},{"name":"vm.x"}],"windowsOptions":{"hostProcess":true}},` +
		`"volumes":[{"name":"n","nfs":{}},{"name":"e"}],"containers":[{"name":"a","securityContext":{"procMount":"Unmasked","appArmorProfile":{"type":"Unconfined"}},` +
		`"ports":[{"containerPort":1,"host\u0050ort":2},{"hostPort":3}],"livenessProbe":{"tcpSocket":{"host":"h"}},"lifecycle":{"preStop":{"httpGet":{"host":"h"}}}}]}}`))
	for i := uint64(0); i < 4; i++ {
		g := &propGen{r: rand.New(rand.NewPCG(propSeed, i))}
		f.Add(g.pod())
	}
	modes := []*profiles.Profile{
		profile(f, "restricted"),
		profile(f, "restricted", onConflict(profiles.ActionEnforce)),
		profile(f, "restricted", onConflict(profiles.ActionDeny)),
		profile(f, "baseline"),
	}
	// An UPDATE of pods/ephemeralcontainers adding containers of these names.
	ephemeral := map[string]bool{"debug": true, "e0": true, "a": true, "": true}
	// Image facts for the images the seeds name: root with odd ports and
	// VOLUMEs (assign), a named user.
	images := ImageSet{
		propImage: {Ref: propImage, User: "", ExposedPorts: []int32{80, 0, -1, 65535}, Volumes: []string{"/data", "/", "rel", "/tmp/../x", "/a:b", "/tmp", "/var/run"}},
		"nginx":   {Ref: "nginx", User: "node", UID: i64(1000), GID: i64(1000), ExposedPorts: []int32{443}, Volumes: []string{"/var/cache/nginx/"}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range modes {
			fuzzCheck(t, data, Input{Profile: p})
		}
		fuzzCheck(t, data, Input{Profile: modes[1], Images: images})
		fuzzCheck(t, data, Input{Profile: modes[0], EphemeralOnly: ephemeral})
	})
}

var fuzzSeeds = []string{
	// Valid pods.
	plainPodForFuzz,
	`{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","annotations":{"pod-hardener.io/writable-paths":"/var/cache,/var/run","writable-paths.pod-hardener.io/app":"/data","a/b~c":"x"}},"spec":{"initContainers":[{"name":"sidecar","restartPolicy":"Always"}],"containers":[{"name":"app","securityContext":{"privileged":true,"allowPrivilegeEscalation":true,"capabilities":{"add":["SYS_ADMIN","NET_BIND_SERVICE"],"drop":["NET_RAW"]},"runAsUser":0,"seccompProfile":{"type":"Unconfined"},"readOnlyRootFilesystem":false},"volumeMounts":[{"name":"t","mountPath":"/tmp"}]}],"ephemeralContainers":[{"name":"debug"}],"volumes":[{"name":"t","emptyDir":{}}],"hostNetwork":true,"hostPID":true,"hostIPC":true,"securityContext":{"runAsNonRoot":false,"runAsUser":0}}}`,
	`{"spec":{"containers":[{"name":"a"}],"ephemeralContainers":[{"name":"e0","targetContainerName":"a"},{"name":"debug","securityContext":{"privileged":true}}]}}`,
	`{"spec":{"hostUsers":false,"containers":[{"name":"a","securityContext":{"runAsUser":0}}]}}`,
	`{"metadata":{"annotations":{"pod-hardener.io/exempt":"true","pod-hardener.io/exempt-controls":"nope,privileged","exempt.pod-hardener.io/ghost":"capabilities"}},"spec":{"containers":[{"name":"a"}]}}`,
	// Windows.
	`{"metadata":{"name":"win"},"spec":{"os":{"name":"windows"},"securityContext":{"windowsOptions":{"runAsUserName":"ContainerUser"}},"containers":[{"name":"a","image":"mcr.microsoft.com/windows/nanoserver:ltsc2022"}]}}`,
	`{"spec":{"os":{"name":"windows"},"hostNetwork":true,"securityContext":{"windowsOptions":{"hostProcess":true,"runAsUserName":"NT AUTHORITY\\SYSTEM"}},"containers":[{"name":"a"}]}}`,
	// Null-heavy.
	`{"metadata":null,"spec":{"securityContext":null,"os":null,"volumes":null,"initContainers":null,"ephemeralContainers":null,"hostNetwork":null,"containers":[{"name":null,"securityContext":{"privileged":null,"allowPrivilegeEscalation":null,"capabilities":{"add":null,"drop":null},"seccompProfile":null,"runAsUser":null},"volumeMounts":null}]}}`,
	`{"metadata":{"annotations":null,"creationTimestamp":null},"spec":{"containers":[{"name":"a","securityContext":null}],"securityContext":{"seccompProfile":null,"runAsNonRoot":null}}}`,
	// Broken JSON and non-objects.
	``, `{`, `{"spec":`, `{"spec":{"containers":[{"name":"a"}`, `null`, `[]`, `"pod"`, `42`, `{}`,
	`{"spec":null}`, `{"spec":{}}`, `{"spec":{}}x`, `{"spec":{}}{"spec":{}}`, "\xef\xbb\xbf{\"spec\":{}}",
	// Huge numbers and placeholders where integers belong.
	`{"spec":{"securityContext":{"runAsUser":99999999999999999999999},"containers":[]}}`,
	`{"spec":{"containers":[{"name":"a","securityContext":{"runAsUser":1e400}}]}}`,
	`{"spec":{"containers":[{"name":"a","securityContext":{"runAsUser":-1}}]}}`,
	`{"spec":{"containers":[{"name":"a","securityContext":{"runAsUser":1.5}}]}}`,
	`{"spec":{"containers":[{"name":"a","ports":[{"containerPort":"PORT"}],"xFuture":1e999999}]}}`,
	// Wrong types.
	`{"spec":{"containers":"x"}}`,
	`{"spec":{"containers":[{"name":"a","securityContext":[]}]}}`,
	`{"spec":{"containers":[{"name":"a","securityContext":{"privileged":"true"}}]}}`,
	`{"spec":{"containers":[{"name":7}]}}`,
	`{"spec":{"hostNetwork":"yes","containers":[]}}`,
	`{"metadata":"x","spec":{}}`,
	`{"metadata":{"annotations":{"a":1}},"spec":{}}`,
	`{"spec":{"volumes":{"name":"v"},"containers":[{"name":"a"}]}}`,
	// hostProcess without spec.os: a Linux pod.
	`{"spec":{"hostNetwork":true,"securityContext":{"windowsOptions":{"hostProcess":true}},"containers":[{"name":"a","securityContext":{"privileged":true,"capabilities":{"add":["SYS_ADMIN"]},"windowsOptions":{"hostProcess":true}}}]}}`,
	// Volumes named as the engine names its own, with other sources.
	`{"metadata":{"annotations":{"pod-hardener.io/writable-paths":"/tmp,/var/run"}},"spec":{"volumes":[{"name":"ph-tmp-29f1fc7b","hostPath":{"path":"/"}},{"name":"ph-tmp-29f1fc7b-2","emptyDir":{"medium":"Memory","sizeLimit":"1Gi"}},{"name":"ph-var-run-30b81589","emptyDir":{"sizeLimit":7}}],"containers":[{"name":"a"}],"ephemeralContainers":[{"name":"debug"}]}}`,
	// Escapes and odd strings.
	`{"sp\u0065c":{"containers":[{"n\u0061me":"\u00e9","securityContext":{}}]}}`,
	`{"metadata":{"annotations":{"pod-hardener.io/writable-paths":"/\u0000,/a:b,/ok"}},"spec":{"containers":[{"name":"a/b~c"}]}}`,
}

const plainPodForFuzz = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","creationTimestamp":null,"namespace":"apps"},"spec":{"containers":[{"name":"nginx","image":"nginx","futureField":{"x":1}}],"futureSpecField":[1,2,3]}}`

func fuzzCheck(t *testing.T, data []byte, in Input) {
	t.Helper()
	res, err := hardenRaw(context.Background(), data, in)
	if err != nil {
		if res != nil {
			t.Fatalf("error %v, yet a result: %+v", err, res)
		}
		return
	}
	if res == nil {
		t.Fatalf("no error and no result")
	}
	if res.Denied {
		if len(res.Operations) != 0 {
			t.Fatalf("denied, yet operations: %+v", res.Operations)
		}
		return
	}
	if !fuzzIsObject(data) {
		t.Fatalf("hardened something that is not a JSON object: %q", data)
	}
	pb, err := Patch(res.Operations)
	if err != nil {
		t.Fatalf("encoding the patch: %v", err)
	}
	if len(pb) > max(res.patchSize, 2) {
		fuzzFail(t, data, "patch of %d bytes, over the engine's bound of %d (MaxPatchBytes relies on it)", len(pb), res.patchSize)
	}
	patch, err := jsonpatch.DecodePatch(pb)
	if err != nil {
		t.Fatalf("the patch does not decode: %v\n%s", err, pb)
	}
	out, err := patch.Apply(data)
	if err != nil {
		fuzzFail(t, data, "the patch does not apply: %v\npatch %s", err, pb)
		return
	}
	res2, err := hardenRaw(context.Background(), out, in)
	if err != nil {
		fuzzFail(t, data, "the engine cannot read its own output: %v\noutput %s", err, out)
		return
	}
	if len(res2.Operations) != 0 {
		pb2, _ := Patch(res2.Operations)
		fuzzFail(t, data, "second pass not empty: %s\npatch %s\noutput %s", pb2, pb, out)
	}
}

// fuzzFail fails with the input, so a finding can be reproduced.
func fuzzFail(t *testing.T, data []byte, format string, args ...any) {
	t.Helper()
	t.Fatalf(format+"\ninput: %q", append(args, data)...)
}

func fuzzIsObject(data []byte) bool {
	t := bytes.TrimSpace(data)
	return json.Valid(t) && len(t) > 0 && t[0] == '{'
}
