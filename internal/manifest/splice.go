package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"unicode/utf8"

	yamlv3 "go.yaml.in/yaml/v3"
)

// Splicing writes a hardened document as the user wrote it, with only the
// engine's changes in it: new keys and list items are inserted as text at
// the end of their block, replaced scalars are replaced in place, and
// everything else (comments, quoting, key order, blank lines) stays byte
// for byte. It costs a fraction of re-rendering the document, and keeps
// the comments rendering drops. What it cannot place safely (flow style,
// a key set to null, a multi-line scalar) makes it decline, and the
// document is then rendered from the patched JSON.

// errDecline: the patch cannot be spliced; render the document instead.
var errDecline = errors.New("cannot splice")

// Op is one operation of an RFC 6902 patch, its value as JSON.
type Op struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// textEdit replaces src[from:to] with text.
type textEdit struct {
	from, to int
	text     string
	// At one offset, insertions into deeper blocks go first (a container's
	// new key before its pod spec's), then in op order.
	indent, seq int
}

// splicer edits one document's source.
type splicer struct {
	src   []byte
	root  *yamlv3.Node // the document's top node
	lines []int        // start offset of each line
	edits []textEdit
	cache map[string]string
	// filled: empty flow collections ({} or []) being replaced, and the
	// index of their edit, which later additions extend.
	filled map[*yamlv3.Node]int
}

// splice applies an RFC 6902 patch, as the engine writes it, to the YAML
// source of a document parsed into doc.
func splice(src []byte, doc *yamlv3.Node, ops []Op, cache map[string]string) ([]byte, error) {
	if doc == nil || doc.Kind != yamlv3.DocumentNode || len(doc.Content) != 1 {
		return nil, errDecline
	}
	s := &splicer{src: src, root: doc.Content[0], cache: cache}
	s.lines = append(s.lines, 0)
	for i, c := range src {
		if c == '\n' && i+1 < len(src) {
			s.lines = append(s.lines, i+1)
		}
	}
	for i, op := range ops {
		if err := s.apply(i, op); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(s.edits, func(i, j int) bool {
		a, b := s.edits[i], s.edits[j]
		if a.from != b.from {
			return a.from < b.from
		}
		if a.indent != b.indent {
			return a.indent > b.indent
		}
		return a.seq < b.seq
	})
	var out bytes.Buffer
	out.Grow(len(src) + 256*len(s.edits))
	pos := 0
	for _, e := range s.edits {
		if e.from < pos {
			return nil, errDecline // overlapping edits
		}
		out.Write(src[pos:e.from])
		out.WriteString(e.text)
		pos = e.to
	}
	out.Write(src[pos:])
	if out.Len() > 0 && out.Bytes()[out.Len()-1] != '\n' {
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

func (s *splicer) apply(seq int, op Op) error {
	tokens, err := pointerTokens(op.Path)
	if err != nil || len(tokens) == 0 {
		return errDecline
	}
	parent, ok := s.lookup(tokens[:len(tokens)-1])
	if !ok {
		return errDecline
	}
	last := tokens[len(tokens)-1]
	switch op.Op {
	case "add":
		switch parent.Kind {
		case yamlv3.MappingNode:
			if _, v := mapGet(parent, last); v != nil {
				return errDecline // set over an explicit null
			}
			return s.insertKey(seq, parent, last, op.Value)
		case yamlv3.SequenceNode:
			if last != "-" {
				return errDecline
			}
			return s.appendItem(seq, parent, op.Value)
		}
	case "replace":
		if parent.Kind != yamlv3.MappingNode {
			return errDecline
		}
		_, v := mapGet(parent, last)
		if v == nil {
			return errDecline
		}
		return s.replaceScalar(seq, v, op.Value)
	case "remove":
		if parent.Kind != yamlv3.MappingNode {
			return errDecline
		}
		return s.removeKey(seq, parent, last)
	}
	return errDecline
}

// pointerTokens splits a JSON pointer (RFC 6901).
func pointerTokens(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, errDecline
	}
	parts := strings.Split(p[1:], "/")
	for i, t := range parts {
		if strings.Contains(t, "~") {
			parts[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(t)
		}
	}
	return parts, nil
}

func (s *splicer) lookup(tokens []string) (*yamlv3.Node, bool) {
	n := s.root
	for _, t := range tokens {
		if n.Style&yamlv3.FlowStyle != 0 {
			return nil, false // inside a flow collection: no block text goes there
		}
		i := childIndex(n, t)
		if i < 0 {
			return nil, false
		}
		n = n.Content[i]
	}
	return n, true
}

func mapGet(m *yamlv3.Node, key string) (k, v *yamlv3.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// offset is the byte offset of a node's line and column (columns count
// characters).
func (s *splicer) offset(line, col int) (int, bool) {
	if line < 1 || line > len(s.lines) {
		return 0, false
	}
	off := s.lines[line-1]
	for c := 1; c < col; c++ {
		if off >= len(s.src) || s.src[off] == '\n' {
			return 0, false
		}
		_, w := utf8.DecodeRune(s.src[off:])
		off += w
	}
	return off, true
}

// lineInfo: leading spaces, and whether the line is blank or a comment.
func (s *splicer) lineInfo(i int) (indent int, empty bool) {
	end := len(s.src)
	if i+1 < len(s.lines) {
		end = s.lines[i+1]
	}
	l := s.src[s.lines[i]:end]
	for indent < len(l) && l[indent] == ' ' {
		indent++
	}
	rest := bytes.TrimRight(l[indent:], " \t\r\n")
	return indent, len(rest) == 0 || rest[0] == '#'
}

// blockEnd is the offset just after the last line of the block starting
// at 1-based line `line` whose lines are indented at least `min` spaces,
// or, when items is set, start a sequence item ("-") at indent min-1...
// blank and comment lines after it are left to what follows.
func (s *splicer) blockEnd(line, min int, dashIndent int) int {
	last := line - 1
	for i := line; i < len(s.lines); i++ {
		indent, empty := s.lineInfo(i)
		if empty {
			continue
		}
		if s.isDocMarker(i) {
			break
		}
		if indent >= min || dashIndent >= 0 && indent == dashIndent && s.src[s.lines[i]+indent] == '-' {
			last = i
			continue
		}
		break
	}
	if last+1 < len(s.lines) {
		return s.lines[last+1]
	}
	return len(s.src)
}

// blockScalarEnd is the offset after the last content line of a block
// scalar (| or >) whose content indentation is detected from its first
// non-blank line. Every line indented that far is content, even one that
// reads as a comment. Keep chomping (|+), where trailing blank lines are
// content too, and explicit indentation indicators are declined.
func (s *splicer) blockScalarEnd(n *yamlv3.Node) (int, bool) {
	start, ok := s.offset(n.Line, n.Column)
	if !ok {
		return 0, false
	}
	header := s.src[start:]
	if i := bytes.IndexByte(header, '\n'); i >= 0 {
		header = header[:i]
	}
	if h := bytes.TrimSpace(bytes.SplitN(header, []byte("#"), 2)[0]); bytes.ContainsAny(h, "+123456789") {
		return 0, false
	}
	content, last := -1, n.Line-1
	for i := n.Line; i < len(s.lines); i++ {
		indent, _ := s.lineInfo(i)
		rest := s.src[s.lines[i]+indent:]
		if j := bytes.IndexByte(rest, '\n'); j >= 0 {
			rest = rest[:j]
		}
		if len(bytes.Trim(rest, " \r")) == 0 {
			continue // blank: content or not, it decides nothing (a tab is content)
		}
		if content < 0 {
			content = indent
		}
		if indent < content || s.isDocMarker(i) {
			break
		}
		last = i
	}
	if content < 0 {
		return 0, false // an empty block scalar
	}
	return s.lineStartAfter(last + 1), true
}

// nodeLine is where a node starts and the rest of its line from there.
func (s *splicer) nodeLine(n *yamlv3.Node) (start int, line []byte, ok bool) {
	start, ok = s.offset(n.Line, n.Column)
	if !ok {
		return 0, nil, false
	}
	line = s.src[start:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	return start, line, true
}

// lineStartAfter is the offset of the line after 1-based line `line`.
func (s *splicer) lineStartAfter(line int) int {
	if line < len(s.lines) {
		return s.lines[line]
	}
	return len(s.src)
}

func (s *splicer) isDocMarker(i int) bool {
	l := s.src[s.lines[i]:]
	return bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("..."))
}

// insertAt inserts lines at a line-start offset (the end of the source
// may lack its newline).
func (s *splicer) insertAt(seq, at, indent int, text string) {
	if at == len(s.src) && at > 0 && s.src[at-1] != '\n' {
		text = "\n" + text
	}
	s.edits = append(s.edits, textEdit{from: at, to: at, text: text, indent: indent, seq: seq})
}

func (s *splicer) insertKey(seq int, m *yamlv3.Node, key string, v json.RawMessage) error {
	if m.Style&yamlv3.FlowStyle != 0 {
		if len(m.Content) == 0 {
			return s.replaceEmptyFlow(seq, m, "{}", func(indent int) (string, error) { return s.renderKV(key, v, indent) })
		}
		return errDecline
	}
	if len(m.Content) == 0 {
		return errDecline
	}
	indent := m.Column - 1
	text, err := s.renderKV(key, v, indent)
	if err != nil {
		return err
	}
	at := s.blockEnd(m.Line, indent, -1)
	if !s.endsCleanly(m, at) {
		return errDecline
	}
	s.insertAt(seq, at, indent, text)
	return nil
}

// endsCleanly: the block's last node in document order is a one-line
// scalar (or an empty flow collection, or a one-line flow collection)
// on the line just before at. A block scalar, a quoted or plain scalar
// running over several lines, or a flow collection closing on a later
// line may hold lines that read as comments or sit at any indentation, so
// the end found by indentation cannot be trusted: decline.
func (s *splicer) endsCleanly(n *yamlv3.Node, at int) bool {
	last, flowLine := n, 0
	for len(last.Content) > 0 {
		if last.Style&yamlv3.FlowStyle != 0 && flowLine == 0 {
			flowLine = last.Line
		}
		last = last.Content[len(last.Content)-1]
	}
	if last.Kind == yamlv3.AliasNode {
		return false
	}
	if last.Style&(yamlv3.LiteralStyle|yamlv3.FoldedStyle) != 0 {
		end, ok := s.blockScalarEnd(last)
		return ok && end == at
	}
	if flowLine != 0 && flowLine != last.Line {
		return false
	}
	// The node must end on its own line, and that line must be the last
	// line of the block.
	start, line, ok := s.nodeLine(last)
	if !ok {
		return false
	}
	switch {
	case last.Style&yamlv3.DoubleQuotedStyle != 0:
		if quotedEnd(line, '"') < 0 {
			return false
		}
	case last.Style&yamlv3.SingleQuotedStyle != 0:
		if quotedEnd(line, '\'') < 0 {
			return false
		}
	case last.Kind == yamlv3.ScalarNode && last.Value != "":
		if !bytes.HasPrefix(line, []byte(last.Value)) {
			return false // a plain scalar folded from several lines
		}
	}
	next := start + len(line) + 1
	if next > len(s.src) {
		next = len(s.src)
	}
	return next == at
}

func (s *splicer) appendItem(seq int, l *yamlv3.Node, v json.RawMessage) error {
	if l.Style&yamlv3.FlowStyle != 0 {
		if len(l.Content) == 0 {
			return s.replaceEmptyFlow(seq, l, "[]", func(indent int) (string, error) { return s.renderItem(v, indent) })
		}
		return errDecline
	}
	if len(l.Content) == 0 {
		return errDecline
	}
	dash := l.Column - 1
	text, err := s.renderItem(v, dash)
	if err != nil {
		return err
	}
	at := s.blockEnd(l.Line, dash+1, dash)
	if !s.endsCleanly(l, at) {
		return errDecline
	}
	s.insertAt(seq, at, dash+1, text)
	return nil
}

// replaceEmptyFlow turns "key: {}" or "key: []" into a block holding the
// new content, indented under the key.
func (s *splicer) replaceEmptyFlow(seq int, n *yamlv3.Node, lit string, render func(indent int) (string, error)) error {
	from, ok := s.offset(n.Line, n.Column)
	if !ok || !bytes.HasPrefix(s.src[from:], []byte(lit)) {
		return errDecline
	}
	end := from + len(lit)
	// The key's column: past the indentation and any "- " of a list item.
	line := s.src[s.lines[n.Line-1]:]
	keyIndent := 0
	for keyIndent < len(line) && (line[keyIndent] == ' ' || line[keyIndent] == '-' && keyIndent+1 < len(line) && line[keyIndent+1] == ' ') {
		keyIndent++
	}
	// The rest of the line after {} may only be a comment.
	rest := s.src[from+len(lit):]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i]
	}
	if r := bytes.TrimSpace(rest); len(r) > 0 && r[0] != '#' {
		return errDecline
	}
	text, err := render(keyIndent + 2)
	if err != nil {
		return err
	}
	text = "\n" + strings.TrimSuffix(text, "\n")
	// "key: {}" becomes "key:" and the block, without a trailing space.
	for from > s.lines[n.Line-1] && s.src[from-1] == ' ' {
		from--
	}
	if i, ok := s.filled[n]; ok {
		s.edits[i].text += text
		return nil
	}
	if s.filled == nil {
		s.filled = map[*yamlv3.Node]int{}
	}
	s.filled[n] = len(s.edits)
	s.edits = append(s.edits, textEdit{from: from, to: end, text: text, seq: seq})
	return nil
}

func (s *splicer) replaceScalar(seq int, n *yamlv3.Node, v json.RawMessage) error {
	if n.Kind != yamlv3.ScalarNode || n.Style&(yamlv3.LiteralStyle|yamlv3.FoldedStyle|yamlv3.TaggedStyle) != 0 {
		return errDecline
	}
	from, line, ok := s.nodeLine(n)
	if !ok {
		return errDecline
	}
	var span int
	switch {
	case n.Style&yamlv3.DoubleQuotedStyle != 0:
		span = quotedEnd(line, '"')
	case n.Style&yamlv3.SingleQuotedStyle != 0:
		span = quotedEnd(line, '\'')
	default:
		span = len(line)
		if i := bytes.Index(line, []byte(" #")); i >= 0 {
			span = i
		}
		span = len(bytes.TrimRight(line[:span], " \t\r"))
		if string(line[:span]) != n.Value {
			return errDecline // a multi-line plain scalar
		}
	}
	if span <= 0 {
		return errDecline
	}
	text, err := s.renderScalar(v)
	if err != nil {
		return err
	}
	s.edits = append(s.edits, textEdit{from: from, to: from + span, text: text, seq: seq})
	return nil
}

// quotedEnd is the length of a quoted scalar that starts and ends on this
// line, or -1.
func quotedEnd(line []byte, q byte) int {
	for i := 1; i < len(line); i++ {
		switch {
		case q == '"' && line[i] == '\\':
			i++
		case line[i] == q:
			if q == '\'' && i+1 < len(line) && line[i+1] == '\'' {
				i++
				continue
			}
			return i + 1
		}
	}
	return -1
}

// removeKey deletes a "key: scalar" line of a block mapping with other
// keys left in it.
func (s *splicer) removeKey(seq int, m *yamlv3.Node, key string) error {
	k, v := mapGet(m, key)
	if k == nil || m.Style&yamlv3.FlowStyle != 0 || len(m.Content) < 4 || v.Kind != yamlv3.ScalarNode ||
		v.Line != k.Line || v.Style&(yamlv3.LiteralStyle|yamlv3.FoldedStyle) != 0 || k == m.Content[0] {
		return errDecline
	}
	indent, _ := s.lineInfo(k.Line - 1)
	if indent != k.Column-1 || !s.endsCleanly(v, s.lineStartAfter(v.Line)) {
		return errDecline
	}
	from := s.lines[k.Line-1]
	to := len(s.src)
	if k.Line < len(s.lines) {
		to = s.lines[k.Line]
	}
	// The next line must start a new key (not continue the value).
	if k.Line < len(s.lines) {
		if ni, empty := s.lineInfo(k.Line); !empty && ni > indent {
			return errDecline
		}
	}
	s.edits = append(s.edits, textEdit{from: from, to: to, seq: seq})
	return nil
}

// Rendering: values are rendered by go-yaml v3 (so quoting is always
// right) once per distinct value and cached: most containers get the same
// securityContext.

func (s *splicer) renderKV(key string, v json.RawMessage, indent int) (string, error) {
	body, err := s.render("k", key, v)
	if err != nil {
		return "", err
	}
	return indentLines(body, indent), nil
}

func (s *splicer) renderItem(v json.RawMessage, indent int) (string, error) {
	body, err := s.render("i", "", v)
	if err != nil {
		return "", err
	}
	return indentLines(body, indent), nil
}

func (s *splicer) renderScalar(v json.RawMessage) (string, error) {
	body, err := s.render("s", "", v)
	if err != nil {
		return "", err
	}
	body = strings.TrimSuffix(body, "\n")
	if strings.Contains(body, "\n") {
		return "", errDecline
	}
	return body, nil
}

func (s *splicer) render(kind, key string, v json.RawMessage) (string, error) {
	ck := kind + "\x00" + key + "\x00" + string(v)
	if r, ok := s.cache[ck]; ok {
		return r, nil
	}
	var val yamlv3.Node
	if err := yamlv3.Unmarshal(v, &val); err != nil || len(val.Content) != 1 {
		return "", errDecline
	}
	blockStyle(&val)
	n := val.Content[0]
	switch kind {
	case "k":
		n = &yamlv3.Node{Kind: yamlv3.MappingNode, Content: []*yamlv3.Node{{Kind: yamlv3.ScalarNode, Value: key}, n}}
	case "i":
		n = &yamlv3.Node{Kind: yamlv3.SequenceNode, Content: []*yamlv3.Node{n}}
	}
	var b bytes.Buffer
	enc := yamlv3.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return "", errDecline
	}
	if err := enc.Close(); err != nil {
		return "", errDecline
	}
	r := b.String()
	s.cache[ck] = r
	return r, nil
}

// indentLines prefixes every non-empty line.
func indentLines(s string, n int) string {
	if n == 0 {
		return s
	}
	pad := strings.Repeat(" ", n)
	var b strings.Builder
	b.Grow(len(s) + n*strings.Count(s, "\n"))
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" && l != "\n" {
			b.WriteString(pad)
		}
		b.WriteString(l)
	}
	return b.String()
}
