package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"k8s.io/pod-security-admission/api"
	"sigs.k8s.io/yaml"

	"github.com/pod-hardener/pod-hardener/internal/jsondiff"
	"github.com/pod-hardener/pod-hardener/internal/manifest"
	"github.com/pod-hardener/pod-hardener/internal/pss"
	"github.com/pod-hardener/pod-hardener/internal/testcorpus"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// TestCorpus hardens every real-world manifest and checks the properties
// the corpus README asks for. It logs the pass counts.
func TestCorpus(t *testing.T) {
	files := testcorpus.Files(t, 100)
	warnCfg := profiles.Default()
	enforceCfg, err := profiles.Parse([]byte("defaultProfile: strict\nprofiles:\n- name: strict\n  extends: restricted\n  onConflict: enforce\n"))
	if err != nil {
		t.Fatal(err)
	}
	var workloads, passBefore, passAfter, explicit, passEnforce, enforceOnlyForeign, spliced, changedDocs int
	rd := manifest.NewRenderer()
	for _, f := range files {
		name := filepath.Base(f)
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		o := &hardenOptions{file: "-"}
		docs, err := o.run(warnCfg, bytes.NewReader(src))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		edocs, err := o.run(enforceCfg, bytes.NewReader(src))
		if err != nil {
			t.Errorf("%s (enforce): %v", name, err)
			continue
		}
		for i, h := range docs {
			if _, err := h.json(); err != nil {
				t.Errorf("%s %s: %v", name, h.name(), err)
				continue
			}
			if len(h.ops) > 0 {
				changedDocs++
				if checkYAMLOutput(t, name+" "+h.name(), rd, h) {
					spliced++
				}
			}
			if d := lostFields(t, h.doc.JSON, h.out); len(d) > 0 {
				t.Errorf("%s %s: hardening lost or changed %v", name, h.name(), d)
			}
			again := (&hardenOptions{}).hardenDoc(warnCfg, manifest.Document{Index: h.doc.Index, JSON: h.out})
			for _, r := range again.results {
				if len(r.res.Operations) > 0 {
					t.Errorf("%s %s: second pass not empty: %+v", name, r.w.Header.ID(), r.res.Operations)
				}
			}
			for j, r := range h.results {
				workloads++
				before := judgeIDs(t, r.w.Pod)
				pod, err := manifest.Extract(h.out, r.w.Pointer)
				if err != nil {
					t.Fatal(err)
				}
				after := judgeIDs(t, pod)
				checkAPIValid(t, name+" "+r.w.Header.ID(), r.w.Pod, pod)
				if len(before) == 0 {
					passBefore++
				}
				if len(after) == 0 {
					passAfter++
				}
				// Every check has an owning control: what still fails is a
				// conflict kept, and is named in the warnings.
				if len(r.res.Conflicts) > 0 {
					explicit++
				} else if len(after) > 0 {
					t.Errorf("%s %s: no explicit unsafe value, yet fails restricted after hardening: %v", name, r.w.Header.ID(), keys(after))
				}
				if got := append([]string(nil), r.res.Failures...); strings.Join(sortedCopy(got), ",") != strings.Join(keys(after), ",") {
					t.Errorf("%s %s: warnings name %q, the evaluator %q", name, r.w.Header.ID(), got, keys(after))
				}
				// Enforce: only checks with no safe value may still fail.
				eh := edocs[i]
				if _, err := eh.json(); err != nil {
					t.Errorf("%s %s (enforce): %v", name, eh.name(), err)
					continue
				}
				if eh.err != nil {
					t.Errorf("%s %s (enforce): %v", name, eh.name(), eh.err)
					continue
				}
				epod, _ := manifest.Extract(eh.out, eh.results[j].w.Pointer)
				checkAPIValid(t, name+" "+r.w.Header.ID()+" (enforce)", r.w.Pod, epod)
				eafter := judgeIDs(t, epod)
				if len(eafter) == 0 {
					passEnforce++
				}
				fixable := []string{}
				for id := range eafter {
					if !noSafeValue[id] {
						fixable = append(fixable, id)
					}
				}
				if len(fixable) > 0 && !isWindows(epod) && !eafter["windowsHostProcess"] {
					t.Errorf("%s %s: enforce still fails checks with a safe value %v", name, r.w.Header.ID(), fixable)
				} else if len(eafter) > 0 {
					enforceOnlyForeign++
				}
			}
		}
	}
	t.Logf("corpus: %d files, %d workloads; restricted before: %d, after (warn): %d; with explicit unsafe values: %d; after (enforce): %d, the other %d fail only checks with no safe value (hostPath and other volume types, hostProcess); YAML output spliced into the source for %d of %d changed documents",
		len(files), workloads, passBefore, passAfter, explicit, passEnforce, enforceOnlyForeign, spliced, changedDocs)
	if workloads < 150 {
		t.Errorf("only %d workloads found in the corpus", workloads)
	}
}

func isWindows(pod []byte) bool {
	var p struct {
		Spec struct {
			OS *struct{ Name string } `json:"os"`
		} `json:"spec"`
	}
	_ = json.Unmarshal(pod, &p)
	return p.Spec.OS != nil && p.Spec.OS.Name == "windows"
}

func judgeIDs(t *testing.T, pod []byte) map[string]bool {
	t.Helper()
	p, _, err := pss.DecodePodLenient(pod)
	if err != nil {
		t.Fatalf("cannot judge: %v", err)
	}
	out := map[string]bool{}
	for _, f := range pss.Evaluate(p, api.LevelRestricted) {
		out[f.ID] = true
	}
	return out
}

// checkAPIValid rejects the field combinations the API server refuses:
// allowPrivilegeEscalation false with privileged or SYS_ADMIN, and any
// Linux-only field hardening added to a Windows pod.
func checkAPIValid(t *testing.T, id string, before, after []byte) {
	t.Helper()
	var p struct {
		Spec struct {
			OS              *struct{ Name string }     `json:"os"`
			SecurityContext map[string]json.RawMessage `json:"securityContext"`
			Containers      []containerSC              `json:"containers"`
			InitContainers  []containerSC              `json:"initContainers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(after, &p); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	for _, c := range append(p.Spec.Containers, p.Spec.InitContainers...) {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			continue
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: container %s has allowPrivilegeEscalation false and privileged true", id, c.Name)
		}
		if sc.Capabilities != nil {
			for _, a := range sc.Capabilities.Add {
				if profiles.NormalizeCapability(a) == "SYS_ADMIN" {
					t.Errorf("%s: container %s has allowPrivilegeEscalation false and adds %s", id, c.Name, a)
				}
			}
		}
	}
	if p.Spec.OS != nil && p.Spec.OS.Name == "windows" {
		if added := linuxOnlyPaths(after); !reflect.DeepEqual(added, linuxOnlyPaths(before)) {
			t.Errorf("%s: Windows pod got Linux-only fields: before %v after %v", id, linuxOnlyPaths(before), added)
		}
	}
}

type containerSC struct {
	Name            string `json:"name"`
	SecurityContext *struct {
		Privileged               *bool `json:"privileged"`
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		Capabilities             *struct {
			Add []string `json:"add"`
		} `json:"capabilities"`
	} `json:"securityContext"`
}

var linuxOnly = map[string]bool{"seccompProfile": true, "capabilities": true, "privileged": true, "allowPrivilegeEscalation": true,
	"readOnlyRootFilesystem": true, "runAsUser": true, "runAsGroup": true, "fsGroup": true, "seLinuxOptions": true, "procMount": true}

func linuxOnlyPaths(pod []byte) []string {
	var v any
	_ = json.Unmarshal(pod, &v)
	var out []string
	var walk func(p string, x any)
	walk = func(p string, x any) {
		switch xv := x.(type) {
		case map[string]any:
			for k, c := range xv {
				if linuxOnly[k] && strings.Contains(p, "securityContext") {
					out = append(out, p+"/"+k)
				}
				walk(p+"/"+k, c)
			}
		case []any:
			for i, c := range xv {
				walk(p+"/"+strconv.Itoa(i), c)
			}
		}
	}
	walk("", v)
	sort.Strings(out)
	return out
}

// lostFields lists leaf paths of a whose value b lacks or changed.
func lostFields(t *testing.T, a, b []byte) []string {
	t.Helper()
	d, err := jsondiff.Lost(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// checkYAMLOutput: the YAML harden writes reads (as kubectl reads it) as
// exactly the patched JSON, and, when it was spliced into the source,
// keeps every comment line of the source. It reports whether it was
// spliced (the source's lines all still there, in order).
func checkYAMLOutput(t *testing.T, name string, rd *manifest.Renderer, h *hardened) bool {
	t.Helper()
	rendered := rd.Rendered
	y, err := h.yaml(rd)
	if err != nil {
		t.Errorf("%s: rendering YAML: %v", name, err)
		return false
	}
	got, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Errorf("%s: output is not YAML: %v\n%s", name, err, y)
		return false
	}
	if !jsonEqual(got, h.out) {
		t.Errorf("%s: the YAML written reads differently from the patched document:\n%s\n--- want\n%s", name, y, h.out)
		return false
	}
	if rd.Rendered > rendered || len(h.ops) == 0 {
		return false
	}
	// Spliced: every comment line of the source is still there.
	for _, l := range strings.Split(string(h.doc.Source), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") && !strings.Contains(string(y), l) {
			t.Errorf("%s: spliced output lost the comment %q", name, l)
		}
	}
	return true
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
