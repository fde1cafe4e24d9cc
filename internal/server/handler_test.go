package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pod-hardener/pod-hardener/mutate"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// fakeNamespaces answers from a map; err makes every lookup fail.
type fakeNamespaces struct {
	mu     sync.Mutex
	labels map[string]map[string]string
	err    error
	panic  bool
}

func (f *fakeNamespaces) Labels(_ context.Context, ns string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panic {
		panic("lookup exploded")
	}
	if f.err != nil {
		return nil, f.err
	}
	return f.labels[ns], nil
}

type review struct {
	op, resource, subresource, ns, user string
	group                               string
	groups                              []string
	obj, old                            string
	dryRun                              bool
}

func (r review) JSON() []byte {
	if r.op == "" {
		r.op = "CREATE"
	}
	if r.resource == "" {
		r.resource = "pods"
	}
	if r.ns == "" {
		r.ns = "apps"
	}
	req := map[string]any{
		"uid":       "uid-1",
		"kind":      map[string]any{"group": r.group, "version": "v1", "kind": "Pod"},
		"resource":  map[string]any{"group": r.group, "version": "v1", "resource": r.resource},
		"namespace": r.ns,
		"operation": r.op,
		"userInfo":  map[string]any{"username": r.user, "groups": r.groups},
		"dryRun":    r.dryRun,
	}
	if r.subresource != "" {
		req["subResource"] = r.subresource
	}
	if r.obj != "" {
		req["object"] = json.RawMessage(r.obj)
	}
	if r.old != "" {
		req["oldObject"] = json.RawMessage(r.old)
	}
	b, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
	return b
}

type testEnv struct {
	handler http.Handler
	ns      *fakeNamespaces
	reg     *prometheus.Registry
	metrics *Metrics
	decider *Decider
}

func newEnv(t testing.TB, cfg *profiles.Config) *testEnv {
	t.Helper()
	if cfg == nil {
		cfg = profiles.Default()
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	ns := &fakeNamespaces{labels: map[string]map[string]string{}}
	d := NewDecider(cfg, ns, m)
	h, err := NewHandler(d, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{handler: h, ns: ns, reg: reg, metrics: m, decider: d}
}

// send posts a body and decodes the AdmissionReview answer.
func (e *testEnv) send(t testing.TB, body []byte) (*httptest.ResponseRecorder, *admissionv1.AdmissionResponse) {
	t.Helper()
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body)))
	if w.Code != http.StatusOK {
		return w, nil
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &ar); err != nil {
		t.Fatalf("response is not an AdmissionReview: %v\n%s", err, w.Body)
	}
	if ar.Response == nil || ar.Response.UID != "uid-1" {
		t.Fatalf("response without the request's uid: %s", w.Body)
	}
	return w, ar.Response
}

func applyPatch(t testing.TB, obj string, patch []byte) []byte {
	t.Helper()
	if len(patch) == 0 {
		return []byte(obj)
	}
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("bad patch %s: %v", patch, err)
	}
	out, err := p.Apply([]byte(obj))
	if err != nil {
		t.Fatalf("patch does not apply: %v", err)
	}
	return out
}

const futurePod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"apps","creationTimestamp":null},"spec":{"futureSpec":{"x":[1,2]},"containers":[{"name":"app","image":"nginx","futureField":true}],"initContainers":[{"name":"side","image":"envoy","restartPolicy":"Always"}]}}`

func TestHandlerPatchEqualsEngineAndIsIdempotent(t *testing.T) {
	e := newEnv(t, nil)
	_, resp := e.send(t, review{obj: futurePod}.JSON())
	if !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("response %+v", resp)
	}
	got := applyPatch(t, futurePod, resp.Patch)
	want, err := mutate.Review(context.Background(), e.decider.Config(), []byte(futurePod), profiles.Facts{Namespace: "default", NamespaceKnown: true}, mutate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := mutate.Patch(want.Operations)
	if !jsonpatch.Equal(got, applyPatch(t, futurePod, wb)) {
		t.Errorf("handler result differs from the engine's:\n%s", got)
	}
	for _, keep := range []string{`"futureSpec":{"x":[1,2]}`, `"futureField":true`, `"creationTimestamp":null`} {
		if !bytes.Contains(got, []byte(keep)) {
			t.Errorf("unknown field lost: %s in %s", keep, got)
		}
	}
	if len(resp.Warnings) == 0 || !strings.HasPrefix(resp.Warnings[0], "pod-hardener: ") {
		t.Errorf("warnings %q", resp.Warnings)
	}
	if resp.AuditAnnotations["profile"] != "restricted" {
		t.Errorf("audit annotations %v", resp.AuditAnnotations)
	}
	_, again := e.send(t, review{obj: string(got)}.JSON())
	if !again.Allowed || len(again.Patch) != 0 {
		t.Errorf("second review not empty: %s", again.Patch)
	}
	if v := testutil.ToFloat64(e.metrics.Reviews.WithLabelValues("CREATE", "hardened")); v != 1 {
		t.Errorf("hardened reviews metric %v", v)
	}
	if v := testutil.ToFloat64(e.metrics.Reviews.WithLabelValues("CREATE", "unchanged")); v != 1 {
		t.Errorf("unchanged reviews metric %v", v)
	}
}

func TestHandlerOperations(t *testing.T) {
	plain := `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app"}]}}`
	withDebug := `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"old-debug"},{"name":"debugger","image":"busybox"}]}}`
	oldDebug := `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"old-debug"}]}}`
	cases := []struct {
		name    string
		r       review
		patched bool
		check   func(t *testing.T, out []byte)
	}{
		{"create pod", review{obj: plain}, true, nil},
		{"dry-run create is hardened like a real one", review{obj: plain, dryRun: true}, true, nil},
		{"update pod untouched", review{op: "UPDATE", obj: plain, old: plain}, false, nil},
		{"delete untouched", review{op: "DELETE", old: plain}, false, nil},
		{"connect untouched", review{op: "CONNECT", subresource: "exec", obj: `{}`}, false, nil},
		{"pods/status untouched", review{op: "UPDATE", subresource: "status", obj: plain, old: plain}, false, nil},
		{"other kind untouched", review{resource: "deployments", group: "apps", obj: `{"spec":{"template":{"spec":{"containers":[{"name":"x"}]}}}}`}, false, nil},
		{"new ephemeral container hardened, nothing else", review{op: "UPDATE", subresource: "ephemeralcontainers", obj: withDebug, old: oldDebug}, true,
			func(t *testing.T, out []byte) {
				var p struct {
					Metadata map[string]any `json:"metadata"`
					Spec     struct {
						SecurityContext     any `json:"securityContext"`
						Containers          []map[string]any
						EphemeralContainers []map[string]any `json:"ephemeralContainers"`
						Volumes             any              `json:"volumes"`
					} `json:"spec"`
				}
				_ = json.Unmarshal(out, &p)
				if p.Spec.EphemeralContainers[1]["securityContext"] == nil {
					t.Errorf("new ephemeral container not hardened: %s", out)
				}
				if p.Spec.EphemeralContainers[0]["securityContext"] != nil || p.Spec.Containers[0]["securityContext"] != nil ||
					p.Spec.SecurityContext != nil || p.Spec.Volumes != nil || p.Metadata["annotations"] != nil {
					t.Errorf("immutable fields touched: %s", out)
				}
			}},
		{"ephemeral update without new container", review{op: "UPDATE", subresource: "ephemeralcontainers", obj: oldDebug, old: oldDebug}, false, nil},
		{"mirror pod from a node skipped", review{user: "system:node:n1", obj: `{"metadata":{"name":"m","annotations":{"kubernetes.io/config.mirror":"x"}},"spec":{"nodeName":"n1","containers":[{"name":"c"}]}}`}, false, nil},
		{"mirror annotation from a user hardened", review{user: "mallory", obj: `{"metadata":{"name":"m","annotations":{"kubernetes.io/config.mirror":"x"}},"spec":{"containers":[{"name":"c"}]}}`}, true, nil},
		{"controller-made pod without a name", review{user: "system:serviceaccount:kube-system:replicaset-controller", obj: `{"metadata":{"generateName":"web-","ownerReferences":[{"kind":"ReplicaSet","name":"web-1"}]},"spec":{"containers":[{"name":"c"}]}}`}, true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			w, resp := e.send(t, tc.r.JSON())
			if resp == nil {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			if (len(resp.Patch) > 0) != tc.patched {
				t.Fatalf("patched=%v, want %v: %s", len(resp.Patch) > 0, tc.patched, resp.Patch)
			}
			if tc.check != nil {
				tc.check(t, applyPatch(t, tc.r.obj, resp.Patch))
			}
		})
	}
}

func TestHandlerNamespaceProfileExemptionsAndFailSafe(t *testing.T) {
	cfg, err := profiles.Parse([]byte("profiles: [{name: strict, onConflict: deny}]\nexemptions: {subjects: {groups: [platform]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, cfg)
	e.ns.labels["legacy"] = map[string]string{profiles.LabelProfile: "baseline"}
	e.ns.labels["open"] = map[string]string{profiles.LabelAllowExemptions: "true"}
	e.ns.labels["strict"] = map[string]string{profiles.LabelProfile: "strict"}
	exempt := `{"metadata":{"name":"p","annotations":{"pod-hardener.io/exempt-controls":"readOnlyRootFilesystem"}},"spec":{"containers":[{"name":"app"}]}}`

	_, resp := e.send(t, review{ns: "legacy", obj: exempt}.JSON())
	if resp.AuditAnnotations["profile"] != "baseline" {
		t.Errorf("namespace label ignored: %v", resp.AuditAnnotations)
	}
	_, resp = e.send(t, review{ns: "open", obj: exempt}.JSON())
	out := applyPatch(t, exempt, resp.Patch)
	if bytes.Contains(out, []byte(`"readOnlyRootFilesystem":true`)) || !bytes.Contains(out, []byte(`"pod-hardener.io/exempted":"readOnlyRootFilesystem@app"`)) {
		t.Errorf("exemption not honoured in an allowing namespace: %s", out)
	}
	_, resp = e.send(t, review{ns: "closed", obj: exempt}.JSON())
	out = applyPatch(t, exempt, resp.Patch)
	if !bytes.Contains(out, []byte(`"readOnlyRootFilesystem":true`)) || !strings.Contains(strings.Join(resp.Warnings, "\n"), "exemption annotations ignored") {
		t.Errorf("exemption honoured where not allowed: %s %q", out, resp.Warnings)
	}
	_, resp = e.send(t, review{ns: "closed", obj: exempt, groups: []string{"platform"}}.JSON())
	if !bytes.Contains(applyPatch(t, exempt, resp.Patch), []byte("exempted")) {
		t.Errorf("listed group not honoured")
	}

	// Deny: rejected with a message naming container, field and annotation.
	_, resp = e.send(t, review{ns: "strict", obj: `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`}.JSON())
	if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, `containers[app]`) ||
		!strings.Contains(resp.Result.Message, "securityContext.privileged=true") || !strings.Contains(resp.Result.Message, "exempt.pod-hardener.io/app") {
		t.Errorf("deny response %+v", resp)
	}

	// Lookup failure: default profile, no exemption, a warning and a metric.
	e.ns.err = errors.New("connection refused")
	e.ns.labels["legacy"] = map[string]string{profiles.LabelProfile: "privileged", profiles.LabelAllowExemptions: "true"}
	_, resp = e.send(t, review{ns: "legacy", obj: exempt}.JSON())
	out = applyPatch(t, exempt, resp.Patch)
	if resp.AuditAnnotations["profile"] != "restricted" || !bytes.Contains(out, []byte(`"readOnlyRootFilesystem":true`)) {
		t.Errorf("lookup failure did not fail safe: %v %s", resp.AuditAnnotations, out)
	}
	if !strings.Contains(strings.Join(resp.Warnings, "\n"), "could not be read") || resp.AuditAnnotations["namespace-lookup"] != "failed" {
		t.Errorf("lookup failure not reported: %q %v", resp.Warnings, resp.AuditAnnotations)
	}
	if v := testutil.ToFloat64(e.metrics.NamespaceFailures); v != 1 {
		t.Errorf("namespace failure metric %v", v)
	}
}

func TestHandlerBadInput(t *testing.T) {
	big := append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"object":{"x":"`), bytes.Repeat([]byte("a"), MaxBodyBytes)...)
	big = append(big, []byte(`"}}}`)...)
	cases := []struct {
		name string
		body []byte
		code int
		want string
	}{
		{"empty", nil, 400, "no body"},
		{"not json", []byte("hello"), 400, "could not decode"},
		{"truncated", review{obj: futurePod}.JSON()[:100], 400, "could not decode"},
		{"wrong kind", []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}`), 400, "could not decode"},
		{"too large", big, 200, "larger than"},
		{"object not a pod", review{obj: `{"kind":"Pod","metadata":{"name":"x"}}`}.JSON(), 200, `"allowed":false`},
		{"object not an object", review{obj: `[1,2]`}.JSON(), 200, "not a JSON object"},
		{"object with wrong types", review{obj: `{"spec":{"containers":"x"}}`}.JSON(), 200, "cannot read this object"},
		{"missing object", review{}.JSON(), 200, "no object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			w := httptest.NewRecorder()
			e.handler.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(tc.body)))
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("status %d body %.300s; want %d with %q", w.Code, w.Body, tc.code, tc.want)
			}
		})
	}
	e := newEnv(t, nil)
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/mutate", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", w.Code)
	}
}

func TestHandlerRecoversPanics(t *testing.T) {
	e := newEnv(t, nil)
	e.ns.panic = true
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(review{obj: futurePod}.JSON())))
	if w.Code != http.StatusInternalServerError || testutil.ToFloat64(e.metrics.Panics) != 1 {
		t.Fatalf("panic: status %d, metric %v", w.Code, testutil.ToFloat64(e.metrics.Panics))
	}
	e.ns.panic = false
	if _, resp := e.send(t, review{obj: futurePod}.JSON()); resp == nil || !resp.Allowed {
		t.Fatal("handler dead after a panic")
	}
}

// A v1beta1 review (same JSON shape as v1) is answered in v1beta1 with
// the same patch, warnings and audit annotations as a v1 one.
func TestHandlerV1beta1(t *testing.T) {
	e := newEnv(t, nil)
	v1 := review{obj: futurePod}.JSON()
	_, want := e.send(t, v1)
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mutate",
		bytes.NewReader(bytes.Replace(v1, []byte(`"admission.k8s.io/v1"`), []byte(`"admission.k8s.io/v1beta1"`), 1))))
	var ar admissionv1beta1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &ar); err != nil || w.Code != http.StatusOK {
		t.Fatalf("status %d, %v: %s", w.Code, err, w.Body)
	}
	got := ar.Response
	if ar.APIVersion != "admission.k8s.io/v1beta1" || ar.Kind != "AdmissionReview" || got == nil || got.UID != "uid-1" || !got.Allowed {
		t.Fatalf("answer %s", w.Body)
	}
	if got.PatchType == nil || *got.PatchType != admissionv1beta1.PatchTypeJSONPatch || !bytes.Equal(got.Patch, want.Patch) {
		t.Errorf("patch %s, want %s", got.Patch, want.Patch)
	}
	if !reflect.DeepEqual(got.Warnings, want.Warnings) || got.AuditAnnotations["profile"] != "restricted" ||
		!reflect.DeepEqual(got.AuditAnnotations, want.AuditAnnotations) {
		t.Errorf("warnings %q audit %v; want %q %v", got.Warnings, got.AuditAnnotations, want.Warnings, want.AuditAnnotations)
	}
}

// Nothing to change: allowed, no patch and no patch type.
func TestHandlerNoPatch(t *testing.T) {
	e := newEnv(t, nil)
	_, first := e.send(t, review{obj: futurePod}.JSON())
	hardened := applyPatch(t, futurePod, first.Patch)
	w, resp := e.send(t, review{obj: string(hardened)}.JSON())
	if resp == nil || !resp.Allowed || resp.Patch != nil || resp.PatchType != nil || bytes.Contains(w.Body.Bytes(), []byte("patchType")) {
		t.Fatalf("second review: %s", w.Body)
	}
}

func TestHandlerBadInputMore(t *testing.T) {
	many := `{"metadata":{"name":"big"},"spec":{"containers":[`
	for i := 0; i < 1000; i++ {
		if i > 0 {
			many += ","
		}
		many += `{"name":"c` + strconv.Itoa(i) + `","image":"x"}`
	}
	many += `]}}`
	noUID := bytes.Replace(review{obj: futurePod}.JSON(), []byte(`"uid":"uid-1",`), nil, 1)
	if bytes.Contains(noUID, []byte(`"uid"`)) {
		t.Fatalf("the review still has a uid: %s", noUID)
	}
	deep := `{"metadata":{"name":"deep"},"spec":{"containers":[{"name":"a","x":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000) + `}]}}`
	cases := []struct {
		name  string
		body  []byte
		code  int
		check func(t *testing.T, resp *admissionv1.AdmissionResponse)
	}{
		{"missing request", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), 400, nil},
		{"wrong apiVersion", []byte(`{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"u"}}`), 400, nil},
		{"wrong kind", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"u"}}`), 400, nil},
		{"missing uid is still answered", noUID, 200, func(t *testing.T, resp *admissionv1.AdmissionResponse) {
			if resp.UID != "" || !resp.Allowed || len(resp.Patch) == 0 {
				t.Errorf("review without a uid: uid %q allowed %v patch %d bytes", resp.UID, resp.Allowed, len(resp.Patch))
			}
		}},
		{"1,000 containers", review{obj: many}.JSON(), 200, func(t *testing.T, resp *admissionv1.AdmissionResponse) {
			out := applyPatch(t, many, resp.Patch)
			var p struct {
				Spec struct {
					Containers []map[string]any `json:"containers"`
				} `json:"spec"`
			}
			_ = json.Unmarshal(out, &p)
			if len(p.Spec.Containers) != 1000 || p.Spec.Containers[999]["securityContext"] == nil {
				t.Errorf("1,000 containers not all hardened")
			}
			// One short warning per field, not one name per container.
			for _, w := range resp.Warnings {
				if len(w) > 400 {
					t.Errorf("warning of %d bytes", len(w))
				}
			}
		}},
		{"deeply nested JSON", review{obj: deep}.JSON(), 400, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			w := httptest.NewRecorder()
			e.handler.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(tc.body)))
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d: %.300s", w.Code, tc.code, w.Body)
			}
			if w.Code != 200 {
				if w.Body.Len() == 0 {
					t.Error("error without a message")
				}
				return
			}
			var ar admissionv1.AdmissionReview
			if err := json.Unmarshal(w.Body.Bytes(), &ar); err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, ar.Response)
			}
		})
	}
}

// encodeResponse writes exactly what encoding/json writes for the same
// AdmissionReview.
func TestEncodeResponseMatchesEncodingJSON(t *testing.T) {
	pt := admissionv1.PatchTypeJSONPatch
	tm := metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}
	for _, r := range []*admissionv1.AdmissionResponse{
		{UID: "u", Allowed: true},
		{UID: `q"<u>&`, Allowed: true, Patch: []byte(`[{"op":"add","path":"/a","value":"ü\n"}]`), PatchType: &pt,
			AuditAnnotations: map[string]string{"profile": "restricted", "b": `x"y`, "a": "\u2028"}, Warnings: []string{"w1", "tab\tü"}},
		{UID: "u", Allowed: false, Result: &metav1.Status{Status: metav1.StatusFailure, Message: "denied: <why>", Code: 400}, Warnings: []string{"w"}},
		{UID: "", Allowed: true, Patch: bytes.Repeat([]byte{0, 255, 7}, 1000), PatchType: &pt},
	} {
		want, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: tm, Response: r})
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeResponse(tm, r); string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

// The review is read once, its objects kept as they stand in the body
// (null as absent); what is wrong with a pod is the engine's to say, in a
// rejection, and a key is read case-sensitively, as the API server reads it.
func TestDecodeReviewObjects(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range hbPods(t) {
		d, err := decodeReview(p.body)
		if err != nil || !bytes.Equal(d.req.Object, p.pod) || d.req.OldObject != nil || d.kind != "v1/Pod" {
			t.Fatalf("%s: object not read as sent (err %v, kind %q)", p.name, err, d.kind)
		}
	}
	for _, tc := range []struct {
		name string
		body []byte
		want string // in the rejection
	}{
		{"duplicate key in the pod", review{obj: `{"metadata":{"name":"d"},"spec":{"containers":[{"name":"a","name":"b"}]}}`}.JSON(), "duplicate"},
		{"not an object", review{obj: `[1,2]`}.JSON(), "not a JSON object"},
		{"wrong type", review{obj: `{"spec":{"containers":"x"}}`}.JSON(), "cannot read this object"},
		{"null object", review{obj: `null`}.JSON(), "has no object"},
		{"case-folded key", review{obj: `{"metadata":{"name":"c"},"spec":{"Containers":[{"name":"a"}],"containers":[{"name":"b","SecurityContext":{"privileged":true}}]}}`}.JSON(), ""},
	} {
		if _, err := decodeReview(tc.body); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, resp := e.send(t, tc.body)
		if resp == nil {
			t.Fatalf("%s: no answer", tc.name)
		}
		if tc.want == "" {
			// SecurityContext is not securityContext, so one is added
			// (the API server ignores the other spelling).
			if !resp.Allowed || !bytes.Contains(resp.Patch, []byte(`/spec/containers/0/securityContext`)) {
				t.Errorf("%s: allowed %v patch %s", tc.name, resp.Allowed, resp.Patch)
			}
			continue
		}
		if resp.Allowed || !strings.Contains(resp.Result.Message, tc.want) {
			t.Errorf("%s: answer %+v", tc.name, resp.Result)
		}
	}
	d, err := decodeReview(review{op: "UPDATE", subresource: "ephemeralcontainers", obj: futurePod, old: futurePod}.JSON())
	if err != nil || !bytes.Equal(d.req.Object, []byte(futurePod)) || !bytes.Equal(d.req.OldObject, []byte(futurePod)) {
		t.Errorf("UPDATE: %v %+v", err, d)
	}
}
