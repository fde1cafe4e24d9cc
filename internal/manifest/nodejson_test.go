package manifest

import (
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// fastJSON is nodeJSON on a parsed document, ok false when it declines.
func fastJSON(src []byte) ([]byte, bool) {
	var n yamlv3.Node
	if yamlv3.Unmarshal(src, &n) != nil {
		return nil, false
	}
	return docJSON(src, &n)
}

// checkNodeJSON: whatever nodeJSON takes, it reads as kubectl
// (sigs.k8s.io/yaml) does.
func checkNodeJSON(t *testing.T, src []byte) (taken bool) {
	t.Helper()
	got, ok := fastJSON(src)
	if !ok {
		return false
	}
	want, err := yaml.YAMLToJSON(src)
	if err != nil {
		t.Fatalf("nodeJSON read what sigs.k8s.io/yaml refuses (%v):\n%s\n-> %s", err, src, got)
	}
	if !sameJSON(got, want) {
		t.Fatalf("nodeJSON differs from sigs.k8s.io/yaml:\n%s\nnodeJSON: %s\nkubectl:  %s", src, got, want)
	}
	return true
}

func TestNodeJSONAgreesWithKubectl(t *testing.T) {
	taken := []string{
		"a: b\nc: [1, -2, 0]\nd: {e: true, f: false, g: null, h: ~, i: }\n",
		"s: '01'\nq: \"yes\"\nlit: |\n  x\n  y\nfold: >\n  a\n  b\n",
		"image: nginx:1.25\nmemory: 128Mi\ncpu: 100m\nport: http\nv: v1.2.3\ncmd: [sh, -c, 'echo hi']\n",
		"u: \"\\u00e9\\t<&>\"\nkey with spaces: 1\n\"quoted key\": x\n",
		"True: 1\n", // bool key: v3 tags it !!bool, declined below
	}
	for _, s := range taken[:4] {
		if !checkNodeJSON(t, []byte(s)) {
			t.Errorf("declined:\n%s", s)
		}
	}
	declined := []string{
		"a: yes\n", "a: on\n", "a: Off\n", "a: y\n", "yes: 1\n", "a: 0777\n", "a: 0x1F\n", "a: 1_000\n", "a: 1.5\n", "a: 1e3\n",
		"a: .inf\n", "a: 2001-12-14\n", "a: &x 1\nb: *x\n", "a: {<<: {b: 1}}\n", "a: 1\na: 2\n", "1: a\n",
		"a: 0b101\n", "a: +1\n", "a: 123456789012345678901\n", "a: 1:20\n" /* string in both, but it starts with a digit: fine either way */, taken[4],
	}
	for _, s := range declined {
		if checkNodeJSON(t, []byte(s)) && s != "a: 1:20\n" {
			t.Errorf("taken, should be left to sigs.k8s.io/yaml:\n%s", s)
		}
	}
}

func FuzzNodeJSON(f *testing.F) {
	for _, s := range []string{"a: b\n", "a: [1, yes, '2', 3.0, 0x10, 2001-01-01]\n", "- {a: ~}\n- !!str x\n", "a: &a [1]\nb: *a\n", "a: |\n  x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 4096 {
			return
		}
		checkNodeJSON(t, src)
	})
}
