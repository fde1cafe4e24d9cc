package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	kjson "sigs.k8s.io/json"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// checkedHandler is the /mutate handler with its metrics: the handler
// recovers a panic into a 500, so only the panic counter tells one apart.
type checkedHandler struct {
	h http.Handler
	m *Metrics
}

func newCheckedHandler(t testing.TB) *checkedHandler {
	m := NewMetrics(prometheus.NewRegistry())
	h, err := NewHandler(NewDecider(profiles.Default(), NoNamespaces{}, m), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &checkedHandler{h: h, m: m}
}

// serve posts body to /mutate and checks the answer (checkAnswer), failing
// if serving it panicked. A fuzz worker calls its target sequentially, so
// the counter's change is this request's.
func (f *checkedHandler) serve(t *testing.T, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	before := testutil.ToFloat64(f.m.Panics)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body)))
	if testutil.ToFloat64(f.m.Panics) != before {
		t.Fatalf("the review panicked (status %d: %s) on %.300q", w.Code, w.Body, body)
	}
	checkAnswer(t, body, w)
	return w
}

// checkAnswer is what every answer must satisfy: a known status with a
// message (not a 500: the handler answers one only for a panic or a
// failing wrapper, both server faults), and for a 200 an AdmissionReview
// whose patch applies to the request's object.
func checkAnswer(t *testing.T, body []byte, w *httptest.ResponseRecorder) {
	t.Helper()
	switch w.Code {
	case http.StatusOK:
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		if w.Body.Len() == 0 {
			t.Fatalf("status %d without a message", w.Code)
		}
		return
	default:
		t.Fatalf("unexpected status %d: %s", w.Code, w.Body)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &ar); err != nil || ar.Response == nil {
		t.Fatalf("200 without an AdmissionReview: %v %s", err, w.Body)
	}
	if !ar.Response.Allowed && (ar.Response.Result == nil || ar.Response.Result.Message == "") {
		t.Fatalf("rejection without a message: %s", w.Body)
	}
	if len(ar.Response.Patch) == 0 {
		return
	}
	// Read as the handler reads it, case-sensitively: encoding/json would
	// take a case variant such as "OBjeCt" for the object.
	var in admissionv1.AdmissionReview
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &in); err != nil || in.Request == nil {
		t.Fatalf("a patch for a body that does not decode: %v", err)
	}
	p, err := jsonpatch.DecodePatch(ar.Response.Patch)
	if err != nil {
		t.Fatalf("patch does not decode: %v", err)
	}
	if _, err := p.Apply(in.Request.Object.Raw); err != nil {
		t.Fatalf("patch %s does not apply to %s: %v", ar.Response.Patch, in.Request.Object.Raw, err)
	}
}

// FuzzHandler sends arbitrary bodies to /mutate: never a panic (so never
// a 500), always a known status with a message, and any patch applies to
// the object.
func FuzzHandler(f *testing.F) {
	for _, s := range [][]byte{
		review{obj: futurePod}.JSON(),
		review{op: "UPDATE", subresource: "ephemeralcontainers", obj: `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a"}],"ephemeralContainers":[{"name":"d"}]}}`, old: `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a"}]}}`}.JSON(),
		[]byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x","resource":{"resource":"pods"},"operation":"CREATE","object":{"spec":{"containers":[{"name":"a"}]}}}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"resource":{"resource":"pods"},"operation":"CREATE","object":null}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{}}`),
		[]byte(`[]`), []byte(`null`), []byte(``), []byte(`{`),
	} {
		f.Add(s)
	}
	target := newCheckedHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		target.serve(t, body)
	})
}

// FuzzReviewObject keeps the AdmissionReview valid and fuzzes the pod in
// it, with the operations that harden: the answer is always a 200 (a pod
// that cannot be read is rejected, never errored, so failurePolicy Ignore
// cannot let it through), and any patch applies.
func FuzzReviewObject(f *testing.F) {
	for _, s := range []string{
		futurePod,
		`{"metadata":{"name":"p","annotations":{"pod-hardener.io/writable-paths":"/a,../b","exempt.pod-hardener.io/x":"nope"}},"spec":{"containers":[{"name":"x","securityContext":{"privileged":true,"capabilities":{"add":["SYS_ADMIN"]}}}]}}`,
		`{"spec":{"os":{"name":"windows"},"containers":[{"name":"w"}]}}`,
		`{"spec":{"containers":[{"name":"a","securityContext":null,"volumeMounts":null}],"volumes":null}}`,
		`{"spec":{"containers":"x"}}`, `{"spec":{}}`, `{}`, `[]`, `"x"`, `{"spec":{"containers":[null]}}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	target := newCheckedHandler(f)
	f.Fuzz(func(t *testing.T, obj []byte, ephemeral bool) {
		if !json.Valid(obj) {
			return // the envelope must stay valid JSON; FuzzHandler covers broken bodies
		}
		r := review{obj: string(obj)}
		if ephemeral {
			r.op, r.subresource, r.old = "UPDATE", "ephemeralcontainers", `{"spec":{"containers":[{"name":"a"}]}}`
		}
		if w := target.serve(t, r.JSON()); w.Code != http.StatusOK {
			t.Fatalf("status %d for object %s: %s", w.Code, obj, w.Body)
		}
	})
}
