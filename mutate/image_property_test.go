package mutate

import (
	"encoding/json"
	"math/rand/v2"
	"path"
	"strconv"
	"strings"
	"testing"
)

// The image facts of the property test: every generated container runs
// propImage, whose facts vary by pod.
const (
	propImage     = "registry.example/app:1.2.3"
	propFactsSeed = 0xfac75
)

// propImages draws the facts of propImage: a failed lookup, or a USER of
// each kind with some exposed ports and VOLUMEs.
func propImages(r *rand.Rand) ImageSet {
	f := &ImageFacts{Ref: propImage, Digest: "sha256:" + strings.Repeat("b", 64)}
	set := ImageSet{propImage: f}
	if r.IntN(10) == 0 {
		f.Err = "GET https://registry.example/v2/app/manifests/1.2.3: 503 Service Unavailable"
		return set
	}
	switch r.IntN(8) {
	case 0:
		f.User = ""
	case 1:
		f.User, f.UID, f.GID = "0", i64(0), i64(0)
	case 2:
		f.User, f.UID, f.GID = "root:root", i64(0), i64(0)
	case 3:
		f.User, f.UID = "1000", i64(1000)
	case 4:
		f.User, f.UID, f.GID = "1000:1000", i64(1000), i64(1000)
	case 5:
		f.User, f.UID, f.GID = "node", i64(1000), i64(1001)
	case 6:
		f.User, f.UserErr = "node", "the image has no /etc/passwd"
	case 7:
		f.User, f.UID, f.GID = "admin", i64(0), i64(0)
	}
	for _, p := range []int32{80, 443, 8080, 22} {
		if r.IntN(10) < 3 {
			f.ExposedPorts = append(f.ExposedPorts, p)
		}
	}
	// /tmp, /data, /var/run and /etc/cfg are where the generator mounts
	// volumes of the pod's own.
	for _, v := range []string{"/data", "/var/lib/app", "/tmp", "/var/run/", "/etc/cfg/sub", "relative"} {
		if r.IntN(10) < 3 {
			f.Volumes = append(f.Volumes, v)
		}
	}
	return set
}

// propImageUID is the uid the image's USER stands for, read here apart
// from the engine: nil when it is a name that was not resolved.
func propImageUID(f *ImageFacts) *int64 {
	u, _, _ := strings.Cut(f.User, ":")
	switch u {
	case "", "root":
		return i64(0)
	}
	if n, err := strconv.ParseInt(u, 10, 64); err == nil {
		return i64(n)
	}
	return f.UID
}

type propSCOut struct {
	RunAsNonRoot           *bool  `json:"runAsNonRoot"`
	RunAsUser              *int64 `json:"runAsUser"`
	ReadOnlyRootFilesystem *bool  `json:"readOnlyRootFilesystem"`
	Sysctls                []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"sysctls"`
}

type propContainerOut struct {
	Name            string     `json:"name"`
	Image           string     `json:"image"`
	SecurityContext *propSCOut `json:"securityContext"`
	Ports           []struct {
		ContainerPort any `json:"containerPort"`
	} `json:"ports"`
	VolumeMounts []struct {
		MountPath string `json:"mountPath"`
	} `json:"volumeMounts"`
}

// propCheckImages: on the hardened pod, with its image facts,
//   - a container the kubelet will refuse for its image (runAsNonRoot
//     true, no runAsUser, an image that is root or whose user is not
//     known) is predicted in a warning;
//   - a container that runs as a known non-root uid and listens below 1024
//     can bind: the pod's unprivileged-port sysctl is at or below the port
//     (unless the pod is on the host network);
//   - each VOLUME of the image is writable in a container with a read-only
//     root: mounted at its path or above.
func propCheckImages(t *testing.T, out []byte, r *Result, images ImageSet) {
	t.Helper()
	var pod struct {
		Spec struct {
			HostNetwork     *bool              `json:"hostNetwork"`
			SecurityContext *propSCOut         `json:"securityContext"`
			Init            []propContainerOut `json:"initContainers"`
			Containers      []propContainerOut `json:"containers"`
			Ephemeral       []propContainerOut `json:"ephemeralContainers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(out, &pod); err != nil {
		t.Fatal(err)
	}
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &propSCOut{}
	}
	portStart := -1
	for _, s := range psc.Sysctls {
		if s.Name == SysctlUnprivilegedPortStart {
			portStart, _ = strconv.Atoi(s.Value)
		}
	}
	warnings := strings.Join(r.Warnings, "\n")
	for _, l := range [][]propContainerOut{pod.Spec.Init, pod.Spec.Containers, pod.Spec.Ephemeral} {
		for _, c := range l {
			f := images[c.Image]
			if f == nil || f.Err != "" {
				continue
			}
			sc := c.SecurityContext
			if sc == nil {
				sc = &propSCOut{}
			}
			nonRoot := sc.RunAsNonRoot
			if nonRoot == nil {
				nonRoot = psc.RunAsNonRoot
			}
			uid := sc.RunAsUser
			if uid == nil {
				uid = psc.RunAsUser
			}
			// runAsUser: 0 written in the pod is a conflict of runAsNonRoot,
			// warned about as such.
			fromImage := uid == nil
			if fromImage {
				uid = propImageUID(f)
			}
			if fromImage && isTrue(nonRoot) && (uid == nil || *uid == 0) && !strings.Contains(warnings, "container "+c.Name+" will not start") {
				t.Errorf("container %s (image user %q) will be refused by the kubelet, and no warning says so:\n%s", c.Name, f.User, warnings)
			}
			if uid != nil && *uid != 0 && !isTrue(pod.Spec.HostNetwork) {
				low := 0
				for _, p := range f.ExposedPorts {
					if p < 1024 && (low == 0 || int(p) < low) {
						low = int(p)
					}
				}
				for _, p := range c.Ports {
					if n, ok := p.ContainerPort.(float64); ok && n > 0 && n < 1024 && (low == 0 || int(n) < low) {
						low = int(n)
					}
				}
				if low > 0 && (portStart < 0 || portStart > low) {
					t.Errorf("container %s runs as uid %d and listens on port %d, yet %s is %d", c.Name, *uid, low, SysctlUnprivilegedPortStart, portStart)
				}
			}
			if !isTrue(sc.ReadOnlyRootFilesystem) {
				continue
			}
			for _, v := range f.Volumes {
				if !strings.HasPrefix(v, "/") {
					continue
				}
				v = path.Clean(v)
				covered := false
				for _, m := range c.VolumeMounts {
					mp := path.Clean(m.MountPath)
					covered = covered || mp == v || strings.HasPrefix(v, mp+"/")
				}
				if !covered {
					t.Errorf("container %s has a read-only root, and its image's VOLUME %s is not writable (mounts %v)", c.Name, v, c.VolumeMounts)
				}
			}
		}
	}
}
