// Package manifest reads and writes workload manifests: multi-document YAML
// or JSON in, the pod template of each workload found, ordered YAML out.
package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// MaxDocumentBytes bounds one document, so a hostile or broken file cannot
// make the reader allocate without limit.
const MaxDocumentBytes = 32 << 20

// Document is one document of the input, as JSON.
type Document struct {
	// Index counts documents from 1, as a person would.
	Index int
	JSON  []byte
	// Source is the document as written, to keep its key order on output.
	Source []byte
	// Err is set when the document could not be read; JSON is then nil.
	Err error
	// node is Source parsed by go-yaml v3, for splicing; nil when it could
	// not parse it.
	node *yamlv3.Node
	// fast: JSON was converted from node, so node and JSON agree exactly
	// (the only case where the patch is spliced into Source).
	fast bool
	// CommentsOnly: the comments after a stream's last document, and
	// nothing else (Index 0, JSON nil).
	CommentsOnly bool
}

// Read splits a stream of YAML documents (JSON is YAML too) into JSON
// documents. Empty documents are skipped; a broken one is returned with Err
// and reading goes on with the next.
func Read(r io.Reader) ([]Document, error) {
	var docs []Document
	rd := NewReader(r)
	for {
		d, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		docs = append(docs, *d)
	}
}

// Reader reads documents one at a time, so a large input is never held
// whole in memory.
type Reader struct {
	yr *k8syaml.YAMLReader
	n  int
	// comments: a comment-only chunk (a file's header before its first
	// "---"), kept to open the next document's source so that writing it
	// back loses nothing.
	comments []byte
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	return &Reader{yr: k8syaml.NewYAMLReader(bufio.NewReaderSize(r, 64<<10))}
}

// Next returns the next document (with Err set if it cannot be read), or
// io.EOF after the last; any other error ends the stream.
func (r *Reader) Next() (*Document, error) {
	for {
		raw, err := r.yr.Read()
		if errors.Is(err, io.EOF) {
			if len(r.comments) > 0 {
				// Comments after the last document: handed back on their
				// own, so writing the stream back loses nothing.
				d := &Document{Source: r.comments, CommentsOnly: true}
				r.comments = nil
				return d, nil
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("reading document %d: %w", r.n+1, err)
		}
		if len(raw) > MaxDocumentBytes {
			r.n++
			return &Document{Index: r.n, Err: fmt.Errorf("document is %d bytes, over the %d limit", len(raw), MaxDocumentBytes)}, nil
		}
		if isEmpty(raw) {
			if len(r.comments)+len(raw) <= maxHeaderBytes {
				r.comments = appendComments(r.comments, raw)
			}
			continue
		}
		if len(r.comments) > 0 {
			raw = append(r.comments[:len(r.comments):len(r.comments)], raw...)
		}
		d := &Document{Index: r.n + 1, Source: raw}
		// One parse serves both the JSON and the splicing; what nodeJSON
		// declines is read again as kubectl reads it.
		var node yamlv3.Node
		if yamlv3.Unmarshal(raw, &node) == nil {
			d.node = &node
			d.JSON, d.fast = docJSON(raw, &node)
		}
		if d.JSON == nil {
			j, err := yaml.YAMLToJSON(raw)
			if err != nil {
				r.n++
				return &Document{Index: r.n, Err: fmt.Errorf("parsing YAML: %w", err)}, nil
			}
			d.JSON = j
		}
		if bytes.Equal(bytes.TrimSpace(d.JSON), []byte("null")) {
			continue // its comments, if any, go on to the next document
		}
		r.comments = nil
		r.n++
		return d, nil
	}
}

// maxHeaderBytes bounds the comments kept for the next document.
const maxHeaderBytes = 1 << 20

// appendComments appends the comment lines of an empty chunk.
func appendComments(b, chunk []byte) []byte {
	for _, l := range bytes.SplitAfter(chunk, []byte("\n")) {
		if isComment(l) {
			b = append(b, bytes.TrimRight(l, "\r\n")...)
			b = append(b, '\n')
		}
	}
	return b
}

// HasComments: some line of a document's source is a comment.
func HasComments(src []byte) bool {
	for _, l := range bytes.Split(src, []byte("\n")) {
		if isComment(l) {
			return true
		}
	}
	return false
}

// isComment: the line is a comment (after any indentation).
func isComment(line []byte) bool {
	t := bytes.TrimSpace(line)
	return len(t) > 0 && t[0] == '#'
}

// isEmpty: only blank lines, comments and document markers.
func isEmpty(raw []byte) bool {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		l := bytes.TrimSpace(line)
		if len(l) > 0 && l[0] != '#' && string(l) != "---" {
			return false
		}
	}
	return true
}

// block: the document was parsed, and is block YAML (not JSON or flow).
func (d *Document) block() bool {
	return d.node != nil && len(d.node.Content) == 1 && d.node.Content[0].Style&yamlv3.FlowStyle == 0
}

// Renderer writes documents as YAML, caching rendered values across
// documents. Not safe for concurrent use.
type Renderer struct {
	cache  map[string]string
	values map[string]*yamlv3.Node
	// Rendered counts Patched's documents rendered from JSON (the others
	// were spliced into their source).
	Rendered int
}

// NewRenderer returns a Renderer.
func NewRenderer() *Renderer { return &Renderer{cache: map[string]string{}} }

// Original is the document as YAML before any change: its source as
// written when that is block YAML, else rendered from its JSON (a JSON or
// flow-style document comes out as block YAML either way).
func (r *Renderer) Original(d *Document) ([]byte, error) {
	if d.CommentsOnly {
		return d.Source, nil
	}
	if d.block() && !d.endsInOpenBlockScalar() {
		if len(d.Source) > 0 && d.Source[len(d.Source)-1] != '\n' {
			return append(d.Source[:len(d.Source):len(d.Source)], '\n'), nil
		}
		return d.Source, nil
	}
	return ToYAML(d.JSON, d.Source)
}

// Patched is the document after an RFC 6902 patch made by the engine, as
// YAML: the patch spliced into the source as written (comments, quoting
// and order kept) when it can be, else patched() (the JSON after the
// patch, asked for only then) rendered in the user's key order.
func (r *Renderer) Patched(d *Document, ops []Op, patched func() ([]byte, error)) ([]byte, error) {
	if len(ops) == 0 {
		return r.Original(d)
	}
	if d.block() && d.fast {
		out, err := splice(d.Source, d.node, ops, r.cache)
		if err == nil {
			if want, ok := r.expected(d, ops); ok && readsAs(out, want) {
				return out, nil
			}
		}
		if err != nil && !errors.Is(err, errDecline) {
			return nil, err
		}
		// Declined, or (a splicer bug) text that would not read as the
		// hardened document: never write that, render instead.
	}
	j, err := patched()
	if err != nil {
		return nil, err
	}
	r.Rendered++
	return ToYAML(j, d.Source)
}

// expected is the document's JSON after the operations, computed on its
// parsed tree (copied along each operation's path; the tree itself is
// not changed), in the same key order a splice writes: what the spliced
// text must read as. Applying the patch with a JSON patch library cost as
// much again as the check itself; the tests still hold every spliced
// document to evanphx/json-patch's result.
func (r *Renderer) expected(d *Document, ops []Op) ([]byte, bool) {
	root := cloneNode(d.node.Content[0])
	for _, op := range ops {
		tokens, err := pointerTokens(op.Path)
		if err != nil || len(tokens) == 0 {
			return nil, false
		}
		parent := root
		for _, t := range tokens[:len(tokens)-1] {
			i := childIndex(parent, t)
			if i < 0 {
				return nil, false
			}
			parent.Content[i] = cloneNode(parent.Content[i])
			parent = parent.Content[i]
		}
		last := tokens[len(tokens)-1]
		var val *yamlv3.Node
		if op.Op != "remove" {
			if val = r.valueNode(op.Value); val == nil {
				return nil, false
			}
		}
		switch {
		case op.Op == "add" && parent.Kind == yamlv3.MappingNode && childIndex(parent, last) < 0:
			parent.Content = append(parent.Content, &yamlv3.Node{Kind: yamlv3.ScalarNode, Tag: "!!str", Value: last}, val)
		case op.Op == "add" && parent.Kind == yamlv3.SequenceNode && last == "-":
			parent.Content = append(parent.Content, val)
		case op.Op == "replace" && parent.Kind == yamlv3.MappingNode && childIndex(parent, last) >= 0:
			parent.Content[childIndex(parent, last)] = val
		case op.Op == "remove" && parent.Kind == yamlv3.MappingNode && childIndex(parent, last) >= 0:
			i := childIndex(parent, last)
			parent.Content = append(parent.Content[:i-1:i-1], parent.Content[i+1:]...)
		default:
			return nil, false
		}
	}
	return nodeJSON(make([]byte, 0, len(d.JSON)+512), root, 0)
}

// childIndex is the index in n.Content of the value at token t (for a
// mapping, the value after its key), or -1.
func childIndex(n *yamlv3.Node, t string) int {
	switch n.Kind {
	case yamlv3.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == t {
				return i + 1
			}
		}
	case yamlv3.SequenceNode:
		if i, err := strconv.Atoi(t); err == nil && i >= 0 && i < len(n.Content) {
			return i
		}
	}
	return -1
}

// cloneNode copies a node and its list of children (not the children).
func cloneNode(n *yamlv3.Node) *yamlv3.Node {
	c := *n
	c.Content = append([]*yamlv3.Node(nil), n.Content...)
	return &c
}

// valueNode parses an operation's JSON value, once per distinct value.
func (r *Renderer) valueNode(v json.RawMessage) *yamlv3.Node {
	if n, ok := r.values[string(v)]; ok {
		return n
	}
	var doc yamlv3.Node
	if yamlv3.Unmarshal(v, &doc) != nil || len(doc.Content) != 1 {
		return nil
	}
	if r.values == nil {
		r.values = map[string]*yamlv3.Node{}
	}
	r.values[string(v)] = doc.Content[0]
	return doc.Content[0]
}

// readsAs: YAML y, read as kubectl reads it, is the JSON document want.
// Every spliced document is checked so: a misplaced insertion can make
// valid YAML that reads otherwise (hardening inside a string), which must
// never be written as hardened. It costs a second parse of the document.
func readsAs(y, want []byte) bool {
	var n yamlv3.Node
	if yamlv3.Unmarshal(y, &n) != nil {
		return false
	}
	got, ok := docJSON(y, &n)
	if !ok {
		return false
	}
	return bytes.Equal(got, want) || sameJSON(got, want)
}

// sameJSON: two JSON documents hold the same value (numbers compared as
// written).
func sameJSON(a, b []byte) bool {
	var x, y any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&x) != nil || db.Decode(&y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// endsInOpenBlockScalar: the source lacks its final newline and its last
// node is a block scalar that keeps a final newline (| or >, not |-):
// writing it back with the newline the stream needs would change that
// value, so it is rendered from JSON instead.
func (d *Document) endsInOpenBlockScalar() bool {
	if len(d.Source) == 0 || d.Source[len(d.Source)-1] == '\n' || d.node == nil {
		return false
	}
	last := d.node
	for len(last.Content) > 0 {
		last = last.Content[len(last.Content)-1]
	}
	return last.Style&(yamlv3.LiteralStyle|yamlv3.FoldedStyle) != 0
}

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

// ToYAML renders JSON as block YAML. Documents are read the way kubectl
// reads them (sigs.k8s.io/yaml), which sorts keys; source, when given, is
// the document as the user wrote it, and every mapping is put back in the
// user's key order, with keys the user did not write after them.
func ToYAML(j, source []byte) ([]byte, error) {
	var n yamlv3.Node
	if err := yamlv3.Unmarshal(j, &n); err != nil {
		return nil, fmt.Errorf("rendering YAML: %w", err)
	}
	blockStyle(&n)
	if len(source) > 0 {
		var orig yamlv3.Node
		if err := yamlv3.Unmarshal(source, &orig); err == nil {
			reorder(&n, &orig, 0)
		}
	}
	var b bytes.Buffer
	enc := yamlv3.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("rendering YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("rendering YAML: %w", err)
	}
	return b.Bytes(), nil
}

// blockStyle drops JSON's flow and quoting styles. The encoder still
// quotes a string YAML 1.2 would read as another type ("true", "8080"),
// but not one only YAML 1.1 would ("yes", "Y", "0777"): kubectl reads
// YAML 1.1, so those strings, keys included, keep their quotes.
func blockStyle(n *yamlv3.Node) {
	n.Style = 0
	if n.Kind == yamlv3.ScalarNode && n.Tag == "!!str" && yaml11Special(n.Value) {
		n.Style = yamlv3.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// reorder sorts out's mapping keys into orig's order. depth bounds the
// walk on pathological (alias-heavy) input.
func reorder(out, orig *yamlv3.Node, depth int) {
	for orig.Kind == yamlv3.AliasNode && orig.Alias != nil {
		orig = orig.Alias
	}
	if depth > 200 || out.Kind != orig.Kind {
		return
	}
	switch out.Kind {
	case yamlv3.DocumentNode, yamlv3.SequenceNode:
		for i := 0; i < len(out.Content) && i < len(orig.Content); i++ {
			reorder(out.Content[i], orig.Content[i], depth+1)
		}
	case yamlv3.MappingNode:
		pos := map[string]int{}
		vals := map[string]*yamlv3.Node{}
		for i := 0; i+1 < len(orig.Content); i += 2 {
			pos[orig.Content[i].Value] = i
			vals[orig.Content[i].Value] = orig.Content[i+1]
		}
		type pair struct{ k, v *yamlv3.Node }
		pairs := make([]pair, 0, len(out.Content)/2)
		for i := 0; i+1 < len(out.Content); i += 2 {
			pairs = append(pairs, pair{out.Content[i], out.Content[i+1]})
		}
		sort.SliceStable(pairs, func(a, b int) bool {
			pa, oka := pos[pairs[a].k.Value]
			pb, okb := pos[pairs[b].k.Value]
			switch {
			case oka && okb:
				return pa < pb
			default:
				return oka && !okb
			}
		})
		out.Content = out.Content[:0]
		for _, p := range pairs {
			out.Content = append(out.Content, p.k, p.v)
			if o, ok := vals[p.k.Value]; ok {
				reorder(p.v, o, depth+1)
			}
		}
	}
}
