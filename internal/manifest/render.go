package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"

	yamlv3 "go.yaml.in/yaml/v3"
)

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
// text must read as. It is not mutate.Apply, the JSON-patch applier used
// everywhere else: applying with a JSON-patch library and comparing JSON
// in another key order makes offline hardening markedly slower
// (docs/performance.md). The tests hold every spliced document to
// mutate.Apply's result.
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
