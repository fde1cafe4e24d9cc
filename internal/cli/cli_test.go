package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/pod-hardener/pod-hardener/internal/manifest"
)

var update = flag.Bool("update", os.Getenv("UPDATE_GOLDEN") != "", "rewrite golden files")

// runCLI runs the real command tree in process.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := New(strings.NewReader(stdin), &out, &errb)
	root.SetArgs(args)
	err := root.Execute()
	if err != nil {
		errb.WriteString("error: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), ExitCode(err)
}

// TestGolden hardens examples/ and testdata/golden/*.in.* and compares the
// YAML and the warnings with golden files (go test -update to rewrite).
func TestGolden(t *testing.T) {
	ins, _ := filepath.Glob("../../examples/*.yaml")
	more, _ := filepath.Glob("testdata/golden/*.in.*")
	ins = append(ins, more...)
	if len(ins) < 7 {
		t.Fatalf("only %d golden inputs", len(ins))
	}
	for _, in := range ins {
		base := strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
		base = strings.TrimSuffix(base, ".in")
		t.Run(base, func(t *testing.T) {
			args := []string{"harden", "-f", in, "--config", "../../config.yaml"}
			if strings.HasPrefix(base, "enforce") {
				args = append(args, "--profile", "data-team")
			}
			out, errs, code := runCLI(t, "", args...)
			got := out + "# stderr (exit " + itoa(code) + "):\n" + errs
			path := filepath.Join("testdata", "golden", base+".out.yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (go test -update to accept):\n%s", path, manifest.Diff("want", "got", string(want), got))
			}
			// The hardened output hardens to itself.
			again, _, _ := runCLI(t, out, "harden", "-f", "-", "--config", "../../config.yaml")
			if again != out && !strings.HasPrefix(base, "enforce") {
				t.Errorf("second pass changed the output:\n%s", manifest.Diff("first", "second", out, again))
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestHardenPatchAppliesToInput(t *testing.T) {
	src, err := os.ReadFile("../../examples/02-deployment-writable-paths.yaml")
	if err != nil {
		t.Fatal(err)
	}
	patchOut, _, code := runCLI(t, string(src), "harden", "-f", "-", "-o", "patch")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	yamlOut, _, _ := runCLI(t, string(src), "harden", "-f", "-")
	body := patchOut[strings.Index(patchOut, "\n")+1:]
	p, err := jsonpatch.DecodePatch([]byte(body))
	if err != nil {
		t.Fatalf("patch output is not a JSON patch: %v\n%s", err, body)
	}
	docs, _ := manifest.Read(strings.NewReader(string(src)))
	applied, err := p.Apply(docs[0].JSON)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := manifest.Read(strings.NewReader(yamlOut))
	if !jsonpatch.Equal(applied, want[0].JSON) {
		t.Errorf("-o patch applied != -o yaml:\n%s\n%s", applied, want[0].JSON)
	}
}

func TestHardenExitCodes(t *testing.T) {
	priv := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    securityContext: {privileged: true}\n"
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		errs  []string
	}{
		{"ok", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n", nil, 0, nil},
		{"warn keeps privileged", priv, nil, 0, []string{`warning: Pod p: containers[c]: securityContext.privileged=true kept`}},
		{"deny", priv, []string{"--profile", "data-team", "--config", "../../config.yaml"}, 2, []string{"denied: Pod p", "containers[c]", "securityContext.privileged=true", `exempt.pod-hardener.io/c: "privileged"`}},
		{"broken yaml", "kind: Pod\nspec: [\n", nil, 1, []string{"document 1"}},
		{"not a pod object", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: 3\n", nil, 1, []string{"Pod p"}},
		{"pod without spec", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", nil, 1, []string{"no spec"}},
		{"unknown profile flag", "kind: Pod\n", []string{"--profile", "nope"}, 1, []string{`unknown profile "nope"`}},
		{"bad output", "kind: Pod\n", []string{"-o", "json"}, 1, []string{`-o "json"`}},
		{"exemption ignored without allowance", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {pod-hardener.io/exempt: \"true\"}}\nspec: {containers: [{name: c}]}\n", nil, 0, []string{"exemption annotations ignored"}},
		{"exemption honoured with --allow-exemptions", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {pod-hardener.io/exempt: \"true\"}}\nspec: {containers: [{name: c}]}\n", []string{"--allow-exemptions"}, 0, []string{"is exempt"}},
		{"namespace label picks profile", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n", []string{"--namespace-labels", "pod-hardener.io/profile=privileged"}, 0, nil},
		{"report mode noted, manifest still hardened", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n", []string{"--namespace-labels", "pod-hardener.io/mode=report"}, 0,
			[]string{"note: Pod p: mode report (namespace label pod-hardener.io/mode)", "hardened (profile restricted): set readOnlyRootFilesystem=true"}},
		{"report mode still reports a denial", priv, []string{"--profile", "data-team", "--config", "../../config.yaml", "--namespace-labels", "pod-hardener.io/mode=report"}, 2, []string{"note: Pod p: mode report", "denied: Pod p"}},
		{"placeholder port still hardens", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, ports: [{containerPort: PORT}]}]}\n", nil, 0, []string{"hardened (profile restricted)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"harden", "-f", "-"}, tc.args...)
			_, errs, code := runCLI(t, tc.stdin, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errs)
			}
			for _, w := range tc.errs {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
		})
	}
}

func TestCheckAndProfiles(t *testing.T) {
	out, errs, code := runCLI(t, "", "check", "-f", "../../examples/01-plain-pod.yaml")
	if code != 0 || !strings.Contains(out, "Pod apps/web") || !strings.Contains(strings.Join(strings.Fields(out), " "), "Pod apps/web restricted baseline restricted") {
		t.Errorf("check: exit %d\n%s%s", code, out, errs)
	}
	out, _, _ = runCLI(t, "", "check", "-f", "../../examples/03-privileged-daemonset.yaml")
	if !strings.Contains(strings.Join(strings.Fields(out), " "), "restricted privileged privileged") || !strings.Contains(out, "host namespaces") {
		t.Errorf("check privileged:\n%s", out)
	}
	out, _, code = runCLI(t, "", "profiles", "--config", "../../config.yaml")
	if code != 0 || !strings.Contains(out, "data-team") || !strings.Contains(out, "restricted") {
		t.Errorf("profiles: exit %d\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("profiles:\n- name: a\n  extends: strictt\n"), 0o600)
	_, errs, code = runCLI(t, "", "profiles", "--config", bad)
	if code != 1 || !strings.Contains(errs, `profiles[0].extends: Invalid value: "strictt": unknown profile`) {
		t.Errorf("bad config: exit %d\n%s", code, errs)
	}
}
