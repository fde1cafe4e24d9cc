package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"

	"github.com/pod-hardener/pod-hardener/internal/manifest"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// yamlCounts is what hardenYAML compared: documents whose output was
// checked against what they should read as, of them the changed ones, and
// of those the ones spliced into the source.
type yamlCounts struct{ checked, changed, spliced int }

// hardenYAML hardens src with the default config and checks every
// document's YAML output against the patched JSON (checkYAMLOutput). The
// error is harden's own, for input it refuses.
func hardenYAML(t *testing.T, src []byte) (yamlCounts, error) {
	t.Helper()
	var n yamlCounts
	docs, err := (&hardenOptions{file: "-"}).run(profiles.Default(), bytes.NewReader(src))
	if err != nil {
		return n, err
	}
	rd := manifest.NewRenderer()
	for _, h := range docs {
		if h.doc.CommentsOnly {
			continue // the comments after the last document: no document
		}
		if _, err := h.json(); err != nil || hasDuplicateKeys(h.doc.Source) {
			// Duplicate keys (0 and "0"...) make sigs.k8s.io/yaml's own
			// reading random: nothing to compare with.
			continue
		}
		n.checked++
		if len(h.ops) == 0 {
			// Untouched: written as it was, and read as it was.
			y, err := rd.Original(&h.doc)
			if err != nil {
				t.Errorf("%s: %v", h.name(), err)
				continue
			}
			if got, err := yaml.YAMLToJSON(y); err != nil || !jsonEqual(got, h.doc.JSON) {
				t.Errorf("%s: untouched document written so it reads differently (%v):\n%s", h.name(), err, y)
			}
			continue
		}
		n.changed++
		if checkYAMLOutput(t, h.name(), rd, h) {
			n.spliced++
		}
	}
	return n, nil
}

// Layouts a splice must get right: each is hardened, and its YAML output
// must read as the patched document; the ones marked spliced must keep
// the source as written.
func TestSpliceLayouts(t *testing.T) {
	cases := []struct {
		name, src string
		spliced   bool
	}{
		{"comments and quoting kept", `# top comment
apiVersion: v1
kind: Pod
metadata:
  name: "web"   # the name
  namespace: 'apps'
spec:
  # containers below
  containers:
  - name: app
    image: "nginx:1.27"
    args: ["--port", "8080"]   # flow list stays as written
  # trailing comment
`, true},
		{"sequences indented under their key", `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
    - name: a
      image: x
      volumeMounts:
        - name: data
          mountPath: /data
    - name: b
      image: nginx
  volumes:
    - name: data
      emptyDir: {}
`, true},
		{"empty flow objects and lists filled", `apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations: {}
spec:
  securityContext: {}
  volumes: []
  containers:
  - name: a
    image: x
    securityContext: {}  # filled in
    volumeMounts: []
`, true},
		{"no final newline", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: a\n    image: x", true},
		{"CRLF line endings", strings.ReplaceAll("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: a\n    image: x\n", "\n", "\r\n"), true},
		{"block scalars", `apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    note: |
      line one

      line three
spec:
  containers:
  - name: a
    image: x
    command:
    - sh
    - -c
    - |
      echo hi
      exec sleep 1d
`, true},
		{"deployment, template deep inside", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: a
        image: x
        securityContext:
          privileged: false
          capabilities:
            add: ["NET_BIND_SERVICE"]
`, true},
		{"flow-style pod metadata: rendered instead", `apiVersion: v1
kind: Pod
metadata: {name: web, labels: {a: b}}
spec:
  containers: [{name: a, image: x}]
`, false},
		{"null securityContext: rendered instead", `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: a
    image: x
    securityContext:
`, false},
		{"JSON document: rendered as YAML", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"name":"a","image":"x"}]}}`, false},
		{"YAML 1.1 booleans: read as kubectl does, rendered", `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  hostNetwork: no
  containers:
  - name: a
    image: x
    tty: yes
`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := hardenYAML(t, []byte(tc.src))
			if err != nil || n.changed != 1 {
				t.Fatalf("%d documents changed, want 1 (%v)", n.changed, err)
			}
			if (n.spliced == 1) != tc.spliced {
				t.Errorf("spliced %v, want %v", n.spliced == 1, tc.spliced)
			}
		})
	}
}

// FuzzHardenYAML: whatever YAML harden reads, the YAML it writes reads as
// the patched document, whether spliced or rendered.
func FuzzHardenYAML(f *testing.F) {
	ins, _ := filepath.Glob("../../examples/*.yaml")
	hard, _ := filepath.Glob("testdata/splice/*.yaml")
	for _, in := range append(ins, hard...) {
		if b, err := os.ReadFile(in); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: w\nspec:\n  containers:\n  - name: a\n    securityContext: {privileged: true}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 16<<10 {
			return
		}
		if _, err := yaml.YAMLToJSON(src); err != nil {
			return
		}
		_, _ = hardenYAML(t, src) // input harden refuses is not the property here
	})
}

// A file's header comments before its first "---" are written back, and an
// untouched document is written as it is.
func TestHardenKeepsFileHeaderAndUntouchedDocuments(t *testing.T) {
	src := `# Source: https://example.com/app.yaml
# License: Apache-2.0
---
apiVersion: v1
kind: Service
metadata:
  name: web   # the service
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: a
    image: nginx
`
	out, _, code := runCLI(t, src, "harden", "-f", "-")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := "# Source: https://example.com/app.yaml\n# License: Apache-2.0\napiVersion: v1\nkind: Service\nmetadata:\n  name: web   # the service\nspec: {ports: [{port: 80}]}\n---\n"
	if !strings.HasPrefix(out, want) {
		t.Errorf("output does not start with the header and the Service as written:\n%s", out)
	}
	// Comments after the last document are written back too, and are no
	// document of their own to harden, check or diff.
	out, errs, code := runCLI(t, src+"---\n# end of file\n", "harden", "-f", "-")
	if code != 0 || !strings.HasSuffix(out, "---\n# end of file\n") || errs == "" {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
	if diff, _, _ := runCLI(t, "# only a comment\n", "harden", "-f", "-", "-o", "diff"); diff != "" {
		t.Errorf("a comment-only input diffs:\n%s", diff)
	}
	if chk, _, code := runCLI(t, src+"---\n# end\n", "check", "-f", "-"); code != 0 || strings.Count(chk, "\n") != 2 {
		t.Errorf("check: exit %d:\n%s", code, chk)
	}
}

// Layouts where text inserted by indentation alone would land inside a
// multi-line string or flow collection, cut a block scalar, or change a
// document with no final newline (found by review): each file is read
// without error, has at least one document to compare, and each document
// comes out reading as the patched one (spliced or rendered), or as it
// was when untouched.
func TestSpliceHardLayouts(t *testing.T) {
	files, _ := filepath.Glob("testdata/splice/*.yaml")
	if len(files) < 10 {
		t.Fatalf("only %d layout files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			n, err := hardenYAML(t, src)
			if err != nil {
				t.Fatalf("harden refused the layout: %v", err)
			}
			if n.checked == 0 {
				t.Fatal("no document compared: the layout tests nothing")
			}
			t.Logf("%d documents compared, %d changed, %d spliced", n.checked, n.changed, n.spliced)
		})
	}
}

// hasDuplicateKeys: some mapping of the YAML has two keys that read alike
// (go-yaml v2, as kubectl reads them: 0 and 0E09 are both 0).
func hasDuplicateKeys(src []byte) bool {
	var doc yamlv2.MapSlice
	if yamlv2.Unmarshal(src, &doc) != nil {
		return false
	}
	var walk func(v any, depth int) bool
	walk = func(v any, depth int) bool {
		if depth > 200 {
			return false
		}
		switch x := v.(type) {
		case yamlv2.MapSlice:
			seen := map[string]bool{}
			for _, it := range x {
				k := fmt.Sprint(it.Key)
				if seen[k] || walk(it.Value, depth+1) {
					return true
				}
				seen[k] = true
			}
		case []any:
			for _, it := range x {
				if walk(it, depth+1) {
					return true
				}
			}
		}
		return false
	}
	return walk(doc, 0)
}

// A document with comments that has to be rendered says so on stderr.
func TestHardenNotesLostComments(t *testing.T) {
	src := "# keep me\napiVersion: v1\nkind: Pod\nmetadata: {name: w}\nspec:\n  containers: [{name: a, image: x}]\n"
	_, errs, code := runCLI(t, src, "harden", "-f", "-")
	if code != 0 || !strings.Contains(errs, "note: document 1: rewritten from its parsed form") {
		t.Errorf("exit %d, stderr:\n%s", code, errs)
	}
	_, errs, _ = runCLI(t, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: w # kept\nspec:\n  containers:\n  - name: a\n    image: x\n", "harden", "-f", "-")
	if strings.Contains(errs, "note:") {
		t.Errorf("a spliced document got a note:\n%s", errs)
	}
}

// run hardens every document of the input and returns them all (the
// commands stream them with each).
func (o *hardenOptions) run(cfg *profiles.Config, in io.Reader) ([]*hardened, error) {
	var out []*hardened
	err := o.each(cfg, in, func(h *hardened) error {
		out = append(out, h)
		return nil
	})
	return out, err
}
