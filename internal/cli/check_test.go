package cli

import (
	"strings"
	"testing"
)

// `check` judges a volume with no source as the emptyDir the API server
// makes of it before admission: the pod is restricted after hardening, as
// it would be in a cluster, not baseline for an "unknown" volume type.
func TestCheckDefaultsVolumesLikeTheAPIServer(t *testing.T) {
	const pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  volumes:\n  - name: scratch\n  containers:\n  - name: a\n    image: x\n    volumeMounts:\n    - {name: scratch, mountPath: /s}\n"
	out, errOut, code := runCLI(t, pod, "check", "-f", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	fields := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1])
	if len(fields) != 5 || fields[4] != "restricted" {
		t.Errorf("check: %q, want the pod restricted after hardening and nothing still failing:\n%s", fields, out)
	}
	if strings.Contains(out, "unknown") {
		t.Errorf("a volume with no source judged as an unknown type:\n%s", out)
	}
}

// `pod-hardener profiles` lists every control, the new ones included, and
// the level each profile is judged at.
func TestProfilesListsEveryControlAndLevel(t *testing.T) {
	out, errOut, code := runCLI(t, "", "profiles")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	sections := map[string]string{}
	for _, s := range strings.Split(out, "\n\n") {
		name, _, _ := strings.Cut(s, ":")
		sections[name] = strings.Join(strings.Fields(s), " ")
	}
	for name, want := range map[string][]string{
		"restricted": {"judged at: Pod Security Standards restricted", "appArmorProfile default", "restrictedVolumes default", "windowsHostProcess default", "hostProbesAndHostLifecycle default"},
		"baseline":   {"judged at: Pod Security Standards baseline", "hostPathVolumes default", "restrictedVolumes off", "sysctls default"},
		"privileged": {"judged at: Pod Security Standards privileged", "procMount off"},
	} {
		for _, w := range want {
			if !strings.Contains(sections[name], w) {
				t.Errorf("profile %s lacks %q:\n%s", name, w, out)
			}
		}
	}
}
