package mutate

import (
	"bytes"
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	doc := []byte(`{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a"}]}}`)
	out, err := Apply(doc, []Operation{
		{Op: "add", Path: "/spec/securityContext", Value: map[string]any{"runAsNonRoot": true}},
		{Op: "add", Path: "/spec/containers/0/securityContext", Value: map[string]any{"privileged": false}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, out, "spec.securityContext.runAsNonRoot"); got != true {
		t.Errorf("runAsNonRoot = %v, want true in %s", got, out)
	}
	if got := get(t, out, "spec.containers.0.securityContext.privileged"); got != false {
		t.Errorf("privileged = %v, want false in %s", got, out)
	}
	if same, err := Apply(doc, nil); err != nil || !bytes.Equal(same, doc) {
		t.Errorf("no operations: %s, %v; want the document itself", same, err)
	}
	_, err = Apply(doc, []Operation{{Op: "replace", Path: "/spec/hostNetwork", Value: false}})
	if err == nil || !strings.Contains(err.Error(), "applying the patch") {
		t.Errorf("replace of an absent field: %v, want an error applying the patch", err)
	}
}
