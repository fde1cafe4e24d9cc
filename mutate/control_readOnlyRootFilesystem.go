package mutate

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/pod-hardener/pod-hardener/internal/jsonenc"
	"github.com/pod-hardener/pod-hardener/profiles"
)

/*
readOnlyRootFilesystem: the container cannot write its image, so an
attacker cannot drop tools or change binaries. Apps that must write get
emptyDir volumes at their writable paths: the profile's writablePaths
(restricted: /tmp), plus the pod annotation pod-hardener.io/writable-paths
and writable-paths.pod-hardener.io/<container>.

Fields: containers[*].securityContext.readOnlyRootFilesystem,
containers[*].volumeMounts, spec.volumes.
Sets: true where unset; for each writable path a container does not mount
yet, a volumeMount of an emptyDir volume whose name derives from the path
(ph-<path>-<hash>), so a second pass finds it and adds nothing.
Conflict: false. Enforce replaces it with true.
Ephemeral containers (UPDATE of pods/ephemeralcontainers) can only mount
volumes the pod already has, as pod volumes are immutable then.
*/

func init() {
	register(&control{
		name:      profiles.ReadOnlyRootFilesystem,
		level:     levelContainer,
		linuxOnly: true,
		container: readOnlyRootFilesystem,
	})
}

func readOnlyRootFilesystem(h *hctx, t *target) {
	sc := t.c.SecurityContext
	switch {
	case sc != nil && isFalse(sc.ReadOnlyRootFilesystem):
		if h.conflict(profiles.ReadOnlyRootFilesystem, t, "securityContext.readOnlyRootFilesystem", "false") != profiles.ActionEnforce {
			return // the root stays writable: no writable paths needed
		}
		t.sc().replace("readOnlyRootFilesystem", true)
		*sc.ReadOnlyRootFilesystem = true
	case sc == nil || sc.ReadOnlyRootFilesystem == nil:
		t.sc().set("readOnlyRootFilesystem", true)
		t.securityContext().ReadOnlyRootFilesystem = boolp(true)
		h.changed(profiles.ReadOnlyRootFilesystem, t, "readOnlyRootFilesystem=true")
	}
	paths := h.podPaths
	if h.in.EphemeralOnly == nil {
		if !h.containerPathAnnotations {
			// No pod annotation names a container's writable paths: skip
			// building the key for each container.
		} else if extra := parsePaths(h.pod, AnnotationWritablePathPrefix+t.name(), &h.problems); len(extra) > 0 {
			paths = append(paths[:len(paths):len(paths)], extra...)
		}
	} else {
		paths = h.in.Profile.WritablePaths
	}
	mountsExist := t.c.VolumeMounts != nil
	for i, p := range paths {
		if mounted(t.c.VolumeMounts, p) || slices.Contains(paths[:i], p) {
			continue
		}
		name, change := h.volumeName(p)
		if !h.ensureVolume(name) {
			h.problems = append(h.problems, fmt.Sprintf("%s: writable path %s not mounted: volumes cannot be added to a running pod", t.where(), p))
			continue
		}
		t.obj.append("volumeMounts", mountsExist, volumeMount{Name: name, MountPath: p})
		t.c.VolumeMounts = append(t.c.VolumeMounts, volumeMountView{Name: name, MountPath: p})
		h.changed(profiles.ReadOnlyRootFilesystem, t, change)
	}
}

// ensureVolume adds the emptyDir volume unless the pod has it; it reports
// whether the volume is (now) there.
func (h *hctx) ensureVolume(name string) bool {
	for _, v := range h.pod.Spec.Volumes {
		if v.Name == name {
			return true
		}
	}
	if h.in.EphemeralOnly != nil {
		return false
	}
	// Whether the input had the list, not whether an earlier call made
	// it: every new volume goes into the one new list.
	h.spec.append("volumes", h.volumesInInput, volume{Name: name, EmptyDir: h.prof.EmptyDir})
	h.pod.Spec.Volumes = append(h.pod.Spec.Volumes, volumeView{Name: name})
	return true
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

// mounted reports whether a path is a mount point already. A linear scan:
// containers have a handful of mounts.
func mounted(ms []volumeMountView, p string) bool {
	for _, m := range ms {
		if m.MountPath == p {
			return true
		}
	}
	return false
}

// volumeName is volumeName(p) and the change it makes, computed once per
// path and pod: every container mounts the same few paths.
func (h *hctx) volumeName(p string) (name, change string) {
	for _, n := range h.volumeNames {
		if n[0] == p {
			return n[1], n[2]
		}
	}
	n := [3]string{p, volumeName(p), "writable emptyDir " + p}
	h.volumeNames = append(h.volumeNames, n)
	return n[1], n[2]
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
