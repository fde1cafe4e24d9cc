package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/internal/manifest"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// noSafeValue are the check families no value can satisfy without changing
// what the pod is (a volume's type, a Windows HostProcess pod): enforce
// names them instead of fixing them. hostNamespaces joins them only on a
// HostProcess pod, which the API server requires to use the host network.
var noSafeValue = map[string]bool{"hostPathVolumes": true, "restrictedVolumes": true, "windowsHostProcess": true}

// TestUpstreamRestrictedFixtures runs the pods k8s.io/pod-security-admission
// ships as its restricted test data through `harden` under an
// onConflict: enforce profile, as a new user would, and judges each with
// the official evaluator: every fail fixture passes after hardening or
// fails only a check with no safe value, named in the warnings; every pass
// fixture stays passing and only gains fields (adds), none lost or replaced.
func TestUpstreamRestrictedFixtures(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/pod-security-admission").Output()
	dir := filepath.Join(strings.TrimSpace(string(out)), "test", "testdata", "restricted", "v1.37")
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Skipf("k8s.io/pod-security-admission is not in the module cache (go list: %v)", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no upstream fixtures: %v", err)
	}
	cfg, err := profiles.Parse([]byte("defaultProfile: strict\nprofiles:\n- name: strict\n  extends: restricted\n  onConflict: enforce\n"))
	if err != nil {
		t.Fatal(err)
	}
	var fixed, named, passKept int
	for _, kind := range []string{"fail", "pass"} {
		files, _ := filepath.Glob(filepath.Join(dir, kind, "*.yaml"))
		if len(files) < 20 {
			t.Fatalf("only %d %s fixtures in %s", len(files), kind, dir)
		}
		for _, f := range files {
			name := kind + "/" + filepath.Base(f)
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			docs, err := (&hardenOptions{file: "-"}).run(cfg, bytes.NewReader(src))
			if err != nil || len(docs) != 1 || docs[0].err != nil || len(docs[0].results) != 1 {
				t.Errorf("%s: not hardened as one pod: %v", name, err)
				continue
			}
			h := docs[0]
			r := h.results[0]
			if _, err := h.json(); err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			pod, err := manifest.Extract(h.out, r.w.Pointer)
			if err != nil {
				t.Fatal(err)
			}
			before, after := judgeIDs(t, r.w.Pod), judgeIDs(t, pod)
			if d := lostFields(t, h.doc.JSON, h.out); kind == "pass" && len(d) > 0 {
				t.Errorf("%s: hardening lost or changed %v", name, d)
			}
			if kind == "pass" {
				if len(before) != 0 || len(after) != 0 || len(r.res.Conflicts) != 0 {
					t.Errorf("%s: before %v, after %v, conflicts %+v", name, keys(before), keys(after), r.res.Conflicts)
					continue
				}
				for _, o := range r.res.Operations {
					if o.Op != "add" {
						t.Errorf("%s: %s %s on a pod that passes restricted", name, o.Op, o.Path)
					}
				}
				passKept++
				continue
			}
			if len(before) == 0 {
				t.Errorf("%s: a fail fixture that passes before hardening", name)
			}
			if len(after) == 0 {
				fixed++
				continue
			}
			warnings := strings.Join(r.res.Warnings, "\n")
			ok := true
			for id := range after {
				if !noSafeValue[id] && !(id == "hostNamespaces" && after["windowsHostProcess"]) {
					t.Errorf("%s: still fails %s under enforce, which has a safe value", name, id)
					ok = false
				}
				if !strings.Contains(warnings, "check "+id+" after hardening") {
					t.Errorf("%s: still fails %s, not named in the warnings:\n%s", name, id, warnings)
					ok = false
				}
			}
			if got := sortedCopy(r.res.Failures); strings.Join(got, ",") != strings.Join(keys(after), ",") {
				t.Errorf("%s: Failures %q, evaluator %q", name, got, keys(after))
			}
			if ok {
				named++
			}
		}
	}
	t.Logf("upstream restricted v1.37 fixtures under onConflict: enforce: %d fail fixtures pass after hardening, %d fail only checks with no safe value and are named; %d pass fixtures still pass with nothing lost",
		fixed, named, passKept)
}
