package mutate

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

const plainPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","creationTimestamp":null,"namespace":"apps"},"spec":{"containers":[{"name":"nginx","image":"nginx","futureField":{"x":1}}],"futureSpecField":[1,2,3]}}`

func TestPlainPodPassesRestricted(t *testing.T) {
	in := Input{Profile: profile(t, "restricted")}
	r := harden(t, plainPod, in)
	out := apply(t, plainPod, r.Operations)
	if f := restrictedFailures(t, out); len(f) != 0 {
		t.Fatalf("hardened pod fails restricted: %v\n%s", f, out)
	}
	if d := lost(t, []byte(plainPod), out); len(d) != 0 {
		t.Fatalf("lost fields %v", d)
	}
	for _, op := range r.Operations {
		if op.Op != "add" {
			t.Errorf("plain pod got a %s operation at %s; only adds expected", op.Op, op.Path)
		}
	}
	if got := get(t, out, "metadata.annotations"); got == nil {
		t.Fatalf("no annotations: %s", out)
	}
	if got := get(t, out, "metadata.annotations").(map[string]any)[AnnotationHardened]; got != "restricted" {
		t.Errorf("hardened annotation = %v", got)
	}
	mustBeIdempotent(t, out, in)
	if len(r.Warnings) == 0 || !strings.Contains(strings.Join(r.Warnings, "\n"), "readOnlyRootFilesystem=true") {
		t.Errorf("warnings do not say what changed: %q", r.Warnings)
	}
}

func TestDenyNamesContainerFieldAndAnnotation(t *testing.T) {
	raw := `{"metadata":{"generateName":"ds-","ownerReferences":[{"kind":"DaemonSet","name":"agent"}]},"spec":{"containers":[{"name":"agent","securityContext":{"privileged":true}}]}}`
	r := harden(t, raw, Input{Profile: profile(t, "restricted", onConflict(profiles.ActionDeny))})
	if !r.Denied {
		t.Fatalf("not denied: %+v", r)
	}
	for _, want := range []string{`containers[agent]`, "securityContext.privileged=true", `exempt.pod-hardener.io/agent: "privileged"`, `"ds-"`, `DaemonSet "agent"`} {
		if !strings.Contains(r.Message, want) {
			t.Errorf("message %q lacks %q", r.Message, want)
		}
	}
	if len(r.Operations) != 0 {
		t.Errorf("denied pod has operations: %v", r.Operations)
	}
}

// Two annotations added to a pod without annotations must both land: a
// second `add /metadata/annotations` would replace the first.
func TestTwoNewAnnotationsShareOneAdd(t *testing.T) {
	for _, raw := range []string{
		`{"metadata":{"name":"p"},"spec":{"containers":[]}}`,
		`{"metadata":{"name":"p","annotations":null},"spec":{"containers":[]}}`,
		`{"spec":{"containers":[]}}`,
	} {
		pod, err := decodePod([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		b := &ops{}
		root := newObj(b, "", true, nil, "")
		h := &hctx{pod: &pod.podView, b: b, meta: root.child("metadata", pod.Metadata != nil)}
		h.annotate("a", "1")
		h.annotate("b", "2")
		out := apply(t, raw, b.list)
		ann, _ := get(t, out, "metadata.annotations").(map[string]any)
		if ann["a"] != "1" || ann["b"] != "2" {
			t.Errorf("%s: annotations %v after %v", raw, ann, b.list)
		}
	}
}

func TestExemptedAnnotationBesideUsers(t *testing.T) {
	raw := `{"metadata":{"name":"p","annotations":{"pod-hardener.io/exempt-controls":"seccompProfile"}},"spec":{"containers":[{"name":"app"}]}}`
	in := Input{Profile: profile(t, "restricted"), Auth: profiles.Authorization{Allowed: true}}
	r := harden(t, raw, in)
	out := apply(t, raw, r.Operations)
	ann, _ := get(t, out, "metadata.annotations").(map[string]any)
	if ann[AnnotationHardened] != "restricted" || ann[AnnotationExempted] != "seccompProfile@pod" || ann[AnnotationExemptControls] != "seccompProfile" {
		t.Fatalf("annotations %v", ann)
	}
	if get(t, out, "spec.securityContext.seccompProfile") != nil {
		t.Errorf("exempt control applied: %s", out)
	}
	mustBeIdempotent(t, out, in)
}

func TestExemptFalseRequestsNothing(t *testing.T) {
	raw := `{"metadata":{"name":"p","annotations":{"pod-hardener.io/exempt":"false"}},"spec":{"containers":[{"name":"app"}]}}`
	r := harden(t, raw, Input{Profile: profile(t, "restricted"), Auth: profiles.Authorization{Why: "not allowed here"}, OnUnauthorized: profiles.ActionDeny})
	if r.Denied || r.Refused {
		t.Fatalf("exempt=false was treated as an exemption request: %+v", r)
	}
	out := apply(t, raw, r.Operations)
	if f := restrictedFailures(t, out); len(f) != 0 {
		t.Errorf("not hardened: %v", f)
	}
}

// The exempted annotation is an audit record: a user cannot plant one.
func TestSpoofedExemptedAnnotationRemoved(t *testing.T) {
	raw := `{"metadata":{"name":"p","annotations":{"pod-hardener.io/exempted":"*","team":"x"}},"spec":{"containers":[{"name":"app"}]}}`
	in := Input{Profile: profile(t, "restricted")}
	r := harden(t, raw, in)
	out := apply(t, raw, r.Operations)
	ann, _ := get(t, out, "metadata.annotations").(map[string]any)
	if _, ok := ann[AnnotationExempted]; ok || ann["team"] != "x" || ann[AnnotationHardened] != "restricted" {
		t.Fatalf("annotations %v", ann)
	}
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "removed") {
		t.Errorf("no warning about the removal: %q", r.Warnings)
	}
	mustBeIdempotent(t, out, in)
}

// Patch writes JSON itself; it must match encoding/json for every value.
func TestPatchEncodingMatchesEncodingJSON(t *testing.T) {
	l := &list{items: []any{volumeMount{Name: "n", MountPath: "/a\"b<>&é\n"}, "x"}}
	ops := []Operation{
		{Op: "add", Path: "/metadata/annotations/pod-hardener.io~1hardened", Value: "restricted"},
		{Op: "add", Path: "/spec/a", Value: false},
		{Op: "add", Path: "/spec/b", Value: int64(65532)},
		{Op: "replace", Path: "/spec/c", Value: map[string]any{"z": true, "a": map[string]any{"type": "RuntimeDefault"}, "drop": l}},
		{Op: "add", Path: "/spec/volumes/-", Value: volume{Name: "v", EmptyDir: profiles.EmptyDir{Medium: "Memory", SizeLimit: "1Gi"}}},
		{Op: "add", Path: "/spec/volumes/-", Value: volume{Name: "w"}},
		{Op: "add", Path: "/spec/d", Value: []string{"ALL", "\u2028"}},
		{Op: "remove", Path: "/spec/e"},
		{Op: "add", Path: "/spec/f", Value: 3.5},
	}
	got, err := Patch(ops)
	if err != nil {
		t.Fatal(err)
	}
	var want []any
	for _, o := range ops {
		v := o.Value
		if l, ok := v.(map[string]any); ok {
			c := map[string]any{}
			for k, x := range l {
				c[k] = x
			}
			c["drop"] = []any{map[string]any{"name": "n", "mountPath": "/a\"b<>&é\n"}, "x"}
			v = c
		}
		if o.Op == "remove" {
			want = append(want, map[string]any{"op": o.Op, "path": o.Path})
		} else {
			want = append(want, map[string]any{"op": o.Op, "path": o.Path, "value": v})
		}
	}
	wb, _ := json.Marshal(want)
	if !jsonpatchEqual(got, wb) {
		t.Fatalf("Patch:\n%s\nencoding/json:\n%s", got, wb)
	}
	if !json.Valid(got) {
		t.Fatalf("invalid JSON %s", got)
	}
}

func jsonpatchEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// A pod is Windows only when spec.os.name says so. The review's pod sets
// hostProcess at pod level without spec.os, with hostNetwork and a
// privileged container adding SYS_ADMIN: a Linux node ignores hostProcess
// and runs all the rest, so every Linux control applies, and the warning
// names the field.
func TestHostProcessWithoutWindowsOSIsLinux(t *testing.T) {
	const pod = `{"metadata":{"name":"hp"},"spec":{"hostNetwork":true,"securityContext":{"windowsOptions":{"hostProcess":true}},` +
		`"containers":[{"name":"app","securityContext":{"privileged":true,"capabilities":{"add":["SYS_ADMIN"]}}}]}}`
	const sc = "spec.containers.0.securityContext"
	hostProcessWarning := "windowsOptions.hostProcess=true on a pod without spec.os.name: windows: hardened as a Linux pod"
	const noPSS = "hostProcess stays: PSS baseline forbids it and no control removes it"
	ctlRun(t, []ctlCase{
		{
			name:    "a profile that denies privileged rejects it",
			pod:     pod,
			in:      restrictedIn(t, warnA, withControl(profiles.Privileged, profiles.ModeDeny)),
			denied:  true,
			message: []string{"containers[app]", "securityContext.privileged=true"},
			conflicts: []cf{
				{"privileged", "containers[app]", denyA},
				{"capabilities", "containers[app]", warnA},
				{"hostNamespaces", "pod", warnA},
				{"windowsHostProcess", "pod", warnA},
			},
		},
		{
			name: "warn: every control applied, every unsafe value named",
			pod:  pod,
			conflicts: []cf{
				{"privileged", "containers[app]", warnA},
				{"capabilities", "containers[app]", warnA},
				{"hostNamespaces", "pod", warnA},
				{"windowsHostProcess", "pod", warnA},
			},
			want: map[string]any{
				sc + ".capabilities.drop":             []string{"ALL"},
				sc + ".readOnlyRootFilesystem":        true,
				"spec.securityContext.runAsNonRoot":   true,
				"spec.securityContext.seccompProfile": map[string]any{"type": "RuntimeDefault"},
			},
			warnings: []string{hostProcessWarning, "spec.hostNetwork=true kept but unsafe"},
			noPSS:    noPSS,
		},
		{
			name: "enforce: hostNetwork and privileged replaced like on any Linux pod",
			pod:  pod,
			in:   restrictedIn(t, enforceA),
			conflicts: []cf{
				{"privileged", "containers[app]", enforceA},
				{"capabilities", "containers[app]", enforceA},
				{"hostNamespaces", "pod", enforceA},
				{"windowsHostProcess", "pod", warnA},
			},
			lost: []string{"/spec/hostNetwork", sc2ptr(sc) + "/privileged", sc2ptr(sc) + "/capabilities/add"},
			want: map[string]any{
				"spec.hostNetwork":               false,
				sc + ".privileged":               false,
				sc + ".allowPrivilegeEscalation": false,
				sc + ".capabilities.add":         []string{},
			},
			warnings:   []string{hostProcessWarning},
			noWarnings: []string{"Windows HostProcess pods must use the host network"},
			noPSS:      noPSS,
		},
		{
			name:       "spec.os windows: still a Windows HostProcess pod",
			pod:        `{"spec":{"os":{"name":"windows"},"hostNetwork":true,"securityContext":{"windowsOptions":{"hostProcess":true}},"containers":[{"name":"app"}]}}`,
			conflicts:  []cf{{"hostNamespaces", "pod", warnA}, {"windowsHostProcess", "pod", warnA}},
			want:       map[string]any{sc: absent},
			noWarnings: []string{hostProcessWarning},
			noPSS:      "HostProcess pods are privileged by design",
		},
	})
}

// sc2ptr turns a dotted path into a JSON pointer.
func sc2ptr(dotted string) string { return "/" + strings.ReplaceAll(dotted, ".", "/") }

// The hardened annotation is an audit record: on a wholly exempt pod, which
// is not hardened, a user-written one is removed, with a warning.
func TestHardenedAnnotationRemovedFromExemptPod(t *testing.T) {
	raw := `{"metadata":{"name":"p","annotations":{"pod-hardener.io/exempt":"true","pod-hardener.io/hardened":"restricted","team":"x"}},"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`
	in := Input{Profile: profile(t, "restricted"), Auth: authorized}
	r := harden(t, raw, in)
	out := apply(t, raw, r.Operations)
	ann, _ := get(t, out, "metadata.annotations").(map[string]any)
	if _, ok := ann[AnnotationHardened]; ok || ann[AnnotationExempted] != "*" || ann["team"] != "x" {
		t.Fatalf("annotations %v", ann)
	}
	if get(t, out, "spec.containers.0.securityContext.privileged") != true {
		t.Errorf("exempt pod changed: %s", out)
	}
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "annotation pod-hardener.io/hardened removed: the pod is exempt, not hardened") {
		t.Errorf("no warning about the removal: %q", r.Warnings)
	}
	mustBeIdempotent(t, out, in)

	// A new ephemeral container may change nothing but itself: the
	// annotation stays there, as every other field of the running pod.
	r = harden(t, raw, Input{Profile: profile(t, "restricted"), Auth: authorized, EphemeralOnly: map[string]bool{}})
	if len(r.Operations) != 0 {
		t.Errorf("ephemeral update changed the pod: %v", r.Operations)
	}
}
