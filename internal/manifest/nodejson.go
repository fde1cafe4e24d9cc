package manifest

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"

	"github.com/pod-hardener/pod-hardener/internal/jsonenc"
)

// maxDepth bounds recursion on hostile input; deeper documents take the
// slow path, whose parser has its own limits.
const maxDepth = 1000

// docJSON is nodeJSON for a whole document and its source. A "!" anywhere
// declines it: v3 forgets a bare non-specific tag ("a: !" is null to it and
// an empty string to v2), and tags are rare enough in manifests that
// reading them the slow way costs nothing worth saving.
func docJSON(src []byte, doc *yamlv3.Node) ([]byte, bool) {
	if bytes.IndexByte(src, '!') >= 0 {
		return nil, false
	}
	return nodeJSON(make([]byte, 0, len(src)), doc, 0)
}

// nodeJSON converts a parsed document to JSON without parsing it a second
// time. kubectl reads YAML with sigs.k8s.io/yaml (YAML 1.1 rules, through
// go-yaml v2), and this parser is go-yaml v3 (YAML 1.2 rules): so nodeJSON
// only takes what both read the same way (strings, plain decimal integers,
// true/false, null, mappings with distinct string keys, sequences) and
// reports false for anything else (aliases, merge keys, tags, floats,
// yes/no/on/off, octal or hexadecimal numbers, timestamps), which is then
// read by sigs.k8s.io/yaml. The fuzz test holds it to that.
func nodeJSON(b []byte, n *yamlv3.Node, depth int) ([]byte, bool) {
	if depth > maxDepth || n.Style&yamlv3.TaggedStyle != 0 || n.Anchor != "" {
		// Explicit tags resolve differently in v2 and v3; anchors are
		// nearly always there for an alias, which is declined anyway.
		return nil, false
	}
	switch n.Kind {
	case yamlv3.DocumentNode:
		if len(n.Content) != 1 {
			return nil, false
		}
		return nodeJSON(b, n.Content[0], depth+1)
	case yamlv3.MappingNode:
		if n.Tag != "!!map" {
			return nil, false
		}
		b = append(b, '{')
		// Duplicate keys (v2 and v3 differ on them) are declined: a linear
		// check for the usual few keys, a set beyond, so a mapping with
		// many keys is not quadratic.
		var seen map[string]struct{}
		if len(n.Content) > 32 {
			seen = make(map[string]struct{}, len(n.Content)/2)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yamlv3.ScalarNode || k.Tag != "!!str" || k.Style == 0 && yaml11Special(k.Value) {
				return nil, false
			}
			if seen != nil {
				if _, dup := seen[k.Value]; dup {
					return nil, false
				}
				seen[k.Value] = struct{}{}
			} else {
				for j := 0; j < i; j += 2 {
					if n.Content[j].Value == k.Value {
						return nil, false
					}
				}
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, k.Value)
			b = append(b, ':')
			var ok bool
			if b, ok = nodeJSON(b, n.Content[i+1], depth+1); !ok {
				return nil, false
			}
		}
		return append(b, '}'), true
	case yamlv3.SequenceNode:
		if n.Tag != "!!seq" {
			return nil, false
		}
		b = append(b, '[')
		for i, c := range n.Content {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = nodeJSON(b, c, depth+1); !ok {
				return nil, false
			}
		}
		return append(b, ']'), true
	case yamlv3.ScalarNode:
		switch n.Tag {
		case "!!str":
			if n.Style == 0 && yaml11Special(n.Value) {
				return nil, false
			}
			return jsonenc.AppendString(b, n.Value), true
		case "!!int":
			if !plainDecimal(n.Value) {
				return nil, false
			}
			return append(b, n.Value...), true
		case "!!bool":
			switch n.Value {
			case "true", "True", "TRUE":
				return append(b, "true"...), true
			case "false", "False", "FALSE":
				return append(b, "false"...), true
			}
			return nil, false
		case "!!null":
			return append(b, "null"...), true
		}
	}
	return nil, false
}

// plainDecimal: -?(0|[1-9][0-9]*), short enough for an int64.
func plainDecimal(s string) bool {
	d := s
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 18 || len(d) > 1 && d[0] == '0' || s == "-0" {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

// yaml11Special reports plain scalars that go-yaml v2, and so kubectl,
// reads as something other than a string: its boolean, null, infinity and
// merge words, and what starts like a number and parses as one, or as a
// timestamp (its resolve function, mirrored). The slow path then reads
// them exactly as kubectl does.
func yaml11Special(s string) bool {
	if s == "" {
		return false // an empty plain scalar is null to both, tagged so
	}
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
		"on", "On", "ON", "off", "Off", "OFF", "true", "True", "TRUE", "false", "False", "FALSE",
		"~", "null", "Null", "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF",
		"+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", "<<":
		return true
	}
	switch c := s[0]; {
	case c == '.':
		_, err := strconv.ParseFloat(s, 64)
		return err == nil
	case c == '+' || c == '-' || c >= '0' && c <= '9':
		if isTimestamp(s) {
			return true
		}
		plain := strings.ReplaceAll(s, "_", "")
		if _, err := strconv.ParseInt(plain, 0, 64); err == nil {
			return true
		}
		if _, err := strconv.ParseUint(plain, 0, 64); err == nil {
			return true
		}
		if yamlStyleFloat.MatchString(plain) {
			return true
		}
		if b, ok := strings.CutPrefix(plain, "0b"); ok {
			_, err := strconv.ParseUint(b, 2, 64)
			return err == nil
		}
		if b, ok := strings.CutPrefix(plain, "-0b"); ok {
			_, err := strconv.ParseInt("-"+b, 2, 64)
			return err == nil
		}
	}
	return false
}

var yamlStyleFloat = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

// isTimestamp is go-yaml v2's parseTimestamp.
func isTimestamp(s string) bool {
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
	}
	if i != 4 || i == len(s) || s[i] != '-' {
		return false
	}
	for _, f := range []string{"2006-1-2T15:4:5.999999999Z07:00", "2006-1-2t15:4:5.999999999Z07:00", "2006-1-2 15:4:5.999999999", "2006-1-2"} {
		if _, err := time.Parse(f, s); err == nil {
			return true
		}
	}
	return false
}
