package server

// This is the only file that imports kubewebhook. Our hardenWebhook
// implements its webhook.Webhook interface and returns the engine's own
// operations as the patch (never a diff of a re-marshalled object, which
// would drop fields this build does not know); kubewebhook's measured-webhook
// wrapper around it feeds the latency histogram. The HTTP layer is ours:
// kubewebhook's handler decodes every body twice (once to find its kind,
// once into the typed review), which costs as much as the floor webhook's
// whole review, has no field for audit annotations, and panics on a review
// without a request. See docs/performance.md.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	kwhprom "github.com/slok/kubewebhook/v2/pkg/metrics/prometheus"
	kwhmodel "github.com/slok/kubewebhook/v2/pkg/model"
	kwhwebhook "github.com/slok/kubewebhook/v2/pkg/webhook"
	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	var req *Request
	if x != nil && x.req != nil {
		req = x.req // read by our handler, pod included
	} else {
		req = toRequest(&ar)
	}
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
	if x != nil {
		x.annotations = dec.AuditAnnotations
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

type exchangeKey struct{}

// exchange passes what kubewebhook's model has no field for between our
// handler and our webhook: in, the request as the handler read it (its
// pod already decoded); out, the audit annotations.
type exchange struct {
	req         *Request
	annotations map[string]string
}

// NewHandler returns the /mutate handler: method and body limit (405,
// 413), one decoding pass of the review (400 when malformed), our webhook
// behind kubewebhook's measured-webhook wrapper, the response with its
// audit annotations, and panic recovery.
func NewHandler(d *Decider, reg prometheus.Registerer, logger *slog.Logger) (http.Handler, error) {
	var wh kwhwebhook.Webhook = &hardenWebhook{d: d, log: logger}
	if reg != nil {
		rec, err := kwhprom.NewRecorder(kwhprom.RecorderConfig{Registry: reg})
		if err != nil {
			return nil, fmt.Errorf("kubewebhook metrics recorder: %w", err)
		}
		wh = kwhwebhook.NewMeasuredWebhook(rec, wh)
	}
	return &handler{webhook: wh, metrics: d.metrics, log: logger}, nil
}

type handler struct {
	webhook kwhwebhook.Webhook
	metrics *Metrics
	log     *slog.Logger
}

// bodies recycles request buffers: a review is decoded into fresh values
// (strings and the raw objects are copied out), so its body is not needed
// once the review is decoded.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody keeps the rare huge body from being held by the pool.
const maxPooledBody = 1 << 20

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			h.metrics.panicked()
			h.log.Error("panic serving a review", "panic", fmt.Sprint(p))
			http.Error(w, "internal error: the review panicked; see the webhook's log", http.StatusInternalServerError)
		}
	}()
	if r.Method != http.MethodPost {
		h.metrics.badRequest("405")
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	if r.ContentLength > MaxBodyBytes {
		h.refuseTooLarge(w)
		return
	}
	buf := bodies.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bodies.Put(buf)
		}
	}()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, MaxBodyBytes+1)); err != nil {
		h.badRequest(w, "reading the body: "+err.Error())
		return
	}
	if buf.Len() > MaxBodyBytes {
		h.refuseTooLarge(w)
		return
	}
	ar, err := decodeReview(buf.Bytes())
	if err != nil {
		h.badRequest(w, err.Error())
		return
	}
	x := &exchange{req: ar.req}
	ctx := context.WithValue(r.Context(), exchangeKey{}, x)
	model := kwhmodel.NewAdmissionReviewV1(ar.original)
	if ar.APIVersion == admissionv1beta1.SchemeGroupVersion.String() {
		model.Version = kwhmodel.AdmissionReviewVersionV1beta1
	}
	out, err := h.webhook.Review(ctx, model)
	resp := &admissionv1.AdmissionResponse{UID: types.UID(ar.req.UID)}
	code := http.StatusOK
	switch o := out.(type) {
	case nil:
		// Our webhook answers every review; an error here comes from a
		// wrapper, and is a server fault, as kubewebhook answers it.
		h.log.Error("review failed", "uid", ar.req.UID, "error", err)
		code = http.StatusInternalServerError
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Message: fmt.Sprintf("review failed: %v", err)}
	case *kwhmodel.MutatingAdmissionResponse:
		resp.Allowed, resp.Warnings = true, o.Warnings
		if len(o.JSONPatchPatch) > 0 {
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType = o.JSONPatchPatch, &pt
		}
		resp.AuditAnnotations = x.annotations
	case *kwhmodel.ValidatingAdmissionResponse:
		resp.Allowed, resp.Warnings = o.Allowed, o.Warnings
		if !o.Allowed {
			resp.Result = &metav1.Status{Status: metav1.StatusFailure, Message: o.Message, Code: http.StatusBadRequest}
		}
		resp.AuditAnnotations = x.annotations
	default:
		panic(fmt.Sprintf("unknown admission response type %T", out))
	}
	body := encodeResponse(ar.TypeMeta, resp)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func (h *handler) badRequest(w http.ResponseWriter, msg string) {
	h.metrics.badRequest("400")
	h.log.Warn("bad request", "error", msg)
	http.Error(w, msg, http.StatusBadRequest)
}

func (h *handler) refuseTooLarge(w http.ResponseWriter) {
	h.metrics.badRequest("413")
	http.Error(w, fmt.Sprintf("AdmissionReview larger than %d bytes", MaxBodyBytes), http.StatusRequestEntityTooLarge)
}
