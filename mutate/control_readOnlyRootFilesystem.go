package mutate

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"path"
	"strings"

	"github.com/pod-hardener/pod-hardener/internal/jsonenc"
	"github.com/pod-hardener/pod-hardener/profiles"
	"k8s.io/apimachinery/pkg/api/resource"
	kjson "sigs.k8s.io/json"
)

/*
readOnlyRootFilesystem: the container cannot write its image, so an
attacker cannot drop tools or change binaries. Apps that must write get
emptyDir volumes at their writable paths: the profile's writablePaths
(restricted: /tmp), plus the pod annotation pod-hardener.io/writable-paths
and writable-paths.pod-hardener.io/<container>: at most MaxWritablePaths
distinct paths between them, or the pod is rejected.

Fields: containers[*].securityContext.readOnlyRootFilesystem,
containers[*].volumeMounts, spec.volumes.
Sets: true where unset; for each writable path a container does not mount
yet, a volumeMount of an emptyDir volume whose name derives from the path
(ph-<path>-<hash>), so a second pass finds it and adds nothing. A volume
of that name that is not such an emptyDir is the pod's own and is never
mounted for a writable path: the engine's takes the next free name.
Conflict: false. Enforce replaces it with true.
Ephemeral containers (UPDATE of pods/ephemeralcontainers) can only mount
volumes the pod already has, as pod volumes are immutable then.
*/

func init() {
	register(&control{
		name:      profiles.ReadOnlyRootFilesystem,
		linuxOnly: true,
		container: readOnlyRootFilesystem,
	})
}

func readOnlyRootFilesystem(h *hctx, t *target) {
	sc := t.c.SecurityContext
	switch {
	case sc != nil && isFalse(sc.ReadOnlyRootFilesystem):
		if !h.conflict(profiles.ReadOnlyRootFilesystem, t, "securityContext.readOnlyRootFilesystem", "false").enforce() {
			return // the root stays writable: no writable paths needed
		}
		set(h, t.sc(), "readOnlyRootFilesystem", &sc.ReadOnlyRootFilesystem, true, enforced)
	case sc == nil || sc.ReadOnlyRootFilesystem == nil:
		set(h, t.sc(), "readOnlyRootFilesystem", &t.securityContext().ReadOnlyRootFilesystem, true,
			change{control: profiles.ReadOnlyRootFilesystem, t: t, field: "readOnlyRootFilesystem=true"})
	}
	w := &h.paths
	var own []int
	if w.container != nil {
		own = w.container[t.name()]
	}
	if w.npod+len(own)+len(t.imagePaths) == 0 {
		return
	}
	// One pass over the container's mounts marks the paths it mounts
	// already, so the work is mounts + paths, not their product.
	clear(w.mounted)
	for _, m := range t.c.VolumeMounts {
		if i, ok := w.lookup(m.MountPath); ok {
			w.mounted[i] = true
		}
	}
	// An image's VOLUME below a mount of the pod's own is on that volume
	// already: an emptyDir there would hide what the pod keeps in it.
	for _, i := range t.imagePaths {
		if !w.mounted[i] && mountedBelow(t.c.VolumeMounts, w.list[i].path) {
			w.mounted[i] = true
		}
	}
	mountsExist := t.c.VolumeMounts != nil
	for i := 0; i < w.npod; i++ {
		h.mountWritable(t, i, mountsExist)
	}
	for _, i := range own {
		h.mountWritable(t, i, mountsExist)
	}
	for _, i := range t.imagePaths {
		if h.mountWritable(t, i, mountsExist) {
			h.imageVolumeMounted(t, w.list[i].path, w.list[i].volume)
		}
	}
}

// mountWritable mounts writable path i in the container unless it is a
// mount point there already, and reports whether it did.
func (h *hctx) mountWritable(t *target, i int, mountsExist bool) bool {
	if h.paths.mounted[i] {
		return false
	}
	p := &h.paths.list[i]
	if !h.ensureVolume(p) {
		h.problems = append(h.problems, fmt.Sprintf("%s: writable path %s not mounted: volumes cannot be added to a running pod", t.where(), p.path))
		return false
	}
	appendTo(h, t.obj, "volumeMounts", mountsExist, &t.c.VolumeMounts, volumeMountView{Name: p.volume, MountPath: p.path},
		volumeMount{Name: p.volume, MountPath: p.path},
		change{control: profiles.ReadOnlyRootFilesystem, t: t, field: p.change, at: &p.changeAt})
	// A path the image declares as well as the profile is mounted once.
	h.paths.mounted[i] = true
	return true
}

// mountedBelow reports whether one of the mounts is at p or an ancestor
// of it, however its path is written ("/data/" covers /data/db).
func mountedBelow(mounts []volumeMountView, p string) bool {
	for _, m := range mounts {
		mp := path.Clean(m.MountPath)
		if mp == p || mp == "/" || strings.HasPrefix(p, mp+"/") {
			return true
		}
	}
	return false
}

// writablePaths are a pod's distinct writable paths, each resolved to its
// volume once per pod, however many containers mount it.
type writablePaths struct {
	list []writablePath
	// index finds a path in a long list; a short one is scanned.
	index map[string]int
	// The first npod paths apply to every container: the profile's and
	// the pod annotation's. container lists those of one container's own
	// annotation.
	npod      int
	container map[string][]int
	// named maps each entry of the annotations, valid or not, to its
	// index in list (-1 for a bad one).
	named map[string]int
	// mounted marks the paths the container at hand mounts already.
	mounted    []bool
	mountedBuf [shortList]bool
}

type writablePath struct {
	path   string
	change string
	// volume is the name of the emptyDir behind the path, once resolved.
	volume   string
	resolved bool
	// changeAt indexes the path's entry in Result.Changes; -1 before one.
	changeAt int
}

const shortList = 8

func (w *writablePaths) lookup(p string) (int, bool) {
	if w.index != nil {
		i, ok := w.index[p]
		return i, ok
	}
	for i := range w.list {
		if w.list[i].path == p {
			return i, true
		}
	}
	return 0, false
}

// add returns the path's index, adding it if new.
func (w *writablePaths) add(p string) int {
	if i, ok := w.lookup(p); ok {
		return i
	}
	w.list = append(w.list, writablePath{path: p, change: "writable emptyDir " + p, changeAt: -1})
	i := len(w.list) - 1
	switch {
	case w.index != nil:
		w.index[p] = i
	case len(w.list) > shortList:
		w.index = make(map[string]int, 2*len(w.list))
		for j := range w.list {
			w.index[w.list[j].path] = j
		}
	}
	return i
}

// collectWritablePaths reads the profile's writable paths and the pod's
// annotations once. It reports false, having stopped reading, as soon as
// the annotations name more than MaxWritablePaths distinct paths (valid or
// not). An UPDATE of pods/ephemeralcontainers uses the profile's paths
// only: annotations may name paths whose volumes the running pod lacks.
func (h *hctx) collectWritablePaths() bool {
	w := &h.paths
	for _, p := range h.prof.WritablePaths {
		w.add(p)
	}
	if h.in.EphemeralOnly == nil {
		h.parsePaths(AnnotationWritablePaths, nil)
	}
	w.npod = len(w.list) // every path so far applies to every container
	if h.in.EphemeralOnly == nil && h.hasContainerPathAnnotations() {
		// seen[i] is the ordinal of the last container given path i, so a
		// path named twice for one container is mounted once.
		var seen []int
		// In spec order, so operations come out in a stable order.
		for n, c := range h.pod.Spec.allContainers() {
			if len(w.named) > MaxWritablePaths {
				break
			}
			if _, done := w.container[c.Name]; done {
				continue // a second container of that name (the API server refuses the pod)
			}
			h.parsePaths(AnnotationWritablePathPrefix+c.Name, func(i int) {
				if i < w.npod {
					return
				}
				for len(seen) <= i {
					seen = append(seen, -1)
				}
				if seen[i] == n {
					return
				}
				seen[i] = n
				if w.container == nil {
					w.container = map[string][]int{}
				}
				w.container[c.Name] = append(w.container[c.Name], i)
			})
		}
	}
	if len(w.named) > MaxWritablePaths {
		return false
	}
	h.collectImagePaths()
	if len(w.list) <= shortList {
		w.mounted = w.mountedBuf[:len(w.list)]
	} else {
		w.mounted = make([]bool, len(w.list))
	}
	return true
}

// ensureVolume makes sure the path's emptyDir volume is in the pod, adding
// it when needed, once per pod; it reports whether the volume is there.
// The volume's name derives from the path (volumeName). A volume of that
// name that is not the emptyDir this profile adds belongs to the pod's
// author (it may be a hostPath of /), so it is never mounted for a
// writable path: the next free name, ph-...-2, -3 and so on, is used
// instead, and a second pass finds the volume the first one added there.
func (h *hctx) ensureVolume(p *writablePath) bool {
	if p.resolved {
		return p.volume != ""
	}
	p.resolved = true
	base := volumeName(p.path)
	name := base
	for n := 2; ; n++ {
		i, ok := h.findVolume(name)
		if !ok {
			break
		}
		if h.ownVolume(&h.pod.Spec.Volumes[i]) {
			p.volume = name
			return true
		}
		name = base + "-" + itoa(n)
	}
	if h.in.EphemeralOnly != nil {
		return false
	}
	if name != base {
		h.problems = append(h.problems, fmt.Sprintf("writable path %s: volume %s is not an emptyDir this profile adds; using %s instead", p.path, base, name))
	}
	// Whether the input had the list, not whether an earlier call made
	// it: every new volume goes into the one new list.
	appendTo(h, h.spec, "volumes", h.volumesInInput, &h.pod.Spec.Volumes, volumeView{Name: name},
		volume{Name: name, EmptyDir: h.prof.EmptyDir}, change{}) // the mounts are the change record
	if h.volumeIndex != nil {
		h.volumeIndex[name] = len(h.pod.Spec.Volumes) - 1
	}
	p.volume = name
	return true
}

// findVolume returns the index of the pod's volume of that name.
func (h *hctx) findVolume(name string) (int, bool) {
	vs := h.pod.Spec.Volumes
	if h.volumeIndex == nil && len(vs) > shortList {
		h.volumeIndex = make(map[string]int, len(vs))
		for i := range vs {
			if _, dup := h.volumeIndex[vs[i].Name]; !dup {
				h.volumeIndex[vs[i].Name] = i
			}
		}
	}
	if h.volumeIndex != nil {
		i, ok := h.volumeIndex[name]
		return i, ok
	}
	for i := range vs {
		if vs[i].Name == name {
			return i, true
		}
	}
	return 0, false
}

// ownVolume reports whether a volume is the emptyDir the profile adds for
// writable paths: same medium, same size limit. The API server refuses a
// volume with two sources, so an emptyDir is the volume's only source.
func (h *hctx) ownVolume(v *volumeView) bool {
	if len(v.EmptyDir) == 0 {
		return false
	}
	var e struct {
		Medium    *string         `json:"medium"`
		SizeLimit json.RawMessage `json:"sizeLimit"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(v.EmptyDir, &e); err != nil {
		return false
	}
	want := h.prof.EmptyDir
	if e.Medium != nil && *e.Medium != want.Medium || e.Medium == nil && want.Medium != "" {
		return false
	}
	unset := len(e.SizeLimit) == 0 || string(e.SizeLimit) == "null"
	if want.SizeLimit == "" || unset {
		return want.SizeLimit == "" && unset
	}
	// Compared as quantities: the API server writes them back in canonical
	// form (1024Mi as 1Gi), and reinvocation must still find the volume.
	var got resource.Quantity
	if err := got.UnmarshalJSON(e.SizeLimit); err != nil {
		return false
	}
	w, err := resource.ParseQuantity(want.SizeLimit)
	return err == nil && got.Cmp(w) == 0
}

// volume and volumeMount are what the engine adds, as structs so the
// output keeps the conventional key order (name first).
type volume struct {
	Name     string            `json:"name"`
	EmptyDir profiles.EmptyDir `json:"emptyDir"`
}

type volumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
}

// appendJSON writes a volume without reflection (see Patch).
func (v volume) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = jsonenc.AppendString(b, v.Name)
	b = append(b, `,"emptyDir":{`...)
	sep := false
	if v.EmptyDir.Medium != "" {
		b = append(b, `"medium":`...)
		b = jsonenc.AppendString(b, v.EmptyDir.Medium)
		sep = true
	}
	if v.EmptyDir.SizeLimit != "" {
		if sep {
			b = append(b, ',')
		}
		b = append(b, `"sizeLimit":`...)
		b = jsonenc.AppendString(b, v.EmptyDir.SizeLimit)
	}
	return append(b, "}}"...)
}

func (m volumeMount) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = jsonenc.AppendString(b, m.Name)
	b = append(b, `,"mountPath":`...)
	b = jsonenc.AppendString(b, m.MountPath)
	return append(b, '}')
}

// volumeName derives a DNS-1123 label from a path: readable, and with a
// hash so /var/cache-x and /var/cache/x never share a volume.
func volumeName(p string) string {
	f := fnv.New32a()
	f.Write([]byte(p))
	var b strings.Builder
	dash := true
	for _, r := range strings.ToLower(p) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	slug := strings.Trim(b.String(), "-")
	if len(slug) > 40 {
		slug = strings.Trim(slug[len(slug)-40:], "-")
	}
	if slug == "" {
		return fmt.Sprintf("ph-%08x", f.Sum32())
	}
	return fmt.Sprintf("ph-%s-%08x", slug, f.Sum32())
}
