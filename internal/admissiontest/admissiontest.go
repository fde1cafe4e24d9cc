// Package admissiontest holds what the handler benchmarks and the load
// generator both need, so they measure against the same floor with the same
// requests: an AdmissionReview as the API server sends it, and the floor
// webhook (decode the review and the pod, allow).
package admissiontest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// UID is the request UID of every review CreateReview makes.
const UID = "705ab4f5-6393-11e8-b7cc-42010a800002"

// CreateReview wraps a pod in a v1 CREATE review as the API server sends
// it for a pod made by the ReplicaSet controller.
func CreateReview(pod []byte, name, namespace string) []byte {
	gvk := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gvr := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:             types.UID(UID),
			Kind:            gvk,
			Resource:        gvr,
			RequestKind:     &gvk,
			RequestResource: &gvr,
			Name:            name,
			Namespace:       namespace,
			Operation:       admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller",
				UID:    "3b8c0f1e-2a4d-4c55-9d1e-6f7a8b9c0d1e",
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}},
			Object:  runtime.RawExtension{Raw: pod},
			Options: runtime.RawExtension{Raw: []byte(`{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}`)},
			DryRun:  new(bool),
		},
	}
	b, err := json.Marshal(&ar)
	if err != nil {
		panic(err) // only typed values above: cannot fail
	}
	return b
}

// FloorAnnotation is what the floor adds when Patch is set.
const FloorAnnotation = "loadgen.floor/seen"

// Floor is the floor webhook: typed decoding of the review and the pod,
// and an allowed response. With Patch it also sets one annotation, so the
// API server pays for a mutation as with ours.
type Floor struct {
	Patch bool
	// MaxBody refuses larger bodies with 413 (0: no limit), the cost of
	// checking the size being what matters here; ours answers them
	// allowed: false instead.
	MaxBody int
	// DryRunWarning, when set, is returned on dry runs, so a caller can see
	// which webhook answered.
	DryRunWarning string
}

func (f Floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	var rd io.Reader = r.Body
	if f.MaxBody > 0 {
		rd = io.LimitReader(r.Body, int64(f.MaxBody)+1)
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if f.MaxBody > 0 && len(body) > f.MaxBody {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &ar); err != nil || ar.Request == nil {
		http.Error(w, "bad review", http.StatusBadRequest)
		return
	}
	var pod corev1.Pod
	if err := json.Unmarshal(ar.Request.Object.Raw, &pod); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: ar.Request.UID, Allowed: true}
	if f.Patch {
		op := `[{"op":"add","path":"/metadata/annotations","value":{"` + FloorAnnotation + `":"true"}}]`
		if pod.Annotations != nil {
			op = `[{"op":"add","path":"/metadata/annotations/` + strings.ReplaceAll(FloorAnnotation, "/", "~1") + `","value":"true"}]`
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = []byte(op), &pt
	}
	if f.DryRunWarning != "" && ar.Request.DryRun != nil && *ar.Request.DryRun {
		resp.Warnings = []string{f.DryRunWarning}
	}
	out, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: ar.TypeMeta, Response: resp})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}
