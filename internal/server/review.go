package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kjson "sigs.k8s.io/json"

	"github.com/pod-hardener/pod-hardener/internal/jsonenc"
)

// reviewIn is an AdmissionReview as the handler reads it: v1 and v1beta1
// share this JSON shape.
type reviewIn struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Request    *requestIn `json:"request"`
}

type requestIn struct {
	UID         types.UID                   `json:"uid"`
	Kind        metav1.GroupVersionKind     `json:"kind"`
	Resource    metav1.GroupVersionResource `json:"resource"`
	SubResource string                      `json:"subResource"`
	RequestKind *metav1.GroupVersionKind    `json:"requestKind"`
	Name        string                      `json:"name"`
	Namespace   string                      `json:"namespace"`
	Operation   admissionv1.Operation       `json:"operation"`
	UserInfo    authenticationv1.UserInfo   `json:"userInfo"`
	Object      rawObject                   `json:"object"`
	OldObject   rawObject                   `json:"oldObject"`
	DryRun      *bool                       `json:"dryRun"`
}

// rawObject is an object as it stands in the body, not copied: the engine
// decodes it (as the CLI's and the audit's pods), and a hardened pod that
// must be judged is judged from these bytes. null reads as absent, as
// runtime.RawExtension reads it.
type rawObject []byte

func (o *rawObject) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*o = nil
		return nil
	}
	*o = b
	return nil
}

// decodedReview is a review read by decodeReview.
type decodedReview struct {
	// TypeMeta is echoed in the response (v1 or v1beta1).
	metav1.TypeMeta
	req *Request
	// kind is the request's kind as kubewebhook's measured wrapper names
	// it (group/version/kind), for the latency histogram.
	kind string
}

var (
	errNoBody    = errors.New("no body found: POST an AdmissionReview")
	errNoRequest = errors.New("malformed AdmissionReview: no request")
)

// decodeReview reads an AdmissionReview in one pass, keys case-sensitive
// (encoding/json would take a case variant such as "OBjeCt" for the
// object). Its objects are kept as written: what is wrong with a pod is
// the engine's to report, in an answer, not a 400.
func decodeReview(body []byte) (*decodedReview, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errNoBody
	}
	var in reviewIn
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &in); err != nil {
		return nil, fmt.Errorf("could not decode the admission review from the request: %w", err)
	}
	if in.Kind != "AdmissionReview" || (in.APIVersion != admissionv1.SchemeGroupVersion.String() && in.APIVersion != admissionv1beta1.SchemeGroupVersion.String()) {
		return nil, fmt.Errorf("could not decode the admission review from the request: got apiVersion %q kind %q, want AdmissionReview of %s or %s",
			in.APIVersion, in.Kind, admissionv1.SchemeGroupVersion, admissionv1beta1.SchemeGroupVersion)
	}
	r := in.Request
	if r == nil {
		return nil, errNoRequest
	}
	kind := r.Kind
	if r.RequestKind != nil {
		kind = *r.RequestKind
	}
	return &decodedReview{
		TypeMeta: metav1.TypeMeta{APIVersion: in.APIVersion, Kind: in.Kind},
		kind:     strings.Trim(kind.Group+"/"+kind.Version+"/"+kind.Kind, "/"),
		req: &Request{
			UID:         string(r.UID),
			Operation:   string(r.Operation),
			Group:       r.Resource.Group,
			Resource:    r.Resource.Resource,
			SubResource: r.SubResource,
			Namespace:   r.Namespace,
			Name:        r.Name,
			Object:      r.Object,
			OldObject:   r.OldObject,
			DryRun:      r.DryRun != nil && *r.DryRun,
			User:        r.UserInfo.Username,
			Groups:      r.UserInfo.Groups,
		},
	}, nil
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
