package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	kjson "sigs.k8s.io/json"
)

// Header is what identifies a document.
type Header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// ID names a workload for messages: Deployment apps/web.
func (h Header) ID() string {
	name := h.Metadata.Name
	if name == "" {
		name = "(unnamed)"
	}
	if h.Metadata.Namespace != "" {
		name = h.Metadata.Namespace + "/" + name
	}
	kind := h.Kind
	if kind == "" {
		kind = "(no kind)"
	}
	return kind + " " + name
}

// templatePaths maps a workload kind to the JSON pointer of its pod (for a
// Pod, the whole document). Any apiVersion: extensions/v1beta1 Deployments
// and batch/v1beta1 CronJobs have the same shape.
var templatePaths = map[string]string{
	"Pod":                   "",
	"PodTemplate":           "/template",
	"Deployment":            "/spec/template",
	"StatefulSet":           "/spec/template",
	"DaemonSet":             "/spec/template",
	"ReplicaSet":            "/spec/template",
	"ReplicationController": "/spec/template",
	"Job":                   "/spec/template",
	"CronJob":               "/spec/jobTemplate/spec/template",
}

// Workload is a pod found in a document.
type Workload struct {
	Header Header
	// Pointer is the JSON pointer of the pod in the document.
	Pointer string
	// Pod is the pod (or pod template) itself.
	Pod []byte
}

// Workloads finds the pods in a document: the document itself for a Pod,
// the template of a workload kind, and those of each item of a List. It
// returns none for other kinds.
func Workloads(doc []byte) ([]Workload, error) {
	// One pass reads the header and every place a pod template can be
	// (case-sensitively, as Extract's lookups are); a document where that
	// shape does not fit (a spec that is not an object...) takes the
	// general path below.
	var s struct {
		Header
		Template json.RawMessage `json:"template"`
		Spec     struct {
			Template    json.RawMessage `json:"template"`
			JobTemplate struct {
				Spec struct {
					Template json.RawMessage `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		} `json:"spec"`
	}
	if kjson.UnmarshalCaseSensitivePreserveInts(doc, &s) == nil && !strings.HasSuffix(s.Kind, "List") {
		ptr, ok := templatePaths[s.Kind]
		if !ok {
			return nil, nil
		}
		var pod json.RawMessage
		switch ptr {
		case "":
			pod = doc
		case "/template":
			pod = s.Template
		case "/spec/template":
			pod = s.Spec.Template
		case "/spec/jobTemplate/spec/template":
			pod = s.Spec.JobTemplate.Spec.Template
		}
		if len(pod) == 0 || bytes.Equal(pod, []byte("null")) {
			return nil, fmt.Errorf("%s: no pod template at %s", s.Header.ID(), ptr)
		}
		return []Workload{{Header: s.Header, Pointer: ptr, Pod: pod}}, nil
	}
	var h Header
	if err := kjson.UnmarshalCaseSensitivePreserveInts(doc, &h); err != nil {
		return nil, fmt.Errorf("reading apiVersion/kind/metadata: %w", err)
	}
	if strings.HasSuffix(h.Kind, "List") {
		var l struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := kjson.UnmarshalCaseSensitivePreserveInts(doc, &l); err != nil {
			return nil, fmt.Errorf("reading %s items: %w", h.Kind, err)
		}
		var out []Workload
		for i, item := range l.Items {
			ws, err := Workloads(item)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			for _, w := range ws {
				w.Pointer = fmt.Sprintf("/items/%d%s", i, w.Pointer)
				out = append(out, w)
			}
		}
		return out, nil
	}
	ptr, ok := templatePaths[h.Kind]
	if !ok {
		return nil, nil
	}
	pod, err := Extract(doc, ptr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.ID(), err)
	}
	return []Workload{{Header: h, Pointer: ptr, Pod: pod}}, nil
}

// Extract returns the raw JSON at a pointer made of object keys.
func Extract(doc []byte, pointer string) ([]byte, error) {
	cur := json.RawMessage(doc)
	if pointer == "" {
		return cur, nil
	}
	for _, key := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		var m map[string]json.RawMessage
		if err := kjson.UnmarshalCaseSensitivePreserveInts(cur, &m); err != nil {
			return nil, fmt.Errorf("no object at %s: %w", pointer, err)
		}
		next, ok := m[key]
		if !ok || bytes.Equal(bytes.TrimSpace(next), []byte("null")) {
			return nil, fmt.Errorf("no pod template at %s", pointer)
		}
		cur = next
	}
	return cur, nil
}
