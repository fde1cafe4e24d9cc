package server

// This is the only file that imports kubewebhook: its HTTP handler decodes
// the AdmissionReview and encodes the response, its measured-webhook
// wrapper feeds the latency histogram, and our Webhook returns the engine's
// own operations as the patch (never a diff of a re-marshalled object,
// which would drop fields this build does not know).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	kwhhttp "github.com/slok/kubewebhook/v2/pkg/http"
	kwhlog "github.com/slok/kubewebhook/v2/pkg/log"
	kwhprom "github.com/slok/kubewebhook/v2/pkg/metrics/prometheus"
	kwhmodel "github.com/slok/kubewebhook/v2/pkg/model"
	kwhwebhook "github.com/slok/kubewebhook/v2/pkg/webhook"
	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
)

// MaxBodyBytes is the largest AdmissionReview accepted; larger bodies get
// 413. The API server's own limit for an object is 3 MiB, and a review
// carries the object twice at most.
const MaxBodyBytes = 6 << 20

// webhookID names the webhook in kubewebhook's metrics.
const webhookID = "pod-hardener"

type hardenWebhook struct {
	d   *Decider
	log *slog.Logger
}

func (w *hardenWebhook) ID() string                 { return webhookID }
func (w *hardenWebhook) Kind() kwhmodel.WebhookKind { return kwhmodel.WebhookKindMutating }

func (w *hardenWebhook) Review(ctx context.Context, ar kwhmodel.AdmissionReview) (kwhmodel.AdmissionResponse, error) {
	holder, _ := ctx.Value(auditKey{}).(*auditHolder)
	if holder != nil {
		holder.reviewing = true
	}
	req := toRequest(&ar)
	dec, err := w.d.Decide(ctx, req)
	if err != nil {
		// A pod we cannot read is rejected, not errored: with
		// failurePolicy Ignore an error would admit it unhardened.
		w.d.metrics.review(req.Operation, "error")
		w.log.Warn("review rejected: unreadable object", "uid", req.UID, "namespace", req.Namespace, "error", err)
		return &kwhmodel.ValidatingAdmissionResponse{ID: req.UID, Allowed: false,
			Message: "pod-hardener cannot read this object, so it cannot harden it: " + err.Error()}, nil
	}
	w.d.metrics.review(req.Operation, dec.Outcome)
	if holder != nil {
		holder.annotations = dec.AuditAnnotations
	}
	// One line per review at debug (the API server's audit log has our
	// audit annotations); rejections at info.
	if level := slog.LevelDebug; dec.Outcome != "skipped" && w.log.Enabled(ctx, level) || dec.Outcome == "denied" {
		if dec.Outcome == "denied" {
			level = slog.LevelInfo
		}
		w.log.Log(ctx, level, "review", "uid", req.UID, "namespace", req.Namespace, "name", req.Name, "operation", req.Operation,
			"subresource", req.SubResource, "user", req.User, "outcome", dec.Outcome, "profile", dec.AuditAnnotations["profile"],
			"warnings", len(dec.Warnings), "dryRun", req.DryRun)
	}
	if !dec.Allowed {
		return &kwhmodel.ValidatingAdmissionResponse{ID: req.UID, Allowed: false, Message: dec.Message, Warnings: dec.Warnings}, nil
	}
	return &kwhmodel.MutatingAdmissionResponse{ID: req.UID, JSONPatchPatch: dec.Patch, Warnings: dec.Warnings}, nil
}

func toRequest(ar *kwhmodel.AdmissionReview) *Request {
	r := &Request{
		UID:       ar.ID,
		Operation: strings.ToUpper(string(ar.Operation)),
		Namespace: ar.Namespace,
		Name:      ar.Name,
		Object:    ar.NewObjectRaw,
		OldObject: ar.OldObjectRaw,
		DryRun:    ar.DryRun,
		User:      ar.UserInfo.Username,
		Groups:    ar.UserInfo.Groups,
	}
	// The model drops the resource and subresource; the original review has
	// them, and they decide what is hardened.
	switch o := ar.OriginalAdmissionReview.(type) {
	case *admissionv1.AdmissionReview:
		r.Group, r.Resource, r.SubResource = o.Request.Resource.Group, o.Request.Resource.Resource, o.Request.SubResource
	case *admissionv1beta1.AdmissionReview:
		r.Group, r.Resource, r.SubResource = o.Request.Resource.Group, o.Request.Resource.Resource, o.Request.SubResource
	}
	return r
}

type auditKey struct{}

// auditHolder carries audit annotations from Review to the HTTP layer,
// since kubewebhook's response model has no field for them; reviewing
// tells a panic in our review from one in kubewebhook's decoding.
type auditHolder struct {
	annotations map[string]string
	reviewing   bool
}

// NewHandler returns the /mutate handler: body limit (413), panic recovery,
// kubewebhook's handler around our measured webhook, and audit annotations
// added to the response.
func NewHandler(d *Decider, reg prometheus.Registerer, logger *slog.Logger) (http.Handler, error) {
	var wh kwhwebhook.Webhook = &hardenWebhook{d: d, log: logger}
	if reg != nil {
		rec, err := kwhprom.NewRecorder(kwhprom.RecorderConfig{Registry: reg})
		if err != nil {
			return nil, fmt.Errorf("kubewebhook metrics recorder: %w", err)
		}
		wh = kwhwebhook.NewMeasuredWebhook(rec, wh)
	}
	inner, err := kwhhttp.HandlerFor(kwhhttp.HandlerConfig{Webhook: wh, Logger: kwhLogger{l: logger}})
	if err != nil {
		return nil, fmt.Errorf("kubewebhook handler: %w", err)
	}
	return &guard{next: inner, metrics: d.metrics, log: logger}, nil
}

// guard is the outer layer of /mutate.
type guard struct {
	next    http.Handler
	metrics *Metrics
	log     *slog.Logger
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	holder := &auditHolder{}
	defer func() {
		if p := recover(); p != nil {
			if !holder.reviewing {
				// kubewebhook panics building its model from a review
				// without a request: that is a malformed body.
				g.metrics.badRequest("400")
				http.Error(w, fmt.Sprintf("malformed AdmissionReview: %v", p), http.StatusBadRequest)
				return
			}
			g.metrics.panicked()
			g.log.Error("panic serving a review", "panic", fmt.Sprint(p))
			http.Error(w, "internal error: the review panicked; see the webhook's log", http.StatusInternalServerError)
		}
	}()
	if r.Method != http.MethodPost {
		g.metrics.badRequest("405")
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	if r.ContentLength > MaxBodyBytes {
		g.refuseTooLarge(w)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		g.metrics.badRequest("400")
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > MaxBodyBytes {
		g.refuseTooLarge(w)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), auditKey{}, holder))
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	g.next.ServeHTTP(rec, r)
	out := rec.body.Bytes()
	if rec.code == http.StatusBadRequest {
		g.metrics.badRequest("400")
	}
	if rec.code == http.StatusOK && len(holder.annotations) > 0 {
		if b, err := withAuditAnnotations(out, holder.annotations); err == nil {
			out = b
		} else {
			g.log.Warn("could not add audit annotations", "error", err)
		}
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(rec.code)
	_, _ = w.Write(out)
}

func (g *guard) refuseTooLarge(w http.ResponseWriter) {
	g.metrics.badRequest("413")
	http.Error(w, fmt.Sprintf("AdmissionReview larger than %d bytes", MaxBodyBytes), http.StatusRequestEntityTooLarge)
}

// withAuditAnnotations adds audit annotations to an encoded response.
// kubewebhook's encoder writes the response object last, so the common
// case splices the field in before the closing braces instead of decoding
// and re-encoding the whole review (which cost more than the review itself
// on large pods); anything else takes the slow, general path.
func withAuditAnnotations(resp []byte, ann map[string]string) ([]byte, error) {
	b, err := json.Marshal(ann)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimRight(resp, " \n")
	if bytes.HasSuffix(trimmed, []byte("}}")) && bytes.Contains(trimmed, []byte(`"response":{"`)) &&
		!bytes.Contains(trimmed, []byte(`"auditAnnotations"`)) {
		out := make([]byte, 0, len(trimmed)+len(b)+24)
		out = append(out, trimmed[:len(trimmed)-2]...)
		out = append(out, `,"auditAnnotations":`...)
		out = append(out, b...)
		return append(out, "}}"...), nil
	}
	var ar map[string]json.RawMessage
	if err := json.Unmarshal(resp, &ar); err != nil {
		return nil, err
	}
	var r map[string]json.RawMessage
	if err := json.Unmarshal(ar["response"], &r); err != nil {
		return nil, err
	}
	r["auditAnnotations"] = b
	if ar["response"], err = json.Marshal(r); err != nil {
		return nil, err
	}
	return json.Marshal(ar)
}

// recorder buffers kubewebhook's response so the guard can complete it.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// kwhLogger sends kubewebhook's log lines to slog. Values are kept as
// given and turned into slog attributes only when a line is logged, since
// kubewebhook attaches a dozen values to every request.
type kwhLogger struct {
	l  *slog.Logger
	kv []kwhlog.Kv
}

func (k kwhLogger) log(level slog.Level, f string, a []any) {
	if !k.l.Enabled(context.Background(), level) {
		return
	}
	var args []any
	for _, kv := range k.kv {
		for key, v := range kv {
			args = append(args, key, v)
		}
	}
	k.l.Log(context.Background(), level, fmt.Sprintf(f, a...), args...)
}

// kubewebhook logs every handled review at info: that is our debug.
func (k kwhLogger) Infof(f string, a ...any)    { k.log(slog.LevelDebug, f, a) }
func (k kwhLogger) Warningf(f string, a ...any) { k.log(slog.LevelWarn, f, a) }
func (k kwhLogger) Errorf(f string, a ...any)   { k.log(slog.LevelError, f, a) }
func (k kwhLogger) Debugf(f string, a ...any)   { k.log(slog.LevelDebug, f, a) }
func (k kwhLogger) WithValues(kv kwhlog.Kv) kwhlog.Logger {
	return kwhLogger{l: k.l, kv: append(k.kv[:len(k.kv):len(k.kv)], kv)}
}
func (k kwhLogger) WithCtxValues(ctx context.Context) kwhlog.Logger {
	return k.WithValues(kwhlog.ValuesFromCtx(ctx))
}
func (k kwhLogger) SetValuesOnCtx(parent context.Context, values kwhlog.Kv) context.Context {
	return kwhlog.CtxWithValues(parent, values)
}
