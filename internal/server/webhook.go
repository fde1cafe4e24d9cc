package server

// This is the only file that imports kubewebhook. Our hardenWebhook
// implements its webhook.Webhook interface and returns the engine's own
// operations as the patch (never a diff of a re-marshalled object, which
// would drop fields this build does not know); kubewebhook's measured-webhook
// wrapper around it feeds the latency histogram, through closedLabels so
// that no label value comes from the request. The HTTP layer is ours (with
// body.go, which bounds the memory bodies take): kubewebhook's handler
// decodes every body twice (once to find its kind, once into the typed
// review), which costs about as much as a whole review, has no field for
// audit annotations, and panics on a review without a request. See
// docs/performance.md.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	kwhprom "github.com/slok/kubewebhook/v2/pkg/metrics/prometheus"
	kwhmodel "github.com/slok/kubewebhook/v2/pkg/model"
	kwhwebhook "github.com/slok/kubewebhook/v2/pkg/webhook"
	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

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

// NewHandler returns the /mutate handler with DefaultLimits: method
// (405), body read within the limits (a review too large, or with no room
// to read it, is answered allowed: false), one decoding pass of the review
// (400 when malformed), our webhook behind kubewebhook's measured-webhook
// wrapper, the response with its audit annotations, and panic recovery.
func NewHandler(d *Decider, reg prometheus.Registerer, logger *slog.Logger) (http.Handler, error) {
	return newHandler(d, reg, logger, DefaultLimits)
}

func newHandler(d *Decider, reg prometheus.Registerer, logger *slog.Logger, lim Limits) (*handler, error) {
	if lim.InFlight < lim.MaxBody {
		return nil, fmt.Errorf("in-flight body budget %d is below the largest body %d", lim.InFlight, lim.MaxBody)
	}
	var wh kwhwebhook.Webhook = &hardenWebhook{d: d, log: logger}
	if reg != nil {
		rec, err := kwhprom.NewRecorder(kwhprom.RecorderConfig{Registry: reg})
		if err != nil {
			return nil, fmt.Errorf("kubewebhook metrics recorder: %w", err)
		}
		wh = kwhwebhook.NewMeasuredWebhook(closedLabels{rec}, wh)
	}
	return &handler{webhook: wh, metrics: d.metrics, log: logger, limits: lim, budget: newBudget(lim.InFlight)}, nil
}

// closedLabels hands kubewebhook's recorder only label values from closed
// sets. Its wrapper labels the latency histogram with the namespace,
// operation and kind as the request states them; each new value is a new
// series kept for good, so a client sending unique values could grow
// memory and /metrics without bound. The namespace is left out (the API
// server's own webhook metrics and audit log have it), the others are
// bucketed.
type closedLabels struct{ next kwhwebhook.MetricsRecorder }

func (c closedLabels) close(d kwhwebhook.MeasureOpCommonData) kwhwebhook.MeasureOpCommonData {
	d.ResourceName, d.ResourceNamespace = "", ""
	d.Operation = operationLabel(d.Operation)
	if d.ResourceKind != "v1/Pod" {
		d.ResourceKind = labelOther
	}
	if v := d.AdmissionReviewVersion; v != string(kwhmodel.AdmissionReviewVersionV1) && v != string(kwhmodel.AdmissionReviewVersionV1beta1) {
		d.AdmissionReviewVersion = labelOther
	}
	return d
}

func (c closedLabels) MeasureValidatingWebhookReviewOp(ctx context.Context, d kwhwebhook.MeasureValidatingOpData) {
	d.MeasureOpCommonData = c.close(d.MeasureOpCommonData)
	c.next.MeasureValidatingWebhookReviewOp(ctx, d)
}

func (c closedLabels) MeasureMutatingWebhookReviewOp(ctx context.Context, d kwhwebhook.MeasureMutatingOpData) {
	d.MeasureOpCommonData = c.close(d.MeasureOpCommonData)
	c.next.MeasureMutatingWebhookReviewOp(ctx, d)
}

type handler struct {
	webhook kwhwebhook.Webhook
	metrics *Metrics
	log     *slog.Logger
	limits  Limits
	budget  budget
}

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
	res := &reservation{b: h.budget, ctx: r.Context(), wait: h.limits.Wait}
	defer res.release()
	if r.ContentLength > int64(h.limits.MaxBody) {
		// Known too large: answered from its first bytes, the rest unread.
		h.refuseTooLarge(w, readHead(nil, r.Body))
		return
	}
	pooled := bodies.Get().(*[]byte)
	body, err := readBody(r.Body, res, h.limits.MaxBody, *pooled)
	defer func() {
		if cap(body) <= maxPooledBody {
			*pooled = body[:0]
			bodies.Put(pooled)
		}
	}()
	switch {
	case errors.Is(err, errTooLarge):
		h.refuseTooLarge(w, body)
		return
	case errors.Is(err, errBusy):
		h.refuseBusy(w, readHead(body, r.Body))
		return
	case err != nil:
		h.badRequest(w, "reading the body: "+err.Error())
		return
	}
	ar, err := decodeReview(body)
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
	writeJSON(w, code, encodeResponse(ar.TypeMeta, resp))
}

func (h *handler) badRequest(w http.ResponseWriter, msg string) {
	h.metrics.badRequest("400")
	h.log.Warn("bad request", "error", msg)
	http.Error(w, msg, http.StatusBadRequest)
}

func (h *handler) refuseTooLarge(w http.ResponseWriter, head []byte) {
	h.metrics.unreviewed("too_large")
	h.log.Warn("review refused: larger than the limit", "limit", h.limits.MaxBody)
	writeJSON(w, http.StatusOK, refusal(head, http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge,
		fmt.Sprintf("pod-hardener cannot review an AdmissionReview larger than %d bytes, so it cannot harden this pod", h.limits.MaxBody)))
}

func (h *handler) refuseBusy(w http.ResponseWriter, head []byte) {
	h.metrics.unreviewed("busy")
	h.log.Warn("review refused: too many reviews in flight", "inFlightBytes", h.limits.InFlight)
	writeJSON(w, http.StatusOK, refusal(head, http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests,
		"pod-hardener is busy with other reviews and cannot harden this pod now; retry"))
}

// writeJSON writes an answer whose length is known: answers and refusals
// alike.
func writeJSON(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
