package cli

import (
	"strings"
	"testing"
)

// `harden -o diff` ends every document's diff with a newline, whatever the
// source's last line, so what the terminal prints next starts on its own
// line.
func TestHardenDiffEndsWithNewline(t *testing.T) {
	pod := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: x"
	for name, in := range map[string]string{
		"no final newline":           pod,
		"final newline":              pod + "\n",
		"two documents":              pod + "\n---\n" + pod,
		"block scalar at the end":    pod + "\n    args:\n    - |-\n      a\n      b",
		"JSON without final newline": `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"x"}]}}`,
		"comment trailer":            pod + "\n# end",
	} {
		out, _, code := runCLI(t, in, "harden", "-f", "-", "-o", "diff")
		if code != 0 || !strings.Contains(out, "+++ ") {
			t.Errorf("%s: exit %d, no diff:\n%s", name, code, out)
			continue
		}
		if !strings.HasSuffix(out, "\n") {
			t.Errorf("%s: diff does not end with a newline: %q", name, out[max(0, len(out)-40):])
		}
	}
}
