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

// podPlace is where a workload kind keeps its pod: the JSON pointer (""
// for a Pod, the whole document) and, for the one-pass read, the field of
// docShape that holds it (nil for a Pod).
type podPlace struct {
	pointer string
	in      func(*docShape) json.RawMessage
}

var (
	atTemplate     = podPlace{"/template", func(s *docShape) json.RawMessage { return s.Template }}
	atSpecTemplate = podPlace{"/spec/template", func(s *docShape) json.RawMessage { return s.Spec.Template }}
	atJobTemplate  = podPlace{"/spec/jobTemplate/spec/template", func(s *docShape) json.RawMessage { return s.Spec.JobTemplate.Spec.Template }}
)

// podPlaces lists the workload kinds and where each keeps its pod. Any
// apiVersion: extensions/v1beta1 Deployments and batch/v1beta1 CronJobs
// have the same shape.
var podPlaces = map[string]podPlace{
	"Pod":                   {},
	"PodTemplate":           atTemplate,
	"Deployment":            atSpecTemplate,
	"StatefulSet":           atSpecTemplate,
	"DaemonSet":             atSpecTemplate,
	"ReplicaSet":            atSpecTemplate,
	"ReplicationController": atSpecTemplate,
	"Job":                   atSpecTemplate,
	"CronJob":               atJobTemplate,
}

// docShape reads, in one pass, a document's header and every place
// podPlaces names (case-sensitively, as Extract's lookups are).
type docShape struct {
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
	var s docShape
	// A document the one-pass shape does not fit (a spec that is not an
	// object...) has its header read alone and its pod found by pointer.
	fits := kjson.UnmarshalCaseSensitivePreserveInts(doc, &s) == nil
	if !fits {
		s = docShape{}
		if err := kjson.UnmarshalCaseSensitivePreserveInts(doc, &s.Header); err != nil {
			return nil, fmt.Errorf("reading apiVersion/kind/metadata: %w", err)
		}
	}
	if strings.HasSuffix(s.Kind, "List") {
		return listWorkloads(doc, s.Kind)
	}
	place, ok := podPlaces[s.Kind]
	if !ok {
		return nil, nil
	}
	pod := json.RawMessage(doc)
	switch {
	case place.in == nil:
	case fits:
		pod = place.in(&s)
	default:
		var err error
		if pod, err = Extract(doc, place.pointer); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Header.ID(), err)
		}
	}
	if len(pod) == 0 || bytes.Equal(pod, []byte("null")) {
		return nil, fmt.Errorf("%s: no pod template at %s", s.Header.ID(), place.pointer)
	}
	return []Workload{{Header: s.Header, Pointer: place.pointer, Pod: pod}}, nil
}

// listWorkloads finds the pods of each item of a List.
func listWorkloads(doc []byte, kind string) ([]Workload, error) {
	var l struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(doc, &l); err != nil {
		return nil, fmt.Errorf("reading %s items: %w", kind, err)
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
