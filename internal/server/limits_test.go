package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func limitedHandler(t testing.TB, lim Limits) (*handler, *Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	h, err := newHandler(NewDecider(profiles.Default(), &fakeNamespaces{}, m), reg, slog.New(slog.NewTextHandler(io.Discard, nil)), lim)
	if err != nil {
		t.Fatal(err)
	}
	return h, m, reg
}

// answer decodes a 200 AdmissionReview answer.
func answer(t testing.TB, code int, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200 (a non-200 is admitted unhardened under failurePolicy Ignore): %.300s", code, body)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &ar); err != nil || ar.Response == nil {
		t.Fatalf("not an AdmissionReview answer: %v %.300s", err, body)
	}
	return ar.Response
}

// refused checks an answer that must not admit the pod: allowed false, the
// request's uid, the status code and a message.
func refused(t testing.TB, resp *admissionv1.AdmissionResponse, code int32, msg string) {
	t.Helper()
	if resp.Allowed || resp.UID != "uid-1" || resp.Result == nil || resp.Result.Code != code || !strings.Contains(resp.Result.Message, msg) {
		t.Fatalf("answer %+v; want allowed false, uid uid-1, code %d, message with %q", resp, code, msg)
	}
}

// dialHalf opens a connection and sends a POST announcing length bytes of
// body but only its first byte, then leaves it waiting.
func dialHalf(t *testing.T, addr string, length int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", length); err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Finding 2: a body's buffer grows with the bytes received, not with the
// Content-Length announced. 40 connections announcing 6 MiB and sending
// one byte each held 6 MiB apiece (240 MiB) when the buffer was sized from
// Content-Length; now each holds one 64 KiB chunk.
func TestBodyMemoryFollowsBytesReceived(t *testing.T) {
	h, _, _ := limitedHandler(t, DefaultLimits)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // after the connections close: cleanups run last first
	const conns, announced = 40, 6 << 20
	before := liveHeap()
	for range conns {
		dialHalf(t, srv.Listener.Addr().String(), announced)
	}
	waitFor(t, "every body to be read", func() bool { return h.budget.held() >= conns*bodyChunk })
	grown := int64(liveHeap()) - int64(before)
	t.Logf("%d connections announcing %d bytes and sending 1: live heap +%d KiB, budget held %d KiB", conns, announced, grown>>10, h.budget.held()>>10)
	if grown > conns*256<<10 {
		t.Fatalf("live heap grew by %d MiB for %d one-byte bodies: buffers sized by Content-Length, not by bytes received", grown>>20, conns)
	}
}

// Finding 2: bodies in flight share one budget; a review that finds no
// room within the wait is answered allowed: false with its uid (never a
// non-200), and the room comes back when the bodies holding it go.
func TestInFlightBudgetRefusesWhenFull(t *testing.T) {
	lim := Limits{MaxBody: 2 * bodyChunk, InFlight: 4 * bodyChunk, Wait: 100 * time.Millisecond}
	h, m, _ := limitedHandler(t, lim)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var slow []net.Conn
	for range 4 {
		slow = append(slow, dialHalf(t, srv.Listener.Addr().String(), 1000))
	}
	waitFor(t, "the slow bodies to fill the budget", func() bool { return h.budget.held() == lim.InFlight })

	post := func() *admissionv1.AdmissionResponse {
		t.Helper()
		resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(review{obj: futurePod}.JSON()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer(t, resp.StatusCode, b)
	}
	refused(t, post(), http.StatusTooManyRequests, "busy")
	if v := testutil.ToFloat64(m.Unreviewed.WithLabelValues("busy")); v != 1 {
		t.Errorf("busy refusals counted %v, want 1", v)
	}
	for _, c := range slow {
		c.Close()
	}
	waitFor(t, "the budget to be returned", func() bool { return h.budget.held() == 0 })
	if resp := post(); !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("with room again, the review was not hardened: %+v", resp)
	}
}

// endless is a body that never ends: a review whose object is one string
// of 'a's. It counts the bytes read from it.
type endless struct {
	head []byte
	read int
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	if e.read < len(e.head) {
		n = copy(p, e.head[e.read:])
	}
	for i := n; i < len(p); i++ {
		p[i] = 'a'
	}
	e.read += len(p)
	return len(p), nil
}

func endlessReview() *endless {
	return &endless{head: []byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"uid-1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"x":"`)}
}

// Finding 5: a review over the limit is refused with allowed: false and
// its uid, whether its length is announced (read no further than its
// first bytes) or not (chunked: read no further than the limit).
func TestOversizeReviewRefusedNotErrored(t *testing.T) {
	lim := Limits{MaxBody: 1 << 20, InFlight: 4 << 20, Wait: time.Second}
	t.Run("Content-Length", func(t *testing.T) {
		h, m, _ := limitedHandler(t, lim)
		body := endlessReview()
		r := httptest.NewRequest(http.MethodPost, "/mutate", body)
		r.ContentLength = int64(lim.MaxBody) + 1
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		refused(t, answer(t, w.Code, w.Body.Bytes()), http.StatusRequestEntityTooLarge, "larger than 1048576 bytes")
		if body.read > headBytes {
			t.Errorf("read %d bytes of a body announced too large; want at most %d", body.read, headBytes)
		}
		if v := testutil.ToFloat64(m.Unreviewed.WithLabelValues("too_large")); v != 1 {
			t.Errorf("too_large refusals counted %v, want 1", v)
		}
	})
	t.Run("chunked", func(t *testing.T) {
		h, _, _ := limitedHandler(t, lim)
		body := endlessReview()
		r := httptest.NewRequest(http.MethodPost, "/mutate", body)
		if r.ContentLength != -1 {
			t.Fatalf("the request announces a length (%d): not the chunked case", r.ContentLength)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		refused(t, answer(t, w.Code, w.Body.Bytes()), http.StatusRequestEntityTooLarge, "larger than")
		if body.read > lim.MaxBody+1 {
			t.Errorf("read %d bytes of a chunked body; want at most the limit + 1, %d", body.read, lim.MaxBody+1)
		}
		if h.budget.held() != 0 {
			t.Errorf("budget still held after the answer: %d bytes", h.budget.held())
		}
	})
	t.Run("over the network", func(t *testing.T) {
		// The answer comes before the body is sent; the client (Go's, as
		// the API server's) must still get it.
		h, _, _ := limitedHandler(t, lim)
		srv := httptest.NewServer(h)
		defer srv.Close()
		body := append(bytes.Clone(endlessReview().head), bytes.Repeat([]byte("a"), 8<<20)...)
		resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(append(body, `"}}}`...)))
		if err != nil {
			t.Fatalf("the client got no answer to a review over the limit: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		refused(t, answer(t, resp.StatusCode, b), http.StatusRequestEntityTooLarge, "larger than")
	})
}

// Finding 5: the API server escapes <, > and & as \u003c, 6 bytes for 1.
// A 1.1 MB pod with an env value of 1.1 million '<' makes a 6.6 MB review,
// which was refused with a 413; it is within the limit and hardened.
func TestEscapedReviewWithinLimitIsHardened(t *testing.T) {
	pod, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"name": "lt"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "a", "image": "x",
			"env": []any{map[string]any{"name": "LT", "value": strings.Repeat("<", 1_100_000)}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	body := review{obj: string(pod)}.JSON()
	if len(body) < 6_600_000 || !bytes.Contains(body, []byte(`\u003c\u003c`)) {
		t.Fatalf("review of %d bytes, want the escaped 6.6 MB one", len(body))
	}
	h, _, _ := limitedHandler(t, DefaultLimits)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body)))
	resp := answer(t, w.Code, w.Body.Bytes())
	if !resp.Allowed || resp.UID != "uid-1" || len(resp.Patch) == 0 {
		t.Fatalf("6.6 MB review not hardened: allowed %v uid %q patch %d bytes %v", resp.Allowed, resp.UID, len(resp.Patch), resp.Result)
	}
	var out struct {
		Spec struct {
			Containers []struct {
				SecurityContext map[string]any `json:"securityContext"`
				Env             []struct {
					Value string `json:"value"`
				} `json:"env"`
			} `json:"containers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(applyPatch(t, string(pod), resp.Patch), &out); err != nil {
		t.Fatal(err)
	}
	c := out.Spec.Containers[0]
	if c.SecurityContext["allowPrivilegeEscalation"] != false || len(c.Env[0].Value) != 1_100_000 {
		t.Fatalf("patched pod: securityContext %v, env value of %d bytes", c.SecurityContext, len(c.Env[0].Value))
	}
}

// The uid and apiVersion of a refused review come from its first bytes,
// wherever they end.
func TestReviewHead(t *testing.T) {
	full := `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1beta1","request":{"uid":"u-1","object":{"a":[1,{"b":"c"}]}}}`
	for _, tc := range []struct {
		head, apiVersion, uid string
	}{
		{full, "admission.k8s.io/v1beta1", "u-1"},
		{full[:90], "admission.k8s.io/v1beta1", "u-1"},
		{full[:80], "admission.k8s.io/v1beta1", ""}, // uid cut
		{`{"request":{"kind":{"kind":"Pod"},"uid":"u-2","object":{"x":"y"}},"apiVersion":"admission.k8s.io/v1"}`, "admission.k8s.io/v1", "u-2"},
		{`{"request":{"uid":7}}`, "", ""},
		{`[1,2]`, "", ""},
		{``, "", ""},
	} {
		v, uid := reviewHead([]byte(tc.head))
		if v != tc.apiVersion || uid != tc.uid {
			t.Errorf("reviewHead(%.40q) = %q, %q; want %q, %q", tc.head, v, uid, tc.apiVersion, tc.uid)
		}
	}
	// A v1beta1 review is refused in v1beta1.
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(refusal([]byte(full[:90]), 413, "", "m"), &ar); err != nil || ar.APIVersion != "admission.k8s.io/v1beta1" || ar.Response.UID != "u-1" {
		t.Fatalf("refusal: %v %+v", err, ar)
	}
}

// Finding 3: label values never come from the request. 20,000 reviews
// with a unique 4 KB namespace and operation each leave the number of
// series and the live heap where they were, and /metrics names none of
// those namespaces.
func TestMetricLabelsStayBounded(t *testing.T) {
	h, _, reg := limitedHandler(t, DefaultLimits)
	send := func(i int) {
		tag := fmt.Sprintf("%06d", i)
		r := review{ns: tag + strings.Repeat("n", 4096), obj: futurePod}
		if i%2 == 1 {
			r.op = tag + strings.Repeat("O", 4096)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(r.JSON())))
		if w.Code != http.StatusOK {
			t.Fatalf("review %d: status %d %s", i, w.Code, w.Body)
		}
	}
	series := func() int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			n += len(mf.GetMetric())
		}
		return n
	}
	for i := range 4 { // every series these reviews can make exists
		send(i)
	}
	beforeSeries, beforeHeap := series(), liveHeap()
	const n = 20_000
	for i := 4; i < n; i++ {
		send(i)
	}
	afterSeries, afterHeap := series(), liveHeap()
	t.Logf("%d reviews: %d series before, %d after; live heap %+d KiB", n, beforeSeries, afterSeries, (int64(afterHeap)-int64(beforeHeap))>>10)
	if afterSeries != beforeSeries {
		t.Errorf("series grew from %d to %d: a label takes a value from the request", beforeSeries, afterSeries)
	}
	if grown := int64(afterHeap) - int64(beforeHeap); grown > 8<<20 {
		t.Errorf("live heap grew by %d MiB over %d reviews", grown>>20, n)
	}
	scrape := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(scrape, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sc := bufio.NewScanner(scrape.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "nnnnnnnn") {
			t.Fatalf("/metrics names a namespace: %.200s", sc.Text())
		}
	}
}
