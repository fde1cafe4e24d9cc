package mutate

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// This file holds the registry self-check and the table runner shared by
// the control_<name>_test.go files and exempt_test.go. Every case goes
// through ctlRun, which checks, besides the case's own expectations, the
// invariants every hardening must keep: the patch applies, nothing the user
// wrote is lost (unless a conflict was enforced), a second pass is empty,
// arrays are appended to and never replaced, nothing is removed or replaced
// outside enforce, Windows pods get no Linux-only field, the API server's
// allowPrivilegeEscalation rule holds, and a pod without unhandled
// conflicts passes PSS restricted.

const (
	warnA    = profiles.ActionWarn
	enforceA = profiles.ActionEnforce
	denyA    = profiles.ActionDeny
)

// absent as an expected value means get returns nil (absent or null).
type absentT struct{}

var absent = absentT{}

// cf is an expected conflict.
type cf struct {
	Control string
	Where   string
	Action  profiles.Action
}

type ctlCase struct {
	name string
	pod  string
	in   Input // Profile nil: restricted
	// skip, when set, marks a known engine bug: the case is kept but
	// skipped with "BUG: <skip>" (POD_HARDENER_RUN_BUGS=1 runs it anyway,
	// to check a fix).
	skip string

	// want: dotted path (see get) to expected value in the patched pod.
	want map[string]any
	// ann: annotation key to expected value (absent for none).
	ann map[string]any
	// conflicts: every conflict, in order (nil: none), unless
	// looseConflicts leaves them to check.
	conflicts      []cf
	looseConflicts bool
	// lost: the paths lost(orig, out) must report (nil: none).
	lost []string
	// ops: "op path" strings that must be among the operations.
	ops []string
	// noOps: path prefixes no operation may touch.
	noOps []string
	// onlyOps: when set, every operation's path has one of these prefixes.
	onlyOps []string
	// warnings: substrings each found in some warning; noWarnings: in none.
	warnings   []string
	noWarnings []string
	// denied: the pod must be rejected and Message contain each of message.
	denied  bool
	message []string
	// exempted: Result.Exempted, when non-nil.
	exempted []string
	// noPSS explains why the output need not pass PSS restricted.
	noPSS string
	check func(t *testing.T, r *Result, out []byte)
}

func ctlRun(t *testing.T, cases []ctlCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			if c.skip != "" && os.Getenv("POD_HARDENER_RUN_BUGS") == "" {
				t.Skip("BUG: " + c.skip)
			}
			ctlOne(t, c)
		})
	}
}

func ctlOne(t *testing.T, c ctlCase) {
	in := c.in
	if in.Profile == nil {
		in.Profile = profile(t, "restricted")
	}
	r := harden(t, c.pod, in)
	pb, _ := Patch(r.Operations)
	t.Logf("patch: %s", pb)

	// Conflicts.
	var got []cf
	for _, x := range r.Conflicts {
		got = append(got, cf{x.Control, x.Where, x.Action})
	}
	if !c.looseConflicts && !reflect.DeepEqual(got, c.conflicts) {
		t.Errorf("conflicts = %+v, want %+v", got, c.conflicts)
	}
	ctlWarnings(t, r, c.warnings, c.noWarnings)
	if c.exempted != nil && !reflect.DeepEqual(r.Exempted, c.exempted) {
		t.Errorf("Exempted = %q, want %q", r.Exempted, c.exempted)
	}

	if c.denied {
		if !r.Denied {
			t.Fatalf("not denied; warnings %q", r.Warnings)
		}
		for _, m := range c.message {
			if !strings.Contains(r.Message, m) {
				t.Errorf("message %q lacks %q", r.Message, m)
			}
		}
		if len(r.Operations) != 0 {
			t.Errorf("denied pod has operations: %s", pb)
		}
		return
	}
	if r.Denied {
		t.Fatalf("denied: %s", r.Message)
	}

	out := apply(t, c.pod, r.Operations)
	t.Logf("out: %s", out)

	enforced := false
	for _, x := range r.Conflicts {
		if x.Action == enforceA {
			enforced = true
		}
	}
	gotLost := lost(t, []byte(c.pod), out)
	sort.Strings(gotLost)
	wantLost := append([]string(nil), c.lost...)
	sort.Strings(wantLost)
	if len(gotLost) != 0 || len(wantLost) != 0 {
		if !reflect.DeepEqual(gotLost, wantLost) {
			t.Errorf("lost = %q, want %q", gotLost, wantLost)
		}
	}
	if !enforced {
		for _, p := range gotLost {
			// The engine's own audit annotations are its to correct.
			if p == "/metadata/annotations/"+AnnotationHardened || p == "/metadata/annotations/"+AnnotationExempted ||
				p == "/metadata/annotations/"+AnnotationImageDecisions {
				continue
			}
			t.Errorf("%s lost without an enforced conflict", p)
		}
	}

	ctlOpInvariants(t, c.pod, r.Operations, enforced)
	ctlWindows(t, c.pod, r.Operations)
	ctlEscalation(t, []byte(c.pod), out)
	if in.EphemeralOnly != nil {
		ctlEphemeralOnly(t, c.pod, r.Operations, in.EphemeralOnly)
	}

	for p, w := range c.want {
		ctlExpect(t, out, p, get(t, out, p), w)
	}
	for k, w := range c.ann {
		ctlExpect(t, out, "annotation "+k, ctlAnn(t, out, k), w)
	}
	for _, want := range c.ops {
		found := false
		for _, o := range r.Operations {
			if o.Op+" "+o.Path == want {
				found = true
			}
		}
		if !found {
			t.Errorf("no operation %q in %s", want, pb)
		}
	}
	for _, o := range r.Operations {
		for _, p := range c.noOps {
			if o.Path == p || strings.HasPrefix(o.Path, p+"/") {
				t.Errorf("operation %s %s touches %s", o.Op, o.Path, p)
			}
		}
		if c.onlyOps != nil {
			ok := false
			for _, p := range c.onlyOps {
				if o.Path == p || strings.HasPrefix(o.Path, p+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("operation %s %s outside %q", o.Op, o.Path, c.onlyOps)
			}
		}
	}

	if c.noPSS == "" && in.Profile.Name == "restricted" && in.EphemeralOnly == nil {
		unhandled := false
		for _, x := range r.Conflicts {
			if x.Action != enforceA {
				unhandled = true
			}
		}
		if !unhandled {
			if f := restrictedFailures(t, out); len(f) != 0 {
				t.Errorf("output fails PSS restricted: %v", f)
			}
		}
	}
	if c.check != nil {
		c.check(t, r, out)
	}
	mustBeIdempotent(t, out, in)
}

func ctlWarnings(t *testing.T, r *Result, want, notWant []string) {
	t.Helper()
	all := strings.Join(r.Warnings, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no warning contains %q; warnings:\n%s", w, all)
		}
	}
	for _, w := range notWant {
		if strings.Contains(all, w) {
			t.Errorf("a warning contains %q; warnings:\n%s", w, all)
		}
	}
}

// ctlExpect compares a decoded JSON value with an expected Go value.
func ctlExpect(t *testing.T, out []byte, what string, got, want any) {
	t.Helper()
	if _, ok := want.(absentT); ok {
		if got != nil {
			t.Errorf("%s = %v, want absent", what, got)
		}
		return
	}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var w any
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.Marshal(got)
		t.Errorf("%s = %s, want %s", what, g, b)
	}
}

// ctlAnn reads a pod annotation (keys hold dots, which get cannot address).
func ctlAnn(t testing.TB, doc []byte, key string) any {
	t.Helper()
	m, _ := get(t, doc, "metadata.annotations").(map[string]any)
	return m[key]
}

// ctlPointer resolves an RFC 6901 pointer; ok is false when a step is missing.
func ctlPointer(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	v := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch x := v.(type) {
		case map[string]any:
			n, ok := x[tok]
			if !ok {
				return nil, false
			}
			v = n
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// ctlOpInvariants: an add creates a member that is absent or null (and
// not one an earlier operation created), or appends to an array the input
// has or an earlier operation created (never replaces one); removes and
// replaces happen only for enforced conflicts (and the engine's own audit
// annotations).
func ctlOpInvariants(t *testing.T, raw string, ops []Operation, enforced bool) {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	var created []string // paths earlier adds created
	madeEarlier := func(p string) bool {
		for _, c := range created {
			if p == c || strings.HasPrefix(p, c+"/") {
				return true
			}
		}
		return false
	}
	for _, o := range ops {
		switch o.Op {
		case "add":
			if parent, ok := strings.CutSuffix(o.Path, "/-"); ok {
				if madeEarlier(parent) {
					continue
				}
				if v, ok := ctlPointer(doc, parent); !ok {
					t.Errorf("add %s: no array at %s in the input", o.Path, parent)
				} else if _, isArr := v.([]any); !isArr {
					t.Errorf("add %s: %s is not an array in the input (%v)", o.Path, parent, v)
				}
				continue
			}
			if v, ok := ctlPointer(doc, o.Path); ok && v != nil {
				t.Errorf("add %s overwrites the value %v the input has there", o.Path, v)
			}
			if madeEarlier(o.Path) {
				t.Errorf("add %s overwrites what an earlier operation added", o.Path)
			}
			created = append(created, o.Path)
		case "remove":
			if !enforced {
				t.Errorf("remove %s without an enforced conflict", o.Path)
			}
		case "replace":
			if strings.HasPrefix(o.Path, "/metadata/annotations/pod-hardener.io~1") {
				continue
			}
			if !enforced {
				t.Errorf("replace %s without an enforced conflict", o.Path)
			}
			if _, isArr := o.Value.([]any); isArr {
				t.Errorf("replace %s replaces a whole array", o.Path)
			}
		default:
			t.Errorf("unexpected operation %s %s", o.Op, o.Path)
		}
	}
}

// linuxOnlyFields may not appear on a Windows pod (API server validation).
var linuxOnlyFields = map[string]bool{
	"seccompProfile": true, "seLinuxOptions": true, "appArmorProfile": true,
	"capabilities": true, "privileged": true, "allowPrivilegeEscalation": true,
	"procMount": true, "readOnlyRootFilesystem": true, "runAsUser": true,
	"runAsGroup": true, "fsGroup": true, "fsGroupChangePolicy": true,
	"sysctls": true, "supplementalGroups": true,
}

// ctlWindows: on a Windows pod no operation names or carries a Linux-only field.
func ctlWindows(t *testing.T, raw string, ops []Operation) {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	if os, _ := ctlPointer(doc, "/spec/os/name"); os != "windows" {
		return
	}
	for _, o := range ops {
		for _, tok := range strings.Split(o.Path, "/") {
			if linuxOnlyFields[tok] {
				t.Errorf("Windows pod: %s %s sets Linux-only %s", o.Op, o.Path, tok)
			}
		}
		b, _ := json.Marshal(o.Value)
		var v any
		_ = json.Unmarshal(b, &v)
		ctlWalkKeys(v, func(k string) {
			if linuxOnlyFields[k] {
				t.Errorf("Windows pod: %s %s carries Linux-only %s", o.Op, o.Path, k)
			}
		})
	}
}

func ctlWalkKeys(v any, f func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			f(k)
			ctlWalkKeys(y, f)
		}
	case []any:
		for _, y := range x {
			ctlWalkKeys(y, f)
		}
	}
}

// ctlEscalation: the API server rejects allowPrivilegeEscalation: false on a
// container that is privileged or adds the literal "CAP_SYS_ADMIN"; the
// engine must never produce that (unless the user wrote it so).
func ctlEscalation(t *testing.T, orig, out []byte) {
	t.Helper()
	for _, kind := range []string{"containers", "initContainers", "ephemeralContainers"} {
		l, _ := get(t, out, "spec."+kind).([]any)
		for i := range l {
			p := "spec." + kind + "." + itoa(i) + ".securityContext"
			if get(t, out, p+".allowPrivilegeEscalation") != false {
				continue
			}
			if get(t, orig, p+".allowPrivilegeEscalation") == false {
				continue // the user's own
			}
			if get(t, out, p+".privileged") == true {
				t.Errorf("%s: allowPrivilegeEscalation=false set on a privileged container", p)
			}
			add, _ := get(t, out, p+".capabilities.add").([]any)
			for _, c := range add {
				if s, _ := c.(string); s == "CAP_SYS_ADMIN" {
					t.Errorf("%s: allowPrivilegeEscalation=false set on a container adding %s", p, s)
				}
			}
		}
	}
}

// ctlEphemeralOnly: only the named new ephemeral containers are touched.
func ctlEphemeralOnly(t *testing.T, raw string, ops []Operation, names map[string]bool) {
	t.Helper()
	allowed := map[string]bool{}
	l, _ := get(t, []byte(raw), "spec.ephemeralContainers").([]any)
	for i, c := range l {
		if m, _ := c.(map[string]any); m != nil {
			if n, _ := m["name"].(string); names[n] {
				allowed["/spec/ephemeralContainers/"+itoa(i)] = true
			}
		}
	}
	for _, o := range ops {
		parts := strings.SplitN(o.Path, "/", 5)
		if len(parts) < 4 || !allowed[strings.Join(parts[:4], "/")] {
			t.Errorf("EphemeralOnly: operation %s %s outside the new ephemeral containers", o.Op, o.Path)
		}
	}
}

func i64(v int64) *int64 { return &v }

// withControl sets one control's mode in a profile.
func withControl(name string, m profiles.Mode) func(*profiles.Profile) {
	return func(p *profiles.Profile) { p.Controls[name] = m }
}

// restrictedIn is the restricted profile with onConflict a.
func restrictedIn(t *testing.T, a profiles.Action, fns ...func(*profiles.Profile)) Input {
	return Input{Profile: profile(t, "restricted", append([]func(*profiles.Profile){onConflict(a)}, fns...)...)}
}

// authorized lets exemption annotations count.
var authorized = profiles.Authorization{Allowed: true, Why: "namespace \"ops\" has label pod-hardener.io/allow-exemptions=true"}

// TestControlRegistry: every control of profiles.ControlNames is registered
// exactly once, under its own name, at the level and Linux-only-ness the
// contract gives it, and has its table test file.
func TestControlRegistry(t *testing.T) {
	levels := map[string]level{
		profiles.Capabilities:                 levelContainer,
		profiles.AllowPrivilegeEscalation:     levelContainer,
		profiles.Privileged:                   levelContainer,
		profiles.ReadOnlyRootFilesystem:       levelContainer,
		profiles.RunAsNonRoot:                 levelPod,
		profiles.RunAsUser:                    levelPod,
		profiles.SeccompProfile:               levelPod,
		profiles.HostNamespaces:               levelPod,
		profiles.AutomountServiceAccountToken: levelPod,
		profiles.AppArmorProfile:              levelPod,
		profiles.ProcMount:                    levelContainer,
		profiles.SELinuxOptions:               levelPod,
		profiles.Sysctls:                      levelPod,
		profiles.HostPorts:                    levelContainer,
		profiles.HostProbesAndHostLifecycle:   levelContainer,
		profiles.HostPathVolumes:              levelPod,
		profiles.RestrictedVolumes:            levelPod,
		profiles.WindowsHostProcess:           levelPod,
	}
	linuxOnly := map[string]bool{
		profiles.Capabilities: true, profiles.AllowPrivilegeEscalation: true,
		profiles.Privileged: true, profiles.ReadOnlyRootFilesystem: true,
		profiles.RunAsUser: true, profiles.SeccompProfile: true,
		profiles.AppArmorProfile: true, profiles.ProcMount: true,
		profiles.SELinuxOptions: true, profiles.Sysctls: true,
	}
	if len(profiles.ControlNames) != len(levels) {
		t.Errorf("ControlNames has %d names, the contract %d", len(profiles.ControlNames), len(levels))
	}
	count := map[string]int{}
	for _, n := range profiles.ControlNames {
		count[n]++
	}
	for _, n := range profiles.ControlNames {
		if count[n] != 1 {
			t.Errorf("control %q appears %d times in ControlNames", n, count[n])
		}
		c, ok := registry[n]
		if !ok {
			t.Errorf("control %q is not registered", n)
			continue
		}
		if c.name != n {
			t.Errorf("registry[%q] is named %q", n, c.name)
		}
		if c.pod == nil && c.container == nil {
			t.Errorf("control %q does nothing (no pod or container func)", n)
		}
		if want, ok := levels[n]; !ok {
			t.Errorf("control %q is not in the contract's table", n)
		} else if c.level() != want {
			t.Errorf("control %q has level %v, want %v", n, c.level(), want)
		}
		if c.linuxOnly != linuxOnly[n] {
			t.Errorf("control %q linuxOnly = %v, want %v", n, c.linuxOnly, linuxOnly[n])
		}
		if _, err := os.Stat("control_" + n + "_test.go"); err != nil {
			t.Errorf("control %q has no table test: %v", n, err)
		}
		if _, err := os.Stat("control_" + n + ".go"); err != nil {
			t.Errorf("control %q has no source file: %v", n, err)
		}
	}
	if len(registry) != len(count) {
		var extra []string
		for n := range registry {
			if count[n] == 0 {
				extra = append(extra, n)
			}
		}
		t.Errorf("registry has %d controls, ControlNames %d; not in ControlNames: %q", len(registry), len(count), extra)
	}
	var order []string
	for _, c := range ordered() {
		order = append(order, c.name)
	}
	if !reflect.DeepEqual(order, profiles.ControlNames) {
		t.Errorf("ordered() = %q, want ControlNames order %q", order, profiles.ControlNames)
	}
}

// TestCrossControl: cases that concern every control at once.
func TestCrossControl(t *testing.T) {
	everything := func(p *profiles.Profile) {
		p.Controls[profiles.RunAsUser] = profiles.ModeDefault
		p.Controls[profiles.AutomountServiceAccountToken] = profiles.ModeDefault
		p.RunAsUser, p.RunAsGroup, p.FSGroup = i64(1000), i64(3000), i64(2000)
	}
	ctlRun(t, []ctlCase{
		{
			name: "unknown fields and null creationTimestamp untouched",
			pod:  `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","creationTimestamp":null},"spec":{"futureThing":{"a":[1,2]},"containers":[{"name":"app","image":"x","newField":"keep","securityContext":{"futureSC":true}}]},"status":{}}`,
			want: map[string]any{
				"spec.futureThing":                                         map[string]any{"a": []int{1, 2}},
				"spec.containers.0.newField":                               "keep",
				"spec.containers.0.securityContext.futureSC":               true,
				"spec.containers.0.securityContext.readOnlyRootFilesystem": true,
				"status": map[string]any{},
			},
			ann: map[string]any{AnnotationHardened: "restricted"},
			check: func(t *testing.T, r *Result, out []byte) {
				for _, o := range r.Operations {
					if o.Op != "add" {
						t.Errorf("%s %s: only adds expected", o.Op, o.Path)
					}
				}
				var m struct {
					Metadata map[string]json.RawMessage `json:"metadata"`
				}
				if err := json.Unmarshal(out, &m); err != nil {
					t.Fatal(err)
				}
				if ts, ok := m.Metadata["creationTimestamp"]; !ok || string(ts) != "null" {
					t.Errorf("creationTimestamp = %q (present %v), want null kept", ts, ok)
				}
			},
		},
		{
			name: "explicit nulls are unset",
			pod:  `{"metadata":{"annotations":null},"spec":{"securityContext":null,"volumes":null,"automountServiceAccountToken":null,"containers":[{"name":"a","securityContext":null,"volumeMounts":null},{"name":"b","securityContext":{"capabilities":{"drop":null,"add":null},"allowPrivilegeEscalation":null,"readOnlyRootFilesystem":null,"seccompProfile":null}}]}}`,
			in:   restrictedIn(t, warnA, everything),
			want: map[string]any{
				"spec.securityContext": map[string]any{"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
					"seccompProfile": map[string]any{"type": "RuntimeDefault"}},
				"spec.automountServiceAccountToken":                          false,
				"spec.containers.0.securityContext.capabilities.drop":        []string{"ALL"},
				"spec.containers.1.securityContext.capabilities.drop":        []string{"ALL"},
				"spec.containers.1.securityContext.allowPrivilegeEscalation": false,
				"spec.containers.1.securityContext.readOnlyRootFilesystem":   true,
				"spec.containers.0.volumeMounts.0.mountPath":                 "/tmp",
				"spec.volumes.0.name":                                        volumeName("/tmp"),
			},
			ann: map[string]any{AnnotationHardened: "restricted"},
		},
		{
			name: "null metadata is unset",
			pod:  `{"metadata":null,"spec":{"containers":[{"name":"a"}]}}`,
			ops:  []string{"add /metadata"},
			ann:  map[string]any{AnnotationHardened: "restricted"},
		},
		{
			name: "init containers, native sidecars and ephemeral containers hardened",
			pod:  `{"spec":{"initContainers":[{"name":"init"},{"name":"side","restartPolicy":"Always"}],"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			check: func(t *testing.T, r *Result, out []byte) {
				for _, p := range []string{"spec.initContainers.0", "spec.initContainers.1", "spec.containers.0", "spec.ephemeralContainers.0"} {
					ctlExpect(t, out, p, get(t, out, p+".securityContext"), map[string]any{
						"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
						"capabilities": map[string]any{"drop": []string{"ALL"}},
					})
					ctlExpect(t, out, p, get(t, out, p+".volumeMounts.0.mountPath"), "/tmp")
				}
				ctlExpect(t, out, "restartPolicy", get(t, out, "spec.initContainers.1.restartPolicy"), "Always")
				if l := get(t, out, "spec.volumes").([]any); len(l) != 1 {
					t.Errorf("volumes = %v, want one shared /tmp volume", l)
				}
			},
		},
		{
			name: "windows pod with every control on gets no Linux-only field",
			pod:  `{"spec":{"os":{"name":"windows"},"initContainers":[{"name":"i"}],"containers":[{"name":"app","securityContext":{"windowsOptions":{"runAsUserName":"ContainerUser"}}}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:   restrictedIn(t, enforceA, everything),
			want: map[string]any{
				"spec.securityContext":              map[string]any{"runAsNonRoot": true},
				"spec.automountServiceAccountToken": false,
				"spec.volumes":                      absent,
				"spec.initContainers.0":             map[string]any{"name": "i"},
				"spec.containers.0":                 map[string]any{"name": "app", "securityContext": map[string]any{"windowsOptions": map[string]any{"runAsUserName": "ContainerUser"}}},
				"spec.ephemeralContainers.0":        map[string]any{"name": "dbg"},
			},
		},
	})
}

// TestCrossControlPrefix: for a pod template, the engine reads the template
// and its operations address it inside the enclosing document.
func TestCrossControlPrefix(t *testing.T) {
	tmpl := `{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"app"}]}}`
	doc := `{"kind":"Deployment","spec":{"replicas":1,"template":` + tmpl + `}}`
	in := Input{Profile: profile(t, "restricted"), Prefix: "/spec/template"}
	r := harden(t, tmpl, in)
	for _, o := range r.Operations {
		if !strings.HasPrefix(o.Path, "/spec/template/") {
			t.Errorf("%s %s is outside the template", o.Op, o.Path)
		}
	}
	out := apply(t, doc, r.Operations)
	if d := lost(t, []byte(doc), out); len(d) != 0 {
		t.Errorf("lost %q", d)
	}
	ctlExpect(t, out, "runAsNonRoot", get(t, out, "spec.template.spec.securityContext.runAsNonRoot"), true)
	ctlExpect(t, out, "annotations", get(t, out, "spec.template.metadata.annotations"), map[string]any{AnnotationHardened: "restricted"})
	ctlExpect(t, out, "deployment securityContext", get(t, out, "spec.securityContext"), absent)
	pod, _ := json.Marshal(get(t, out, "spec.template"))
	if f := restrictedFailures(t, pod); len(f) != 0 {
		t.Errorf("template fails PSS restricted: %v", f)
	}
	mustBeIdempotent(t, pod, in)
}
