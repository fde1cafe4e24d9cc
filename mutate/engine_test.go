package mutate

import (
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
