package mutate

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// The workload archetypes of docs/real-node.md, as image facts, hardened
// by the restricted profile under each rootImages choice and without
// facts, and judged by a model of what stops a container on the node: the
// kubelet's runAsNonRoot check, binding a port below 1024 as non-root,
// and writing on a read-only root. The model is the engine's own
// reasoning, written apart from it; the real node (e2e, TestRealNode*)
// is the proof. This table decides rootImages' default
// (docs/image-aware.md).

type archetype struct {
	name   string
	facts  *ImageFacts
	listen int32    // the port it binds, 0 for none
	writes []string // directories it writes
}

var archetypes = []archetype{
	{"web-root", &ImageFacts{User: "", ExposedPorts: []int32{80}}, 80, []string{"/var/cache/app", "/var/run"}},
	{"app-root", &ImageFacts{User: "", ExposedPorts: []int32{8080}}, 8080, []string{"/tmp"}},
	{"named-user", &ImageFacts{User: "node", UID: i64(1000), GID: i64(1000), ExposedPorts: []int32{3000}}, 3000, nil},
	{"named-user-unreadable", &ImageFacts{User: "node", UserErr: "the image has no /etc/passwd", ExposedPorts: []int32{3000}}, 3000, nil},
	{"numeric-nonroot", &ImageFacts{User: "65532", UID: i64(65532), ExposedPorts: []int32{8080}}, 8080, nil},
	{"volume-root", &ImageFacts{User: "", ExposedPorts: []int32{6379}, Volumes: []string{"/data"}}, 6379, []string{"/data"}},
	{"nonroot-port-80", &ImageFacts{User: "101", UID: i64(101), ExposedPorts: []int32{80}}, 80, nil},
	{"sleeper-root", &ImageFacts{User: ""}, 0, nil},
	{"lookup-failed", &ImageFacts{Err: "GET https://registry.example/v2/x/manifests/1: 401 Unauthorized"}, 0, nil},
}

// archetypeStarts models the node: "" when the container starts and does
// its work, else what stops it.
func archetypeStarts(t *testing.T, a archetype, out []byte) string {
	t.Helper()
	var pod struct {
		Spec struct {
			SecurityContext *struct {
				RunAsNonRoot *bool  `json:"runAsNonRoot"`
				RunAsUser    *int64 `json:"runAsUser"`
				Sysctls      []struct {
					Name, Value string
				} `json:"sysctls"`
			} `json:"securityContext"`
			Containers []struct {
				SecurityContext *struct {
					RunAsNonRoot           *bool  `json:"runAsNonRoot"`
					RunAsUser              *int64 `json:"runAsUser"`
					ReadOnlyRootFilesystem *bool  `json:"readOnlyRootFilesystem"`
				} `json:"securityContext"`
				VolumeMounts []struct {
					MountPath string `json:"mountPath"`
				} `json:"volumeMounts"`
			} `json:"containers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(out, &pod); err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.Containers[0]
	var nonRoot *bool
	var uid *int64
	readOnly := false
	if sc := c.SecurityContext; sc != nil {
		nonRoot, uid, readOnly = sc.RunAsNonRoot, sc.RunAsUser, isTrue(sc.ReadOnlyRootFilesystem)
	}
	portStart := 1024
	if psc := pod.Spec.SecurityContext; psc != nil {
		if nonRoot == nil {
			nonRoot = psc.RunAsNonRoot
		}
		if uid == nil {
			uid = psc.RunAsUser
		}
		for _, s := range psc.Sysctls {
			if s.Name == SysctlUnprivilegedPortStart {
				fmt.Sscan(s.Value, &portStart)
			}
		}
	}
	f := a.facts
	if f.Err != "" {
		// Unknown image: the hardened pod as without facts; the archetype
		// behind it is app-root.
		f = &ImageFacts{User: ""}
	}
	if uid == nil {
		// The kubelet reads the image's USER as written: it never looks a
		// name up.
		u, _, _ := strings.Cut(f.User, ":")
		named := u != "" && u != "root" && strings.Trim(u, "0123456789") != ""
		if isTrue(nonRoot) && named {
			return "refused: non-numeric user"
		}
		if uid = propImageUID(f); uid == nil {
			uid = i64(1) // some non-root user
		}
	}
	if isTrue(nonRoot) && *uid == 0 {
		return "refused: runs as root"
	}
	if a.listen > 0 && a.listen < 1024 && *uid != 0 && int(a.listen) < portStart {
		return fmt.Sprintf("cannot bind :%d", a.listen)
	}
	for _, w := range a.writes {
		covered := !readOnly
		for _, m := range c.VolumeMounts {
			mp := path.Clean(m.MountPath)
			covered = covered || mp == w || strings.HasPrefix(w, mp+"/")
		}
		if !covered {
			return "cannot write " + w
		}
	}
	return ""
}

func TestImageArchetypes(t *testing.T) {
	modes := []struct {
		name   string
		root   profiles.RootImages
		images bool
	}{{"without facts", "", false}, {"assign", profiles.RootImagesAssign, true}, {"warn", profiles.RootImagesWarn, true}, {"deny", profiles.RootImagesDeny, true}}
	// What the model says of each archetype, per mode: "ok", "denied", or
	// what stops it.
	want := map[string][]string{
		"web-root":              {"refused: runs as root", "cannot write /var/cache/app", "refused: runs as root", "denied"},
		"app-root":              {"refused: runs as root", "ok", "refused: runs as root", "denied"},
		"named-user":            {"refused: non-numeric user", "ok", "ok", "ok"},
		"named-user-unreadable": {"refused: non-numeric user", "refused: non-numeric user", "refused: non-numeric user", "refused: non-numeric user"},
		"numeric-nonroot":       {"ok", "ok", "ok", "ok"},
		"volume-root":           {"refused: runs as root", "ok", "refused: runs as root", "denied"},
		"nonroot-port-80":       {"cannot bind :80", "ok", "ok", "ok"},
		"sleeper-root":          {"refused: runs as root", "ok", "refused: runs as root", "denied"},
		"lookup-failed":         {"refused: runs as root", "refused: runs as root", "refused: runs as root", "refused: runs as root"},
	}
	started := make([]int, len(modes))
	var table strings.Builder
	table.WriteString("| archetype | " + strings.Join([]string{modes[0].name, "rootImages: assign", "warn", "deny"}, " | ") + " |\n|---|---|---|---|---|\n")
	for _, a := range archetypes {
		image := "registry.example/" + a.name + ":1"
		f := *a.facts
		f.Ref = image
		pod := onePod(image, "", "")
		row := []string{a.name}
		for i, m := range modes {
			in := Input{Profile: profile(t, "restricted", func(p *profiles.Profile) { p.RootImages = m.root })}
			if m.images {
				in = withImages(in, &f)
			}
			r := harden(t, pod, in)
			got := "denied"
			if !r.Denied {
				out := apply(t, pod, r.Operations)
				if f := restrictedFailures(t, out); len(f) != 0 {
					t.Errorf("%s, %s: fails restricted: %v", a.name, m.name, f)
				}
				if got = archetypeStarts(t, a, out); got == "" {
					got = "ok"
					started[i]++
				}
			}
			if got != want[a.name][i] {
				t.Errorf("%s, %s: %s, want %s", a.name, m.name, got, want[a.name][i])
			}
			if strings.HasPrefix(got, "refused") && m.images && a.facts.Err == "" && !strings.Contains(strings.Join(r.Warnings, "\n"), "container app will not start") {
				t.Errorf("%s, %s: the kubelet refuses it and no warning predicted it: %q", a.name, m.name, r.Warnings)
			}
			row = append(row, got)
		}
		table.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	t.Logf("started per mode (%s): %v\n%s", "without facts, assign, warn, deny", started, table.String())
	for i := 2; i < len(modes); i++ {
		if started[i] > started[1] {
			t.Errorf("rootImages %s starts %d archetypes, assign %d: assign is not the default that starts the most", modes[i].name, started[i], started[1])
		}
	}
}
