package server

// The /mutate handler, and the only file that imports kubewebhook. A
// review goes one way: body.go reads the body within the memory limits,
// decodeReview (review.go) reads the review once into a Request, Decide
// answers it, and the answer is written with its audit annotations.
// kubewebhook contributes its latency histograms: its Prometheus recorder,
// handed by measure what its measured-webhook wrapper would hand it,
// through closedLabels so that no label value comes from the request.
//
// Why not kubewebhook's handler and model, with what they lack added
// around them: its model has no resource, subresource or audit
// annotations, so the request and the annotations could only travel beside
// it; its handler decodes each body twice (once to find the kind), reads
// at most 6 MiB and answers a larger review with a 400, which
// failurePolicy Ignore turns into an unhardened pod, and panics on a
// review without a request. Measured, our webhook behind its handler
// allocates more and is slower on large pods than behind ours, before any
// of the work it lacks (docs/performance.md, "Measurements behind choices
// in the code").
//
// Why not its measured wrapper around a kubewebhook Webhook: the wrapper
// times Webhook.Review over a kubewebhook model, so the decoded request
// would have to reach the webhook, and the decision leave it, beside that
// call. Its recorder takes the same figures from ours directly.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kwhprom "github.com/slok/kubewebhook/v2/pkg/metrics/prometheus"
	kwhmodel "github.com/slok/kubewebhook/v2/pkg/model"
	kwhwebhook "github.com/slok/kubewebhook/v2/pkg/webhook"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// webhookID names the webhook in kubewebhook's metrics.
const webhookID = "pod-hardener"

// NewHandler returns the /mutate handler with DefaultLimits: method
// (405), body read within the limits (a review too large, or with no room
// to read it, is answered allowed: false), one decoding pass of the review
// (400 when malformed), the decision, timed into kubewebhook's latency
// histograms, the response with its audit annotations, and panic recovery.
func NewHandler(d *Decider, reg prometheus.Registerer, logger *slog.Logger) (http.Handler, error) {
	return newHandler(d, reg, logger, DefaultLimits)
}

func newHandler(d *Decider, reg prometheus.Registerer, logger *slog.Logger, lim Limits) (*handler, error) {
	if lim.InFlight < lim.MaxBody {
		return nil, fmt.Errorf("in-flight body budget %d is below the largest body %d", lim.InFlight, lim.MaxBody)
	}
	h := &handler{d: d, rec: kwhwebhook.NoopMetricsRecorder, metrics: d.metrics, log: logger, limits: lim, budget: newBudget(lim.InFlight)}
	if reg != nil {
		rec, err := kwhprom.NewRecorder(kwhprom.RecorderConfig{Registry: reg})
		if err != nil {
			return nil, fmt.Errorf("kubewebhook metrics recorder: %w", err)
		}
		h.rec = closedLabels{rec}
	}
	return h, nil
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
	d       *Decider
	rec     kwhwebhook.MetricsRecorder
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
	t0 := time.Now()
	dec := h.decide(r.Context(), ar.req)
	h.measure(r.Context(), ar, dec, time.Since(t0))
	writeJSON(w, http.StatusOK, encodeResponse(ar.TypeMeta, response(ar.req.UID, dec)))
}

// decide answers every review that was read: a pod that cannot be read is
// rejected, not errored, since with failurePolicy Ignore an error would
// admit it unhardened.
func (h *handler) decide(ctx context.Context, req *Request) *Decision {
	dec, err := h.d.Decide(ctx, req)
	if err != nil {
		h.metrics.review(req.Operation, "error")
		h.log.Warn("review rejected: unreadable object", "uid", req.UID, "namespace", req.Namespace, "error", err)
		return &Decision{Message: "pod-hardener cannot read this object, so it cannot harden it: " + err.Error(), Outcome: "error"}
	}
	h.metrics.review(req.Operation, dec.Outcome)
	// One line per review at debug (the API server's audit log has our
	// audit annotations); rejections at info.
	if level := slog.LevelDebug; dec.Outcome != "skipped" && h.log.Enabled(ctx, level) || dec.Outcome == "denied" {
		if dec.Outcome == "denied" {
			level = slog.LevelInfo
		}
		h.log.Log(ctx, level, "review", "uid", req.UID, "namespace", req.Namespace, "name", req.Name, "operation", req.Operation,
			"subresource", req.SubResource, "user", req.User, "outcome", dec.Outcome, "profile", dec.AuditAnnotations["profile"],
			"warnings", len(dec.Warnings), "dryRun", req.DryRun)
	}
	return dec
}

// measure hands kubewebhook's recorder what its measured wrapper would:
// an answer that allows is a mutating review, a rejection a validating one
// (as the wrapper tells them by kubewebhook's response type).
func (h *handler) measure(ctx context.Context, ar *decodedReview, dec *Decision, took time.Duration) {
	d := kwhwebhook.MeasureOpCommonData{
		WebhookID:              webhookID,
		AdmissionReviewVersion: strings.TrimPrefix(ar.APIVersion, admissionv1.SchemeGroupVersion.Group+"/"),
		Duration:               took,
		Success:                true,
		ResourceName:           ar.req.Name,
		ResourceNamespace:      ar.req.Namespace,
		Operation:              ar.req.Operation,
		ResourceKind:           ar.kind,
		DryRun:                 ar.req.DryRun,
		WarningsNumber:         len(dec.Warnings),
	}
	if dec.Allowed {
		d.WebhookType = kwhmodel.WebhookKindMutating
		h.rec.MeasureMutatingWebhookReviewOp(ctx, kwhwebhook.MeasureMutatingOpData{MeasureOpCommonData: d, Mutated: len(dec.Patch) > 0})
		return
	}
	d.WebhookType = kwhmodel.WebhookKindValidating
	h.rec.MeasureValidatingWebhookReviewOp(ctx, kwhwebhook.MeasureValidatingOpData{MeasureOpCommonData: d})
}

// response is the AdmissionResponse for a decision.
func response(uid string, dec *Decision) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: types.UID(uid), Allowed: dec.Allowed, Warnings: dec.Warnings, AuditAnnotations: dec.AuditAnnotations}
	switch {
	case !dec.Allowed:
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Message: dec.Message, Code: http.StatusBadRequest}
	case len(dec.Patch) > 0:
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = dec.Patch, &pt
	}
	return resp
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
