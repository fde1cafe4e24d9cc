package mutate

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPropertyViewFollowsPatch: after a pass, the pod view the controls
// read says exactly what the patch did, for every generated pod and
// profile: the view equals the patched pod decoded afresh. A control whose
// operation and view edit disagreed would make a later control decide on
// a pod the API server never sees.
func TestPropertyViewFollowsPatch(t *testing.T) {
	seed := propEnvUint("PROPERTY_SEED", propSeed)
	n := int(propEnvUint("PROPERTY_PODS", propPods))
	modes := propModes(t)
	compared := 0
	for i := 0; i < n; i++ {
		g := &propGen{r: rand.New(rand.NewPCG(seed, uint64(i)))}
		raw := g.pod()
		images := propImages(rand.New(rand.NewPCG(seed^propFactsSeed, uint64(i))))
		for _, m := range modes {
			in := Input{Profile: m.prof}
			if m.images {
				in.Images = images
			}
			view, err := decodePod(raw)
			if err != nil {
				t.Fatalf("pod %d: %v", i, err)
			}
			r, err := hardenPod(context.Background(), &view.podView, in)
			if err != nil || r.Denied {
				t.Fatalf("pod %d, %s: %v %s", i, m.name, err, r.Message)
			}
			if len(r.Operations) == 0 {
				continue
			}
			out, err := Apply(raw, r.Operations)
			if err != nil {
				t.Fatalf("pod %d, %s: %v", i, m.name, err)
			}
			patched, err := decodePod(out)
			if err != nil {
				t.Fatalf("pod %d, %s: the patched pod: %v", i, m.name, err)
			}
			got, want := viewCanon(t, &view.podView), viewCanon(t, &patched.podView)
			if got != want {
				t.Errorf("pod %d, %s: the view after hardening is not the patched pod\nview:    %s\npatched: %s\ninput: %s", i, m.name, got, want, raw)
			}
			compared++
		}
	}
	if n >= propPods && compared < n {
		t.Errorf("only %d passes changed a pod: the property is barely exercised", compared)
	}
}

// viewCanon writes a view as JSON, with what the engine does not keep in
// the view evened out: its audit annotations (written after the controls,
// on a pod without annotations only to the patch), the raw emptyDir of a
// volume, and what decoding leaves undecoded when it cannot matter (ports
// with neither hostPort nor a low containerPort, probes without a host).
func viewCanon(t *testing.T, p *podView) string {
	t.Helper()
	type canon struct {
		Metadata    *metaView
		Spec        *specView
		Ports       [][]portView
		Hosts       [][]handlerHosts
		Annotations map[string]string
	}
	var c canon
	if p.Metadata != nil {
		m := *p.Metadata
		ann := map[string]string{}
		for k, v := range m.Annotations {
			switch k {
			case AnnotationHardened, AnnotationExempted, AnnotationImageDecisions:
			default:
				ann[k] = v
			}
		}
		m.Annotations = nil
		c.Annotations = ann
		c.Metadata = &m
	}
	s := *p.Spec
	s.Volumes = append([]volumeView(nil), s.Volumes...)
	for i := range s.Volumes {
		s.Volumes[i].EmptyDir = nil
	}
	var cs []containerView
	for _, l := range s.byKind() {
		cs = append(cs, l.cs...)
	}
	s.Containers, s.InitContainers, s.EphemeralContainers = nil, nil, nil
	for _, ct := range cs {
		var ports []portView
		for _, pt := range ct.Ports {
			if pt.HostPort != 0 || pt.ContainerPort > 0 && pt.ContainerPort < 1024 {
				ports = append(ports, pt)
			}
		}
		c.Ports = append(c.Ports, ports)
		var hosts []handlerHosts
		for _, hd := range []handlerView{ct.LivenessProbe, ct.ReadinessProbe, ct.StartupProbe, ct.Lifecycle.PostStart, ct.Lifecycle.PreStop} {
			if hd.hosts != nil && (hd.hosts.HTTPGet.Host != "" || hd.hosts.TCPSocket.Host != "") {
				hosts = append(hosts, *hd.hosts)
			} else {
				hosts = append(hosts, handlerHosts{})
			}
		}
		c.Hosts = append(c.Hosts, hosts)
		ct.Ports = nil
		s.Containers = append(s.Containers, ct)
	}
	c.Spec = &s
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestControlsChangeThePodOnlyThroughEdit: no control writes an operation
// itself, which would leave the view and the change record behind; the
// functions of edit.go are the one way.
func TestControlsChangeThePodOnlyThroughEdit(t *testing.T) {
	direct := regexp.MustCompile(`\.(set|replace|append)\("|\.b\.(add|replace|remove)\(`)
	files, err := filepath.Glob("control_*.go")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "image_decisions.go")
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if direct.MatchString(line) {
				t.Errorf("%s:%d writes an operation directly; use set, setAs, setValue, remove, appendTo or removeEntries (edit.go): %s", f, i+1, strings.TrimSpace(line))
			}
		}
		checked++
	}
	if checked < 15 {
		t.Errorf("only %d control files read", checked)
	}
}
