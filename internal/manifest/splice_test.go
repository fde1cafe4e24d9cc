package manifest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/internal/testcorpus"
	"github.com/pod-hardener/pod-hardener/mutate"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// The splicer on its own, without the check Patched adds after it: on
// every hard layout (internal/cli/testdata/splice), the examples and the
// corpus, a splice either declines or reads as the patched document.
// Patched's check is the backstop, not what makes these right.
func TestSpliceAloneDeclinesOrIsRight(t *testing.T) {
	t.Run("layouts and examples", func(t *testing.T) {
		var files []string
		for _, g := range []string{"../cli/testdata/splice/*.yaml", "../../examples/*.yaml"} {
			m, _ := filepath.Glob(g)
			files = append(files, m...)
		}
		if len(files) < 25 {
			t.Fatalf("only %d files", len(files))
		}
		spliceAlone(t, files)
	})
	t.Run("corpus", func(t *testing.T) {
		spliceAlone(t, testcorpus.Files(t, 100))
	})
}

// spliceAlone hardens every block-style workload in files and splices
// the operations without Patched's check.
func spliceAlone(t *testing.T, files []string) {
	t.Helper()
	cfg := profiles.Default()
	spliced, declined := 0, 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, _ := Read(bytes.NewReader(src))
		for _, d := range docs {
			if d.Err != nil || !d.fast || !d.block() {
				continue
			}
			ws, err := Workloads(d.JSON)
			if err != nil || len(ws) == 0 {
				continue
			}
			var all []mutate.Operation
			for _, w := range ws {
				res, err := mutate.Review(context.Background(), cfg, w.Pod, profiles.Facts{Namespace: "apps", NamespaceKnown: true}, mutate.Options{Prefix: w.Pointer})
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				all = append(all, res.Operations...)
			}
			if len(all) == 0 {
				continue
			}
			ops := make([]Op, len(all))
			for i, o := range all {
				v, _ := o.ValueJSON()
				ops[i] = Op{Op: o.Op, Path: o.Path, Value: v}
			}
			want, err := mutate.Apply(d.JSON, all)
			if err != nil {
				t.Fatal(err)
			}
			out, err := splice(d.Source, d.node, ops, map[string]string{})
			if err != nil {
				declined++
				continue
			}
			spliced++
			if !readsAs(out, want) {
				t.Errorf("%s document %d: the splice reads differently from the patched document:\n%s", filepath.Base(f), d.Index, out)
			}
		}
	}
	t.Logf("%d spliced, %d declined", spliced, declined)
}

// The check after every splice refuses text that does not read as the
// patched document: here the hardening lands inside a string, as the
// first splicer did with a quoted argument running over two lines.
func TestSpliceCheckRefusesMisplacedText(t *testing.T) {
	src := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: a\n    image: x\n    args: [\"--title=Build\n      #42\"]\n"
	docs, err := Read(bytes.NewReader([]byte(src)))
	if err != nil || len(docs) != 1 {
		t.Fatal(err)
	}
	d := &docs[0]
	ops := []Op{{Op: "add", Path: "/spec/containers/0/securityContext", Value: []byte(`{"privileged":false}`)}}
	r := NewRenderer()
	want, ok := r.expected(d, ops)
	if !ok {
		t.Fatal("no expected document")
	}
	misplaced := strings.Replace(src, "      #42", "    securityContext:\n      privileged: false\n      #42", 1)
	right := src + "    securityContext:\n      privileged: false\n"
	if readsAs([]byte(misplaced), want) {
		t.Errorf("accepted text whose hardening is inside a string:\n%s", misplaced)
	}
	if !readsAs([]byte(right), want) {
		t.Errorf("refused the right text:\n%s", right)
	}
	if out, err := r.Patched(d, ops, func() ([]byte, error) { return nil, errors.New("rendered") }); err == nil {
		if !readsAs(out, want) {
			t.Errorf("Patched wrote text that reads otherwise:\n%s", out)
		}
	}
}
