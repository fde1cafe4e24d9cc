package mutate

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/pod-hardener/pod-hardener/profiles"
)

/*
Image-aware hardening: what the facts of a container's image (Input.Images,
looked up by the caller) change, so that the hardened container still
starts. Nothing here runs without facts for the container's image, nor on
a Windows pod. Each decision is a warning and an entry of the audit
annotation pod-hardener.io/image-decisions (Result.ImageDecisions).

Under the runAsNonRoot control (on, not exempted, and runAsNonRoot true
for the container after hardening, with no runAsUser applying to it):
  - a numeric non-root USER needs nothing;
  - a named USER the kubelet cannot check: its uid and gid become the
    container's runAsUser and runAsGroup; unresolved, a warning says the
    container will not start;
  - a root image (no USER, 0, root, or a name that is uid 0): the
    profile's rootImages, assign (container runAsUser/runAsGroup, pod
    fsGroup where unset), warn or deny;
  - a container that runs as non-root and listens below 1024 (the image's
    exposed ports, the spec's containerPorts): the pod sysctl
    net.ipv4.ip_unprivileged_port_start, at the lowest such port of the
    pod, unless the pod sets it or uses the host network.
Under readOnlyRootFilesystem (in force for the container): the image's
VOLUMEs become writable paths of that container, mounted by that control
(collectImagePaths), unless a mount of the pod's is at the path or above it.
Facts that could not be read (Err) only give a warning.
*/

// SysctlUnprivilegedPortStart is the network-namespace sysctl that lets
// non-root processes bind ports from its value up.
const SysctlUnprivilegedPortStart = "net.ipv4.ip_unprivileged_port_start"

// rootImageIDs are the runAsUser, runAsGroup and fsGroup that rootImages:
// assign gives: the profile's, else the "nonroot" user of distroless
// images (65532), the group defaulting to the user and the fsGroup to the
// group.
func rootImageIDs(p *profiles.Profile) (uid, gid, fsGroup int64) {
	uid = defaultNonRootUID
	if p.RunAsUser != nil {
		uid = *p.RunAsUser
	}
	gid = uid
	if p.RunAsGroup != nil {
		gid = *p.RunAsGroup
	}
	fsGroup = gid
	if p.FSGroup != nil {
		fsGroup = *p.FSGroup
	}
	return uid, gid, fsGroup
}

// imageUser is what an image's USER means for the kubelet.
type imageUser int

const (
	userNumeric imageUser = iota // a non-zero uid: the kubelet checks it
	userNamed                    // a name: the kubelet cannot check it
	userRoot                     // no USER, 0, root, or a name that is uid 0
)

// userOf classifies the image's USER (user[:group]).
func userOf(f *ImageFacts) imageUser {
	u, _, _ := strings.Cut(f.User, ":")
	if u == "" || u == "root" {
		return userRoot
	}
	if n, err := strconv.ParseUint(u, 10, 32); err == nil {
		if n == 0 {
			return userRoot
		}
		return userNumeric
	}
	if f.UID != nil && *f.UID == 0 {
		return userRoot
	}
	return userNamed
}

// facts returns the facts of the container's image, nil when there are
// none to act on.
func (h *hctx) facts(t *target) *ImageFacts {
	if h.in.Images == nil || h.windows || t.c.Image == "" {
		return nil
	}
	return h.in.Images[string(t.c.Image)]
}

// imageDecision records a decision: its audit entry and its warning.
func (h *hctx) imageDecision(what string, t *target, format string, args ...any) {
	where := "pod"
	if t != nil {
		where = t.name()
	}
	h.res.ImageDecisions = append(h.res.ImageDecisions, what+"@"+where)
	h.warn(format, args...)
}

// done says what the pass did, or in report mode what it would do.
func (h *hctx) done(verb string) string {
	if h.in.Report {
		return "would be " + verb
	}
	return verb
}

// willNotStart opens a prediction: hardened, the container cannot start.
func (h *hctx) willNotStart(t *target) string {
	if h.in.Report {
		return "container " + t.name() + " would not start once hardened"
	}
	return "container " + t.name() + " will not start"
}

// maxImagePathNotes caps the VOLUMEs one container's warning names.
const maxImagePathNotes = 3

// maxImageVolumes caps the VOLUMEs read per container: an image config
// may list any number, and at most MaxWritablePaths are mounted.
const maxImageVolumes = 4 * MaxWritablePaths

// collectImagePaths makes each image VOLUME a writable path of the
// containers running that image, within MaxWritablePaths paths for the
// pod. An UPDATE of pods/ephemeralcontainers cannot add volumes, so it
// gets none.
func (h *hctx) collectImagePaths() {
	if h.in.Images == nil || h.windows || h.in.EphemeralOnly != nil || !h.prof.Enabled(profiles.ReadOnlyRootFilesystem) {
		return
	}
	w := &h.paths
	for _, t := range h.targets {
		f := h.facts(t)
		if f == nil || f.Err != "" || len(f.Volumes) == 0 || h.ex.exempt(profiles.ReadOnlyRootFilesystem, t) {
			continue
		}
		var bad []string
		nbad, over := 0, 0
		for n, v := range f.Volumes {
			if n == maxImageVolumes {
				// Past the pod's budget anyway: not worth reading.
				over += len(f.Volumes) - n
				break
			}
			p := v
			if strings.HasPrefix(p, "/") {
				p = path.Clean(p) // the runtime mounts "/data/" at /data
			}
			if err := profiles.ValidateWritablePath(p); err != nil {
				if nbad++; len(bad) < maxImagePathNotes {
					bad = append(bad, err.Error())
				}
				continue
			}
			i, ok := w.lookup(p)
			if !ok {
				if len(w.list) >= MaxWritablePaths {
					over++
					continue
				}
				i = w.add(p)
			}
			if !slices.Contains(t.imagePaths, i) {
				t.imagePaths = append(t.imagePaths, i)
			}
		}
		if nbad > 0 {
			h.problems = append(h.problems, fmt.Sprintf("%s: %d VOLUME(s) of image %q not mounted: %s", t.where(), nbad, t.c.Image, strings.Join(bad, "; ")))
		}
		if over > 0 {
			h.problems = append(h.problems, fmt.Sprintf("%s: %d VOLUME(s) of image %q not mounted: the pod has %d writable paths, the most it may have; they stay read-only",
				t.where(), over, t.c.Image, MaxWritablePaths))
		}
	}
}

// imageVolumeMounted records a VOLUME that readOnlyRootFilesystem mounted.
func (h *hctx) imageVolumeMounted(t *target, p, volume string) {
	h.imageDecision("volume="+p, t, "%s: writable emptyDir %s %s at %s, a VOLUME of image %q, since the root filesystem is read-only",
		t.where(), volume, h.done("mounted"), p, t.c.Image)
}

// imageDecisions makes the decisions on users and ports, after every
// control has run: they depend on what runAsNonRoot, runAsUser and
// hostNamespaces left.
func (h *hctx) imageDecisions() {
	if h.in.Images == nil || h.windows {
		return
	}
	nonRoot := h.prof.Enabled(profiles.RunAsNonRoot) && !h.ex.exempt(profiles.RunAsNonRoot, nil)
	anyOn := nonRoot || h.prof.Enabled(profiles.ReadOnlyRootFilesystem)
	var low int32
	var lowWho []string
	assigned := false
	for _, t := range h.targets {
		f := h.facts(t)
		if f == nil {
			continue
		}
		if f.Err != "" {
			if anyOn {
				h.imageDecision("lookup-failed", t, "%s: image %q could not be looked up (%s): %s without image facts",
					t.where(), t.c.Image, f.Err, h.done("hardened"))
			}
			continue
		}
		if !nonRoot {
			continue
		}
		runsNonRoot, assign := h.decideUser(t, f)
		assigned = assigned || assign
		if !runsNonRoot {
			continue
		}
		if p := lowestLowPort(t, f); p > 0 {
			if low == 0 || p < low {
				low = p
			}
			lowWho = append(lowWho, t.where())
		}
	}
	if h.in.EphemeralOnly != nil {
		return // pod-level fields are immutable then
	}
	if assigned {
		h.assignFSGroup()
	}
	if low > 0 {
		h.unprivilegedPorts(low, lowWho)
	}
}

// decideUser decides a container's user from its image's USER. It reports
// whether the container will run as non-root, and whether rootImages:
// assign gave it the profile's IDs.
func (h *hctx) decideUser(t *target, f *ImageFacts) (runsNonRoot, assigned bool) {
	psc := h.pod.Spec.SecurityContext
	var cUID, pUID *int64
	var cNR, pNR *bool
	if sc := t.c.SecurityContext; sc != nil {
		cUID, cNR = sc.RunAsUser, sc.RunAsNonRoot
	}
	if psc != nil {
		pUID, pNR = psc.RunAsUser, psc.RunAsNonRoot
	}
	if uid := effectiveUID(cUID, pUID); uid != nil {
		return *uid != 0, false // the runtime runs it as runAsUser, whatever the image says
	}
	inForce := isTrue(cNR) || cNR == nil && isTrue(pNR)
	switch userOf(f) {
	case userNumeric:
		return true, false
	case userNamed:
		if !inForce {
			return true, false
		}
		if f.UID == nil {
			why := f.UserErr
			if why == "" {
				why = "no reason given"
			}
			h.imageDecision("user-unresolved", t, "%s: image %q has the non-numeric user %q, which could not be resolved to a uid (%s); set runAsUser",
				h.willNotStart(t), t.c.Image, f.User, why)
			return false, false
		}
		ids := h.setIDs(t, *f.UID, f.GID, "from the image")
		h.imageDecision("user="+ids, t, "%s: image %q runs as the named user %q: %s %s, so the kubelet can check it is not root",
			t.where(), t.c.Image, f.User, idsText(ids), h.done("set"))
		return true, false
	}
	if !inForce {
		return false, false
	}
	switch h.prof.RootImages {
	case profiles.RootImagesWarn:
		h.imageDecision("root-warn", t, "%s: image %q runs as root and runAsNonRoot is true (profile %q, rootImages: warn); "+
			"set securityContext.runAsUser to a non-zero uid the image can run as, or use an image with a non-root USER",
			h.willNotStart(t), t.c.Image, h.prof.Name)
		return false, false
	case profiles.RootImagesDeny:
		h.res.ImageDecisions = append(h.res.ImageDecisions, "root-deny@"+t.name())
		h.imageDenied = append(h.imageDenied, fmt.Sprintf("container %s: image %q runs as root, which runAsNonRoot refuses (profile %q, rootImages: deny); "+
			"set securityContext.runAsUser to a non-zero uid the image can run as, or use an image with a non-root USER", t.name(), t.c.Image, h.prof.Name))
		return false, false
	}
	uid, gid, _ := rootImageIDs(h.prof)
	ids := h.setIDs(t, uid, &gid, "for a root image")
	// Nothing in an image's config says where the program writes or
	// whether it changes the owner of its files, and a program that ran as
	// root may do either: say what to do if it fails.
	h.imageDecision("root-assign="+ids, t, "%s: image %q runs as root, which runAsNonRoot refuses: %s %s (profile %q, rootImages: assign); "+
		"if it then fails writing outside /tmp and its VOLUMEs, name those paths in %s; if it must own or chmod its files, it needs an image with a non-root USER",
		t.where(), t.c.Image, idsText(ids), h.done("set"), h.prof.Name, AnnotationWritablePaths)
	return true, true
}

// setIDs sets the container's runAsUser, and its runAsGroup unless gid is
// unknown or the container or the pod sets one; why says where the ids
// come from, in the change summary. It returns them as uid[:gid], the
// form of the audit entry.
func (h *hctx) setIDs(t *target, uid int64, gid *int64, why string) string {
	sc := t.securityContext()
	set(h, t.sc(), "runAsUser", &sc.RunAsUser, uid, change{control: profiles.RunAsNonRoot, t: t, field: "runAsUser " + why})
	ids := strconv.FormatInt(uid, 10)
	psc := h.pod.Spec.SecurityContext
	if gid == nil || sc.RunAsGroup != nil || psc != nil && psc.RunAsGroup != nil {
		return ids
	}
	set(h, t.sc(), "runAsGroup", &sc.RunAsGroup, *gid, change{control: profiles.RunAsNonRoot, t: t, field: "runAsGroup " + why})
	return ids + ":" + strconv.FormatInt(*gid, 10)
}

func idsText(ids string) string {
	u, g, ok := strings.Cut(ids, ":")
	if !ok {
		return "runAsUser=" + u
	}
	return "runAsUser=" + u + " and runAsGroup=" + g
}

// assignFSGroup gives the pod the fsGroup of rootImages: assign where it
// has none, so its volumes are writable by the group assigned.
func (h *hctx) assignFSGroup() {
	sc := h.podSecurityContext()
	if sc.FSGroup != nil {
		return
	}
	_, _, fs := rootImageIDs(h.prof)
	set(h, h.podSC, "fsGroup", &sc.FSGroup, fs, change{control: profiles.RunAsNonRoot, field: "securityContext.fsGroup for root images"})
	h.imageDecision("fsGroup="+strconv.FormatInt(fs, 10), nil, "pod: fsGroup=%d %s, so the volumes stay writable for the user given to root images",
		fs, h.done("set"))
}

// lowestLowPort is the lowest port below 1024 the container listens on,
// by its image's exposed ports and its spec's containerPorts; 0 for none.
func lowestLowPort(t *target, f *ImageFacts) int32 {
	var low int32
	consider := func(p int32) {
		if p > 0 && p < 1024 && (low == 0 || p < low) {
			low = p
		}
	}
	for _, p := range f.ExposedPorts {
		consider(p)
	}
	for _, p := range t.c.Ports {
		consider(int32(p.ContainerPort))
	}
	return low
}

// unprivilegedPorts lets the pod's non-root containers bind from port
// low: a sysctl of the pod's network namespace, shared by its containers.
func (h *hctx) unprivilegedPorts(low int32, who []string) {
	sc := h.pod.Spec.SecurityContext
	if sc != nil {
		for _, s := range sc.Sysctls {
			if s.Name == SysctlUnprivilegedPortStart {
				return // the pod's own value stands
			}
		}
	}
	names := strings.Join(who[:min(len(who), MaxNamed)], ", ")
	if len(who) > MaxNamed {
		names += " and " + itoa(len(who)-MaxNamed) + " more"
	}
	if isTrue(h.pod.Spec.HostNetwork) {
		h.problems = append(h.problems, fmt.Sprintf("%s run as non-root and listen on port %d, on the host network: "+
			"they can bind it only if the node's %s allows it", names, low, SysctlUnprivilegedPortStart))
		return
	}
	v := strconv.Itoa(int(low))
	appendTo(h, h.podSC, "sysctls", sc != nil && sc.Sysctls != nil, &h.podSecurityContext().Sysctls, sysctlView{Name: SysctlUnprivilegedPortStart},
		map[string]any{"name": SysctlUnprivilegedPortStart, "value": v}, change{control: profiles.RunAsNonRoot, field: "sysctl " + SysctlUnprivilegedPortStart})
	h.imageDecision("unprivileged-port-start="+v, nil, "pod: sysctl %s=%s %s, so %s, running as non-root, can bind port %d",
		SysctlUnprivilegedPortStart, v, h.done("set"), names, low)
}
