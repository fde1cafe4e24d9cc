package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	yamlv3 "go.yaml.in/yaml/v3"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
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
