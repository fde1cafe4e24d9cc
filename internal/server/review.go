package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kjson "sigs.k8s.io/json"

	"github.com/pod-hardener/pod-hardener/internal/jsonenc"
	"github.com/pod-hardener/pod-hardener/mutate"
)

// reviewIn is an AdmissionReview as the handler reads it: v1 and v1beta1
// share this JSON shape. O is the object's type: *mutate.Pod to decode a
// pod with the review in one pass, json.RawMessage to keep it as written.
type reviewIn[O any] struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Request    *requestIn[O] `json:"request"`
}

type requestIn[O any] struct {
	UID                types.UID                    `json:"uid"`
	Kind               metav1.GroupVersionKind      `json:"kind"`
	Resource           metav1.GroupVersionResource  `json:"resource"`
	SubResource        string                       `json:"subResource"`
	RequestKind        *metav1.GroupVersionKind     `json:"requestKind"`
	RequestResource    *metav1.GroupVersionResource `json:"requestResource"`
	RequestSubResource string                       `json:"requestSubResource"`
	Name               string                       `json:"name"`
	Namespace          string                       `json:"namespace"`
	Operation          admissionv1.Operation        `json:"operation"`
	UserInfo           authenticationv1.UserInfo    `json:"userInfo"`
	Object             O                            `json:"object"`
	OldObject          json.RawMessage              `json:"oldObject"`
	DryRun             *bool                        `json:"dryRun"`
}

// decodedReview is a review read by decodeReview.
type decodedReview struct {
	// TypeMeta is echoed in the response (v1 or v1beta1).
	metav1.TypeMeta
	req *Request
	// original is the review for kubewebhook's model; its object is left
	// out when the pod was decoded with the review.
	original *admissionv1.AdmissionReview
}

var (
	errNoBody    = errors.New("no body found: POST an AdmissionReview")
	errNoRequest = errors.New("malformed AdmissionReview: no request")
)

// decodeReview reads an AdmissionReview. A pod CREATE, nearly every review
// the webhook gets, is read in one pass with its pod (case-sensitive,
// duplicate keys refused, as decodePod reads pods). Anything else, or a
// review that pass cannot read, is read again with its objects kept raw,
// so what is wrong with the object is reported as it is for any other
// pod: an answer, not a 400.
func decodeReview(body []byte) (*decodedReview, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errNoBody
	}
	var fast reviewIn[*mutate.Pod]
	strict, err := kjson.UnmarshalStrict(body, &fast, kjson.DisallowDuplicateFields)
	if err == nil && len(strict) == 0 && validEnvelope(fast.APIVersion, fast.Kind) == nil && fast.Request != nil && fast.Request.Object != nil {
		d := decoded(fast.APIVersion, fast.Kind, fast.Request, nil)
		if d.req.hardensWholePod() {
			d.req.Pod = fast.Request.Object
			d.req.review = body
			return d, nil
		}
	}
	var slow reviewIn[json.RawMessage]
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &slow); err != nil {
		return nil, fmt.Errorf("could not decode the admission review from the request: %w", err)
	}
	if err := validEnvelope(slow.APIVersion, slow.Kind); err != nil {
		return nil, err
	}
	if slow.Request == nil {
		return nil, errNoRequest
	}
	return decoded(slow.APIVersion, slow.Kind, slow.Request, raw(slow.Request.Object)), nil
}

func validEnvelope(apiVersion, kind string) error {
	if kind == "AdmissionReview" && (apiVersion == admissionv1.SchemeGroupVersion.String() || apiVersion == admissionv1beta1.SchemeGroupVersion.String()) {
		return nil
	}
	return fmt.Errorf("could not decode the admission review from the request: got apiVersion %q kind %q, want AdmissionReview of %s or %s",
		apiVersion, kind, admissionv1.SchemeGroupVersion, admissionv1beta1.SchemeGroupVersion)
}

// raw treats null as absent, as runtime.RawExtension does.
func raw(m json.RawMessage) []byte {
	if bytes.Equal(m, []byte("null")) {
		return nil
	}
	return m
}

func decoded[O any](apiVersion, kind string, in *requestIn[O], object []byte) *decodedReview {
	old := raw(in.OldObject)
	d := &decodedReview{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}}
	d.original = &admissionv1.AdmissionReview{TypeMeta: d.TypeMeta, Request: &admissionv1.AdmissionRequest{
		UID: in.UID, Kind: in.Kind, Resource: in.Resource, SubResource: in.SubResource,
		RequestKind: in.RequestKind, RequestResource: in.RequestResource, RequestSubResource: in.RequestSubResource,
		Name: in.Name, Namespace: in.Namespace, Operation: in.Operation, UserInfo: in.UserInfo,
		Object: runtime.RawExtension{Raw: object}, OldObject: runtime.RawExtension{Raw: old}, DryRun: in.DryRun,
	}}
	d.req = &Request{
		UID:         string(in.UID),
		Operation:   string(in.Operation),
		Group:       in.Resource.Group,
		Resource:    in.Resource.Resource,
		SubResource: in.SubResource,
		Namespace:   in.Namespace,
		Name:        in.Name,
		Object:      object,
		OldObject:   old,
		DryRun:      in.DryRun != nil && *in.DryRun,
		User:        in.UserInfo.Username,
		Groups:      in.UserInfo.Groups,
	}
	return d
}

// encodeResponse writes the AdmissionReview answer as encoding/json would
// write admissionv1.AdmissionReview{TypeMeta, Response} (the test holds it
// to that), in one buffer: the patch, most of a large answer, is written
// once as base64 instead of encoded, then re-validated and copied.
func encodeResponse(tm metav1.TypeMeta, r *admissionv1.AdmissionResponse) []byte {
	// The fixed part (keys, uid, patch type) is under 256 bytes.
	n := 256 + base64.StdEncoding.EncodedLen(len(r.Patch))
	for _, w := range r.Warnings {
		n += len(w) + 8
	}
	for k, v := range r.AuditAnnotations {
		n += len(k) + len(v) + 8
	}
	b := make([]byte, 0, n)
	b = append(b, `{"kind":`...)
	b = jsonenc.AppendString(b, tm.Kind)
	b = append(b, `,"apiVersion":`...)
	b = jsonenc.AppendString(b, tm.APIVersion)
	b = append(b, `,"response":{"uid":`...)
	b = jsonenc.AppendString(b, string(r.UID))
	b = append(b, `,"allowed":`...)
	b = strconv.AppendBool(b, r.Allowed)
	if r.Result != nil {
		s, err := json.Marshal(r.Result)
		if err != nil {
			panic(fmt.Sprintf("encoding a metav1.Status: %v", err)) // typed values only
		}
		b = append(b, `,"status":`...)
		b = append(b, s...)
	}
	if len(r.Patch) > 0 {
		b = append(b, `,"patch":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.Patch)
		b = append(b, '"')
	}
	if r.PatchType != nil {
		b = append(b, `,"patchType":`...)
		b = jsonenc.AppendString(b, string(*r.PatchType))
	}
	if len(r.AuditAnnotations) > 0 {
		keys := make([]string, 0, len(r.AuditAnnotations))
		for k := range r.AuditAnnotations {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, `,"auditAnnotations":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, k)
			b = append(b, ':')
			b = jsonenc.AppendString(b, r.AuditAnnotations[k])
		}
		b = append(b, '}')
	}
	if len(r.Warnings) > 0 {
		b = append(b, `,"warnings":[`...)
		for i, w := range r.Warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, w)
		}
		b = append(b, ']')
	}
	return append(b, "}}"...)
}
