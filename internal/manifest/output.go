package manifest

import (
	"bytes"
	"fmt"
	"sort"

	yamlv3 "go.yaml.in/yaml/v3"
)

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
