package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// A pod the engine cannot read is rejected with a message in an HTTP 200
// answer, never errored: an HTTP error under failurePolicy Ignore would
// admit it unhardened. Each case names what the message must say.
func TestUnreadablePodRejected(t *testing.T) {
	const running = `{"spec":{"containers":[{"name":"a"}]}}`
	debug := func(obj string) review {
		return review{op: "UPDATE", subresource: "ephemeralcontainers", obj: obj, old: running}
	}
	cases := []struct {
		name string
		r    review
		want string
	}{
		{"container without a name", review{obj: `{"spec":{"containers":[{"image":"nginx"}]}}`}, "spec.containers[0] has no name"},
		{"container with an empty name", review{obj: `{"spec":{"containers":[{"name":"a"},{"name":"","image":"nginx"}]}}`}, "spec.containers[1] has no name"},
		{"null container entry", review{obj: `{"spec":{"containers":[null]}}`}, "spec.containers[0] has no name"},
		{"nameless init container", review{obj: `{"spec":{"initContainers":[{"image":"x"}],"containers":[{"name":"a"}]}}`}, "spec.initContainers[0] has no name"},
		{"duplicate key", review{obj: `{"spec":{"containers":[{"name":"a","securityContext":{"privileged":false,"privileged":true}}]}}`}, "duplicate field"},
		{"wrong type", review{obj: `{"spec":{"containers":"x"}}`}, "cannot read this object"},
		{"no spec", review{obj: `{"metadata":{"name":"p"}}`}, "no spec"},
		{"nameless ephemeral container", debug(`{"spec":{"containers":[{"name":"a"}],"ephemeralContainers":[{"image":"busybox"}]}}`), "spec.ephemeralContainers[0] has no name"},
		{"null ephemeral container entry", debug(`{"spec":{"containers":[{"name":"a"}],"ephemeralContainers":[null]}}`), "spec.ephemeralContainers[0] has no name"},
		{"new ephemeral container, duplicate key", debug(`{"spec":{"containers":[{"name":"a"}],"ephemeralContainers":[{"name":"d","securityContext":{"privileged":false,"privileged":true}}]}}`), "duplicate field"},
	}
	h := newCheckedHandler(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := h.serve(t, tc.r.JSON())
			var ar admissionv1.AdmissionReview
			if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &ar) != nil || ar.Response == nil {
				t.Fatalf("status %d, want a 200 AdmissionReview: %s", w.Code, w.Body)
			}
			if ar.Response.Allowed || len(ar.Response.Patch) > 0 {
				t.Fatalf("admitted (patch %s), want rejected", ar.Response.Patch)
			}
			if msg := ar.Response.Result.Message; !strings.Contains(msg, tc.want) {
				t.Errorf("message %q, want it to say %q", msg, tc.want)
			}
		})
	}
}
