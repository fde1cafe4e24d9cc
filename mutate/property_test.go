package mutate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/internal/pss"
	"github.com/pod-hardener/pod-hardener/profiles"
	"k8s.io/pod-security-admission/api"
)

// Property test: hardens a few hundred generated pods with restricted
// (warn and enforce) and baseline, and checks what PRODUCT.md and
// PITFALLS.md promise for every one of them.
//
// The generator is deterministic (fixed seed, one PCG stream per pod), so a
// failure names the pod index and prints the input; rerun one pod with
//
//	go test ./mutate/ -run 'TestPropertyHarden/pod=042'
//
// PROPERTY_SEED and PROPERTY_PODS override the seed and the number of pods
// for a longer exploratory run.

const (
	propSeed = 0x9d1e5eed
	propPods = 300
)

func propEnvUint(key string, def uint64) uint64 {
	if s := os.Getenv(key); s != "" {
		if v, err := strconv.ParseUint(s, 0, 64); err == nil {
			return v
		}
	}
	return def
}

// propObj is a JSON object that keeps its keys in the order written, as a
// manifest does (encoding a map would sort them).
type propObj struct{ kvs []propKV }

type propKV struct {
	k string
	v any
}

func (o *propObj) set(k string, v any) { o.kvs = append(o.kvs, propKV{k, v}) }

func (o *propObj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range o.kvs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(kv.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Values of fields no version of our views knows. Number formats (1.50,
// 1e3, a 20-digit integer) and escapes do not survive a decode/encode
// round trip, so any rewrite shows in a byte comparison.
var propUnknownValues = []string{
	`{"a":1}`,
	`{"n":1.50,"big":12345678901234567890,"e":1e3,"s":"\u00e9\ud83d\ude00","nil":null,"deep":[[{"x":[]}]]}`,
	`[1,2.0,"3",null,true,{}]`,
	`"v2"`,
	`null`,
}

// propGen builds one pod. It records what it generated, so the checks know
// what to expect.
type propGen struct {
	r *rand.Rand
	// unsafeRate is the chance that a field gets its unsafe value; a third
	// of the pods get none, so the "no conflict" properties are exercised.
	unsafeRate float64
	windows    bool
	hostUsers  bool // hostUsers: false
	// unsafe: some field holds a value a control calls a conflict.
	unsafe bool
	// preserved: paths (JSON pointer tokens) of values the engine must
	// leave byte-for-byte as they are: unknown fields, creationTimestamp.
	preserved [][]string
	// images: facts of the image every container runs, for the modes
	// with image-aware hardening.
	images ImageSet
}

func (g *propGen) chance(p float64) bool { return g.r.Float64() < p }
func (g *propGen) pick(vs ...any) any    { return vs[g.r.IntN(len(vs))] }

// field sets key to one of: absent, null, the safe value, or (with the
// pod's unsafe rate) the unsafe value. A nil unsafe means there is none.
func (g *propGen) field(o *propObj, key string, safe, unsafe any) {
	if unsafe != nil && g.chance(g.unsafeRate) {
		o.set(key, unsafe)
		g.unsafe = true
		return
	}
	switch g.r.IntN(8) {
	case 0, 1, 2:
	case 3:
		o.set(key, nil)
	default:
		o.set(key, safe)
	}
}

func (g *propGen) unknown(o *propObj, key string, path ...string) {
	o.set(key, json.RawMessage(propUnknownValues[g.r.IntN(len(propUnknownValues))]))
	g.preserved = append(g.preserved, propPath(path, key))
}

// propPath copies, so paths built from one prefix never share an array.
func propPath(base []string, more ...string) []string {
	return append(append(make([]string, 0, len(base)+len(more)), base...), more...)
}

func (g *propGen) seccomp() any {
	if g.chance(0.5) {
		return map[string]any{"type": "RuntimeDefault"}
	}
	return map[string]any{"type": "Localhost", "localhostProfile": "profiles/audit.json"}
}

// capabilities returns a capabilities object (or null), and whether it adds
// CAP_SYS_ADMIN, the spelling the API server refuses next to
// allowPrivilegeEscalation: false.
func (g *propGen) capabilities(path []string) (any, bool) {
	switch g.r.IntN(6) {
	case 0:
		return nil, false
	case 1:
		return &propObj{}, false
	}
	caps := &propObj{}
	sysAdmin := false
	switch g.r.IntN(4) {
	case 0:
	case 1:
		caps.set("add", nil)
	default:
		add := []string{}
		if g.chance(0.6) {
			add = append(add, "NET_BIND_SERVICE")
		}
		if g.chance(0.2) {
			add = append(add, g.pick("CAP_NET_BIND_SERVICE", "net_bind_service").(string))
			g.unsafe = true // a conflict, or accepted as NET_BIND_SERVICE
		}
		for _, c := range []string{"SYS_ADMIN", "CAP_SYS_ADMIN", "NET_ADMIN"} {
			if g.chance(g.unsafeRate) {
				add = append(add, c)
				g.unsafe = true
				sysAdmin = sysAdmin || c == "CAP_SYS_ADMIN"
			}
		}
		g.r.Shuffle(len(add), func(i, j int) { add[i], add[j] = add[j], add[i] })
		caps.set("add", add)
	}
	// "all" is not ALL for PSS: the engine must still add ALL.
	drops := []any{nil, []string{}, []string{"ALL"}, []string{"NET_RAW"}, []string{"NET_RAW", "ALL"}, []string{"all"}, []string{"CAP_ALL"}}
	if g.chance(0.8) {
		caps.set("drop", g.pick(drops...))
	}
	if g.chance(0.1) {
		g.unknown(caps, "xFuture", path...)
	}
	g.r.Shuffle(len(caps.kvs), func(i, j int) { caps.kvs[i], caps.kvs[j] = caps.kvs[j], caps.kvs[i] })
	return caps, sysAdmin
}

func (g *propGen) containerSecurityContext(path []string) any {
	switch g.r.IntN(10) {
	case 0, 1:
		return nil // absent
	case 2:
		return json.RawMessage("null")
	case 3:
		return &propObj{}
	}
	sc := &propObj{}
	if g.windows {
		g.field(sc, "runAsNonRoot", true, false)
		if g.chance(0.5) {
			sc.set("windowsOptions", map[string]any{"runAsUserName": "ContainerUser"})
		}
	} else {
		privileged := false
		if g.chance(g.unsafeRate) {
			sc.set("privileged", true)
			privileged, g.unsafe = true, true
		} else {
			g.field(sc, "privileged", false, nil)
		}
		sysAdmin := false
		if g.chance(0.7) {
			var caps any
			caps, sysAdmin = g.capabilities(propPath(path, "capabilities"))
			sc.set("capabilities", caps)
		}
		// The API server rejects allowPrivilegeEscalation: false with
		// privileged or CAP_SYS_ADMIN; such an input is never valid, so it is
		// never generated (property e checks the engine never makes it).
		if privileged || sysAdmin {
			switch g.r.IntN(3) {
			case 0:
			case 1:
				sc.set("allowPrivilegeEscalation", nil)
			case 2:
				sc.set("allowPrivilegeEscalation", true)
				g.unsafe = true
			}
		} else {
			g.field(sc, "allowPrivilegeEscalation", false, true)
		}
		g.field(sc, "runAsUser", 1000, 0)
		if g.chance(0.3) {
			sc.set("runAsGroup", 3000)
		}
		g.field(sc, "runAsNonRoot", true, false)
		g.field(sc, "seccompProfile", g.seccomp(), map[string]any{"type": "Unconfined"})
		g.field(sc, "readOnlyRootFilesystem", true, false)
	}
	if g.chance(0.2) {
		g.unknown(sc, "xFuture", path...)
	}
	g.r.Shuffle(len(sc.kvs), func(i, j int) { sc.kvs[i], sc.kvs[j] = sc.kvs[j], sc.kvs[i] })
	return sc
}

var propVolumes = []map[string]any{
	{"name": "data", "emptyDir": map[string]any{}},
	{"name": "cfg", "configMap": map[string]any{"name": "cfg"}},
	{"name": "scratch", "emptyDir": map[string]any{"medium": "Memory", "sizeLimit": "64Mi"}},
	{"name": "token", "projected": map[string]any{"sources": []any{map[string]any{"serviceAccountToken": map[string]any{"path": "token"}}}}},
}

func (g *propGen) container(kind string, i int, volumes []string) *propObj {
	prefix := map[string]string{kindContainers: "c", kindInitContainers: "i", kindEphemeralContainers: "e"}[kind]
	path := []string{"spec", kind, strconv.Itoa(i)}
	c := &propObj{}
	c.set("name", prefix+strconv.Itoa(i))
	c.set("image", propImage)
	if kind == kindInitContainers && g.chance(0.4) {
		c.set("restartPolicy", "Always") // a native sidecar
	}
	if kind == kindEphemeralContainers && g.chance(0.5) {
		c.set("targetContainerName", "c0")
	}
	if g.chance(0.3) {
		c.set("env", []any{map[string]any{"name": "MODE", "value": "prod"}})
	}
	if kind == kindContainers && g.chance(0.3) {
		c.set("ports", []any{map[string]any{"containerPort": 8080, "protocol": "TCP"}})
	}
	if sc := g.containerSecurityContext(propPath(path, "securityContext")); sc != nil {
		c.set("securityContext", sc)
	}
	switch g.r.IntN(5) {
	case 0:
	case 1:
		c.set("volumeMounts", nil)
	case 2:
		c.set("volumeMounts", []any{})
	default:
		mounts := []any{}
		paths := []string{"/tmp", "/data", "/etc/cfg", "/var/run"}
		for _, v := range volumes {
			if g.chance(0.5) && len(paths) > 0 {
				j := g.r.IntN(len(paths))
				mounts = append(mounts, map[string]any{"name": v, "mountPath": paths[j]})
				paths = append(paths[:j], paths[j+1:]...)
			}
		}
		c.set("volumeMounts", mounts)
	}
	if g.chance(0.2) {
		g.unknown(c, "xFuture", path...)
	}
	return c
}

func (g *propGen) containers(spec *propObj, kind string, lo, hi int, volumes []string) {
	n := lo + g.r.IntN(hi-lo+1)
	if n == 0 {
		switch g.r.IntN(3) {
		case 0:
		case 1:
			spec.set(kind, nil)
		case 2:
			spec.set(kind, []any{})
		}
		return
	}
	list := make([]any, n)
	for i := range list {
		list[i] = g.container(kind, i, volumes)
	}
	spec.set(kind, list)
}

func (g *propGen) pod() []byte {
	g.unsafeRate = []float64{0, 0.06, 0.2}[g.r.IntN(3)]
	g.windows = g.chance(0.15)
	g.hostUsers = !g.windows && g.chance(0.1)

	meta := &propObj{}
	if g.chance(0.7) {
		meta.set("name", "web")
	} else {
		meta.set("generateName", "web-5d8c7f-")
		meta.set("ownerReferences", []any{map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8c7f", "uid": "d9607e19-f88f-11e6-a518-42010a800195", "controller": true}})
	}
	meta.set("namespace", "apps")
	if g.chance(0.7) {
		meta.set("creationTimestamp", nil)
		g.preserved = append(g.preserved, []string{"metadata", "creationTimestamp"})
	}
	meta.set("labels", map[string]any{"app": "web"})
	switch g.r.IntN(5) {
	case 0:
	case 1:
		meta.set("annotations", nil)
	case 2:
		meta.set("annotations", map[string]any{})
	default:
		ann := map[string]any{"team": "payments"}
		if g.chance(0.4) {
			ann[AnnotationWritablePaths] = g.pick("/var/cache/nginx,/var/run", "/tmp", "relative,/ok/path", "/a/../b")
		}
		if g.chance(0.3) {
			ann[AnnotationWritablePathPrefix+"c0"] = g.pick("/data/scratch", "/tmp,/var/log")
		}
		// Nobody authorizes exemptions here: each must be ignored, and the
		// pod hardened as if it were not there.
		if g.chance(0.2) {
			ann[AnnotationExempt] = "true"
		}
		if g.chance(0.2) {
			ann[AnnotationExemptControls] = "privileged,capabilities"
		}
		if g.chance(0.1) {
			ann[profiles.AnnotationProfile] = "privileged"
		}
		meta.set("annotations", ann)
	}
	if g.chance(0.2) {
		g.unknown(meta, "xFutureMeta", "metadata")
	}

	spec := &propObj{}
	if g.windows {
		spec.set("os", map[string]any{"name": "windows"})
	} else if g.chance(0.2) {
		spec.set("os", map[string]any{"name": "linux"})
	}
	var volumes []string
	switch g.r.IntN(5) {
	case 0:
	case 1:
		spec.set("volumes", nil)
	case 2:
		spec.set("volumes", []any{})
	default:
		list := []any{}
		for _, v := range propVolumes {
			if g.chance(0.5) {
				list = append(list, v)
				volumes = append(volumes, v["name"].(string))
			}
		}
		spec.set("volumes", list)
	}
	g.containers(spec, kindInitContainers, 0, 3, volumes)
	g.containers(spec, kindContainers, 1, 4, volumes)
	g.containers(spec, kindEphemeralContainers, 0, 2, volumes)
	if !g.windows {
		g.field(spec, "hostNetwork", false, true)
		g.field(spec, "hostPID", false, true)
		g.field(spec, "hostIPC", false, true)
	}
	if g.hostUsers {
		spec.set("hostUsers", false)
	}
	if g.chance(0.3) {
		spec.set("automountServiceAccountToken", g.pick(true, false, nil))
	}
	switch g.r.IntN(6) {
	case 0:
	case 1:
		spec.set("securityContext", nil)
	case 2:
		spec.set("securityContext", &propObj{})
	default:
		sc := &propObj{}
		g.field(sc, "runAsNonRoot", true, false)
		if g.windows {
			if g.chance(0.5) {
				sc.set("windowsOptions", map[string]any{"runAsUserName": "ContainerUser"})
			}
		} else {
			g.field(sc, "runAsUser", 1000, 0)
			if g.chance(0.3) {
				sc.set("runAsGroup", 3000)
			}
			if g.chance(0.3) {
				sc.set("fsGroup", 2000)
			}
			if g.chance(0.2) {
				sc.set("supplementalGroups", []any{4000})
			}
			g.field(sc, "seccompProfile", g.seccomp(), map[string]any{"type": "Unconfined"})
		}
		if g.chance(0.2) {
			g.unknown(sc, "xFuture", "spec", "securityContext")
		}
		g.r.Shuffle(len(sc.kvs), func(i, j int) { sc.kvs[i], sc.kvs[j] = sc.kvs[j], sc.kvs[i] })
		spec.set("securityContext", sc)
	}
	if g.chance(0.3) {
		g.unknown(spec, "xFutureSpec", "spec")
	}

	pod := &propObj{}
	pod.set("apiVersion", "v1")
	pod.set("kind", "Pod")
	pod.set("metadata", meta)
	pod.set("spec", spec)
	if g.chance(0.2) {
		pod.set("status", map[string]any{})
	}
	if g.chance(0.3) {
		g.unknown(pod, "xFuture")
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		panic(err)
	}
	return raw
}

// propMode is one profile the property test runs every pod through.
type propMode struct {
	name       string
	prof       *profiles.Profile
	restricted bool
	enforce    bool
	// images: the pod's image facts are given (image-aware hardening).
	images bool
}

// propCounts shows the properties were exercised, not vacuously true.
type propCounts struct {
	pods, windows, hostUsers, noConflictRestricted, noConflictBaseline, enforced, withUnknown int
	checked                                                                                   int
	// imageDecisions counts the image-aware decisions made, by kind.
	imageDecisions map[string]int
}

func TestPropertyHarden(t *testing.T) {
	seed := propEnvUint("PROPERTY_SEED", propSeed)
	n := int(propEnvUint("PROPERTY_PODS", propPods))
	modes := propModes(t)
	counts := propCounts{imageDecisions: map[string]int{}}
	for i := 0; i < n; i++ {
		g := &propGen{r: rand.New(rand.NewPCG(seed, uint64(i)))}
		raw := g.pod()
		// The facts come from a stream of their own, so the pods stay
		// those of the modes without images.
		g.images = propImages(rand.New(rand.NewPCG(seed^propFactsSeed, uint64(i))))
		counts.pods++
		if g.windows {
			counts.windows++
		}
		if g.hostUsers {
			counts.hostUsers++
		}
		if len(g.preserved) > 0 {
			counts.withUnknown++
		}
		t.Run(fmt.Sprintf("pod=%03d", i), func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("seed %#x, pod index %d (PROPERTY_SEED=%#x), input pod:\n%s", seed, i, seed, raw)
				}
			})
			for _, m := range modes {
				t.Run(m.name, func(t *testing.T) {
					propCheck(t, raw, g, m, &counts)
				})
			}
		})
	}
	t.Logf("%d pods (seed %#x): %d windows, %d hostUsers=false, %d with unknown fields; "+
		"%d conflict-free under restricted, %d under baseline; %d enforced conflicts",
		counts.pods, seed, counts.windows, counts.hostUsers, counts.withUnknown,
		counts.noConflictRestricted, counts.noConflictBaseline, counts.enforced)
	t.Logf("image decisions by kind: %v", counts.imageDecisions)
	// Only a full run (not -run .../pod=042) says how well it covers.
	if n >= propPods && counts.checked == n*len(modes) {
		for what, c := range map[string]int{
			"windows pods": counts.windows, "conflict-free restricted pods": counts.noConflictRestricted,
			"conflict-free baseline pods": counts.noConflictBaseline, "enforced conflicts": counts.enforced,
			"pods with unknown fields": counts.withUnknown, "hostUsers=false pods": counts.hostUsers,
		} {
			if c < 10 {
				t.Errorf("generator produced only %d %s: the properties are barely exercised", c, what)
			}
		}
		for _, kind := range []string{"lookup-failed", "user", "user-unresolved", "root-assign", "root-warn", "fsGroup", "unprivileged-port-start", "volume"} {
			if c := counts.imageDecisions[kind]; c < 10 {
				t.Errorf("only %d image decisions %s: the image properties are barely exercised", c, kind)
			}
		}
	}
}

// propModes are the profiles every generated pod is hardened with.
func propModes(t testing.TB) []propMode {
	return []propMode{
		{name: "restricted-warn", prof: profile(t, "restricted"), restricted: true},
		{name: "restricted-enforce", prof: profile(t, "restricted", onConflict(profiles.ActionEnforce)), restricted: true, enforce: true},
		{name: "baseline", prof: profile(t, "baseline")},
		{name: "restricted-images", prof: profile(t, "restricted"), restricted: true, images: true},
		{name: "restricted-enforce-images-rootwarn", prof: profile(t, "restricted", onConflict(profiles.ActionEnforce),
			func(p *profiles.Profile) { p.RootImages = profiles.RootImagesWarn }), restricted: true, enforce: true, images: true},
	}
}

// propCheck runs one pod through one profile and checks every property.
func propCheck(t *testing.T, raw []byte, g *propGen, m propMode, counts *propCounts) {
	counts.checked++
	in := Input{Profile: m.prof}
	if m.images {
		in.Images = g.images
	}
	r1, err := hardenRaw(context.Background(), raw, in)
	if err != nil {
		t.Fatalf("Harden: %v", err)
	}
	if r1.Denied {
		t.Fatalf("denied without a deny profile: %s", r1.Message)
	}

	// (a) The patch applies, and the engine is deterministic: a second run
	// gives the same patch, the same messages and the same output.
	r2, err := hardenRaw(context.Background(), raw, in)
	if err != nil {
		t.Fatalf("Harden (second run): %v", err)
	}
	p1, _ := Patch(r1.Operations)
	p2, _ := Patch(r2.Operations)
	if !bytes.Equal(p1, p2) {
		t.Fatalf("not deterministic:\n%s\n%s", p1, p2)
	}
	// The bound the engine counts while building is what MaxPatchBytes
	// is checked against.
	if len(p1) > max(r1.patchSize, 2) {
		t.Fatalf("patch of %d bytes, over the engine's bound of %d", len(p1), r1.patchSize)
	}
	if !reflect.DeepEqual(r1.Conflicts, r2.Conflicts) || !reflect.DeepEqual(r1.Warnings, r2.Warnings) {
		t.Fatalf("messages not deterministic:\n%q\n%q", r1.Warnings, r2.Warnings)
	}
	out := apply(t, string(raw), r1.Operations)
	if again := apply(t, string(raw), r2.Operations); !bytes.Equal(out, again) {
		t.Fatalf("applying the same patch twice gave different pods:\n%s\n%s", out, again)
	}

	// (b) Unknown fields (and creationTimestamp: null) keep their exact
	// bytes, and no operation touches them; in warn mode nothing the user
	// wrote is lost.
	for _, p := range g.preserved {
		want, _ := propRawAt(raw, p)
		got, ok := propRawAt(out, p)
		if !ok || !bytes.Equal(want, got) {
			t.Errorf("/%s changed: %s became %s", strings.Join(p, "/"), want, got)
		}
		ptr := "/" + strings.Join(p, "/")
		for _, op := range r1.Operations {
			if op.Path == ptr || strings.HasPrefix(op.Path, ptr+"/") {
				t.Errorf("operation %s %s touches an unknown field", op.Op, op.Path)
			}
		}
	}
	// An add never overwrites a value the user wrote (only an absent or
	// null member); only enforce replaces or removes, and only through
	// its own replace and remove operations.
	var rawDoc any
	if err := json.Unmarshal(raw, &rawDoc); err != nil {
		t.Fatal(err)
	}
	for _, op := range r1.Operations {
		if op.Op == "add" {
			if v, ok := propLookup(rawDoc, propPointer(op.Path)); ok && v != nil {
				t.Errorf("add %s overwrites the user's %v", op.Path, v)
			}
		} else if !m.enforce {
			t.Errorf("warn mode emitted %s %s", op.Op, op.Path)
		}
	}
	if !m.enforce {
		if d := lost(t, raw, out); len(d) != 0 {
			t.Errorf("warn mode lost or changed what the user wrote: %v\npatch %s", d, p1)
		}
	}

	// (c) Reinvocation: a second pass over the output changes nothing.
	r3, err := hardenRaw(context.Background(), out, in)
	if err != nil {
		t.Fatalf("Harden on its own output: %v\n%s", err, out)
	}
	if len(r3.Operations) != 0 {
		p3, _ := Patch(r3.Operations)
		t.Errorf("second pass not empty: %s\npatch was %s\noutput %s", p3, p1, out)
	}

	// (c') Reinvocation after a later webhook injected a sidecar: the new
	// container gets hardened, nothing else is lost, and a third pass is
	// empty.
	if m.restricted && !m.enforce {
		propCheckInjectedSidecar(t, out, in, g.windows)
	}

	// (c'') An UPDATE of pods/ephemeralcontainers: only the new ephemeral
	// containers change, everything else is immutable.
	if m.restricted {
		propCheckEphemeralUpdate(t, raw, m, in.Images)
	}

	// (d) Pod Security Standards.
	if !g.unsafe && len(r1.Conflicts) > 0 {
		t.Errorf("a pod with only safe values got conflicts: %+v", r1.Conflicts)
	}
	switch {
	case m.restricted && m.enforce:
		counts.enforced += len(r1.Conflicts)
		for _, c := range r1.Conflicts {
			if c.Action != profiles.ActionEnforce {
				t.Errorf("conflict not enforced although every unsafe value is one our controls own: %+v", c)
			}
		}
		if f := restrictedFailures(t, out); len(f) != 0 {
			t.Errorf("enforce mode: output fails PSS restricted: %v\npatch %s\noutput %s", f, p1, out)
		}
	case m.restricted:
		f := restrictedFailures(t, out)
		if len(r1.Conflicts) == 0 {
			counts.noConflictRestricted++
			if len(f) != 0 {
				t.Errorf("no conflicts, yet the output fails PSS restricted: %v\npatch %s\noutput %s", f, p1, out)
			}
			break
		}
		// With conflicts kept (warn), each failure must be one a conflict
		// warned about: nothing fails restricted silently.
		for _, x := range f {
			if !propExplained(x, r1.Conflicts) {
				t.Errorf("PSS check %s fails but no conflict warns about it: %v\nconflicts %+v\noutput %s", x.ID, x, r1.Conflicts, out)
			}
		}
	default:
		if len(r1.Conflicts) == 0 {
			counts.noConflictBaseline++
			p, err := pss.DecodePod(out)
			if err != nil {
				t.Fatal(err)
			}
			if f := pss.Evaluate(p, api.LevelBaseline); len(f) != 0 {
				t.Errorf("no conflicts under baseline, yet the output fails PSS baseline: %v\noutput %s", f, out)
			}
		}
	}

	// (e) Nothing the API server rejects.
	propCheckAPIServerRules(t, raw, out, g.windows)

	// (f) Image-aware hardening keeps its promises.
	if m.images && !g.windows {
		propCheckImages(t, out, r1, g.images)
		for _, d := range r1.ImageDecisions {
			kind, _, _ := strings.Cut(d, "@")
			kind, _, _ = strings.Cut(kind, "=")
			counts.imageDecisions[kind]++
		}
	}
}

func propCheckInjectedSidecar(t *testing.T, out []byte, in Input, windows bool) {
	t.Helper()
	var pod map[string]any
	if err := json.Unmarshal(out, &pod); err != nil {
		t.Fatal(err)
	}
	spec := pod["spec"].(map[string]any)
	list, _ := spec[kindContainers].([]any)
	spec[kindContainers] = append(list, map[string]any{"name": "injected-proxy", "image": "proxy:1"})
	injected, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	r, err := hardenRaw(context.Background(), injected, in)
	if err != nil {
		t.Fatalf("Harden after sidecar injection: %v", err)
	}
	again := apply(t, string(injected), r.Operations)
	if d := lost(t, injected, again); len(d) != 0 {
		t.Errorf("after sidecar injection, lost %v", d)
	}
	if r2 := harden(t, string(again), in); len(r2.Operations) != 0 {
		pb, _ := Patch(r2.Operations)
		t.Errorf("after sidecar injection, the next pass is not empty: %s", pb)
	}
	if len(r.Conflicts) == 0 {
		if f := restrictedFailures(t, again); len(f) != 0 {
			t.Errorf("after sidecar injection, no conflicts, yet fails PSS restricted: %v\n%s", f, again)
		}
	}
	c := get(t, again, "spec.containers."+strconv.Itoa(len(list)))
	sc, _ := c.(map[string]any)["securityContext"].(map[string]any)
	if !windows && sc["allowPrivilegeEscalation"] != false {
		t.Errorf("injected sidecar not hardened: %v", c)
	}
}

func propCheckEphemeralUpdate(t *testing.T, raw []byte, m propMode, images ImageSet) {
	t.Helper()
	var pod struct {
		Spec struct {
			Ephemeral []struct {
				Name string `json:"name"`
			} `json:"ephemeralContainers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Ephemeral) == 0 {
		return
	}
	// The last one is new; the others were added by earlier updates.
	last := len(pod.Spec.Ephemeral) - 1
	in := Input{Profile: m.prof, EphemeralOnly: map[string]bool{pod.Spec.Ephemeral[last].Name: true}, Images: images}
	r := harden(t, string(raw), in)
	prefix := "/spec/ephemeralContainers/" + strconv.Itoa(last) + "/"
	for _, op := range r.Operations {
		if !strings.HasPrefix(op.Path, prefix) {
			t.Errorf("ephemeral update: %s %s touches more than the new ephemeral container", op.Op, op.Path)
		}
	}
	out := apply(t, string(raw), r.Operations)
	mustBeIdempotent(t, out, in)
}

// propPSSControls maps a PSS check to the controls whose conflicts explain
// its failure (allowPrivilegeEscalation stays unset on a privileged or
// SYS_ADMIN container).
var propPSSControls = map[string][]string{
	"allowPrivilegeEscalation":  {profiles.AllowPrivilegeEscalation, profiles.Privileged, profiles.Capabilities},
	"capabilities_baseline":     {profiles.Capabilities},
	"capabilities_restricted":   {profiles.Capabilities},
	"privileged":                {profiles.Privileged},
	"hostNamespaces":            {profiles.HostNamespaces},
	"runAsNonRoot":              {profiles.RunAsNonRoot},
	"runAsUser":                 {profiles.RunAsNonRoot},
	"seccompProfile_baseline":   {profiles.SeccompProfile},
	"seccompProfile_restricted": {profiles.SeccompProfile},
}

func propExplained(f pss.Failure, conflicts []Conflict) bool {
	for _, ctl := range propPSSControls[f.ID] {
		for _, c := range conflicts {
			if c.Control == ctl {
				return true
			}
		}
	}
	return false
}

var (
	propLinuxOnlyContainer = []string{"seccompProfile", "seLinuxOptions", "capabilities", "privileged", "allowPrivilegeEscalation", "procMount", "readOnlyRootFilesystem", "runAsUser", "runAsGroup", "appArmorProfile"}
	propLinuxOnlyPod       = []string{"seccompProfile", "seLinuxOptions", "runAsUser", "runAsGroup", "fsGroup", "fsGroupChangePolicy", "sysctls", "supplementalGroups", "supplementalGroupsPolicy", "appArmorProfile"}
)

// propCheckAPIServerRules: no container ends up with allowPrivilegeEscalation
// false next to privileged or an added CAP_SYS_ADMIN, and a Windows pod gains no
// Linux-only field.
func propCheckAPIServerRules(t *testing.T, raw, out []byte, windows bool) {
	t.Helper()
	var before, after map[string]any
	if err := json.Unmarshal(raw, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &after); err != nil {
		t.Fatal(err)
	}
	specIn, _ := before["spec"].(map[string]any)
	specOut, _ := after["spec"].(map[string]any)
	gained := func(where string, in, out map[string]any, keys []string) {
		for _, k := range keys {
			if out[k] != nil && in[k] == nil {
				t.Errorf("Windows pod gained Linux-only field %s.%s = %v", where, k, out[k])
			}
		}
	}
	for _, kind := range []string{kindInitContainers, kindContainers, kindEphemeralContainers} {
		listOut, _ := specOut[kind].([]any)
		listIn, _ := specIn[kind].([]any)
		for i, c := range listOut {
			sc, _ := c.(map[string]any)["securityContext"].(map[string]any)
			where := fmt.Sprintf("%s[%d].securityContext", kind, i)
			if sc["allowPrivilegeEscalation"] == false {
				if sc["privileged"] == true {
					t.Errorf("%s: allowPrivilegeEscalation false with privileged true (the API server rejects it)", where)
				}
				caps, _ := sc["capabilities"].(map[string]any)
				add, _ := caps["add"].([]any)
				for _, a := range add {
					if s, _ := a.(string); s == "CAP_SYS_ADMIN" {
						t.Errorf("%s: allowPrivilegeEscalation false with capabilities.add %s (the API server rejects it)", where, s)
					}
				}
			}
			if propRootRefused(specOut, sc) && (i >= len(listIn) || !propRootRefused(specIn, propSC(listIn[i]))) {
				t.Errorf("%s: runs as root (runAsUser 0) and now has runAsNonRoot true: the kubelet will refuse to start it", where)
			}
			if windows {
				var scIn map[string]any
				if i < len(listIn) {
					cIn, _ := listIn[i].(map[string]any)
					scIn, _ = cIn["securityContext"].(map[string]any)
				}
				gained(where, scIn, sc, propLinuxOnlyContainer)
			}
		}
	}
	if windows {
		scIn, _ := specIn["securityContext"].(map[string]any)
		scOut, _ := specOut["securityContext"].(map[string]any)
		gained("spec.securityContext", scIn, scOut, propLinuxOnlyPod)
	}
}

// propPointer splits a JSON pointer into its unescaped tokens.
func propPointer(p string) []string {
	toks := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, tok := range toks {
		if strings.Contains(tok, "~") {
			toks[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		}
	}
	return toks
}

// propLookup returns the decoded value at path.
func propLookup(doc any, path []string) (any, bool) {
	for _, tok := range path {
		switch x := doc.(type) {
		case map[string]any:
			v, ok := x[tok]
			if !ok {
				return nil, false
			}
			doc = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			doc = x[i]
		default:
			return nil, false
		}
	}
	return doc, true
}

func propSC(c any) map[string]any {
	m, _ := c.(map[string]any)
	sc, _ := m["securityContext"].(map[string]any)
	return sc
}

// propRootRefused: the container's effective runAsUser is 0 and its
// effective runAsNonRoot is true, so the kubelet refuses to start it.
func propRootRefused(spec, sc map[string]any) bool {
	podSC, _ := spec["securityContext"].(map[string]any)
	eff := func(k string) any {
		if v := sc[k]; v != nil {
			return v
		}
		return podSC[k]
	}
	return eff("runAsUser") == float64(0) && eff("runAsNonRoot") == true
}

// propRawAt returns the raw bytes of the value at path, as written.
func propRawAt(doc []byte, path []string) (json.RawMessage, bool) {
	cur := json.RawMessage(doc)
	for _, tok := range path {
		cur = bytes.TrimSpace(cur)
		if len(cur) > 0 && cur[0] == '[' {
			var l []json.RawMessage
			i, err := strconv.Atoi(tok)
			if err != nil || json.Unmarshal(cur, &l) != nil || i < 0 || i >= len(l) {
				return nil, false
			}
			cur = l[i]
			continue
		}
		var o map[string]json.RawMessage
		if json.Unmarshal(cur, &o) != nil {
			return nil, false
		}
		v, ok := o[tok]
		if !ok {
			return nil, false
		}
		cur = v
	}
	return cur, true
}

// Engine bugs the property and fuzz tests once found, each with a minimal
// reproduction that must keep passing.

type propBugCase struct {
	name, raw string
	// check returns what is wrong with the engine's answer, or "".
	check func(t *testing.T, raw string) string
}

// propNoConflictPassesRestricted: PRODUCT.md, "restricted: a pod with no
// conflicts comes out passing PSS restricted".
func propNoConflictPassesRestricted(t *testing.T, raw string) string {
	r := harden(t, raw, Input{Profile: profile(t, "restricted")})
	out := apply(t, raw, r.Operations)
	if f := restrictedFailures(t, out); len(r.Conflicts) == 0 && len(f) > 0 {
		return fmt.Sprintf("no conflict, yet the output fails PSS restricted: %v; output %s", f, out)
	}
	return ""
}

// propPatchApplies: PRODUCT.md, the webhook returns an RFC 6902 patch of
// the pod it was given.
func propPatchApplies(t *testing.T, raw string) string {
	r, err := hardenRaw(context.Background(), []byte(raw), Input{Profile: profile(t, "restricted")})
	if err != nil {
		return ""
	}
	if _, err := Apply([]byte(raw), r.Operations); err != nil {
		return fmt.Sprintf("the patch does not apply: %v", err)
	}
	return ""
}

var propBugCases = map[string]propBugCase{
	"capAddSpelling": {
		name: "capabilities.add CAP_NET_BIND_SERVICE or net_bind_service is allowed, but PSS wants the exact NET_BIND_SERVICE",
		raw:  `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","securityContext":{"capabilities":{"add":["CAP_NET_BIND_SERVICE"]}}}]}}`,
	},
	"capAddLowercase": {
		name: "capabilities.add net_bind_service (lower case) is allowed, but PSS wants the exact NET_BIND_SERVICE",
		raw:  `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","securityContext":{"capabilities":{"add":["net_bind_service"]}}}]}}`,
	},
	"capDropSpelling": {
		name: "capabilities.drop CAP_ALL counts as ALL, so ALL is not added, but PSS wants the literal ALL",
		raw:  `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","securityContext":{"capabilities":{"drop":["CAP_ALL"]}}}]}}`,
	},
	"nullContainer": {
		name: "a null entry in containers is hardened as if it were an object: the patch adds below null and does not apply",
		raw:  `{"spec":{"containers":[null]}}`,
	},
	"caseFoldedKey": {
		name: "encoding/json matches keys case-insensitively: SecurityContext is read as securityContext, and the patch adds below a path that does not exist",
		raw:  `{"spec":{"containers":[{"name":"a","SecurityContext":{}}]}}`,
	},
	"duplicateKey": {
		name: "a duplicated key: the engine merges both values, json-patch keeps the last, so the patch adds below a path that does not exist",
		raw:  `{"spec":{"containers":[{"name":"a"}]},"spec":{}}`,
	},
}

func propBugCheck(name string) func(t *testing.T, raw string) string {
	switch name {
	case "capAddSpelling", "capAddLowercase", "capDropSpelling":
		return propNoConflictPassesRestricted
	}
	return propPatchApplies
}

// TestPropertyRegressions keeps the engine bugs the property and fuzz
// tests once found fixed.
func TestPropertyRegressions(t *testing.T) {
	for _, key := range []string{"capAddSpelling", "capAddLowercase", "capDropSpelling", "nullContainer", "caseFoldedKey", "duplicateKey"} {
		c := propBugCases[key]
		t.Run(key, func(t *testing.T) {
			if msg := propBugCheck(key)(t, c.raw); msg != "" {
				t.Errorf("regression: %s\ninput: %s\n%s", c.name, c.raw, msg)
			}
		})
	}
}
