package mutate

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"

	"github.com/pod-hardener/pod-hardener/internal/pss"
)

func TestControlRestrictedVolumes(t *testing.T) {
	nfs := `{"spec":{"volumes":[{"name":"cfg","configMap":{"name":"c"}},{"name":"share","nfs":{"server":"s","path":"/x"}},{"name":"plain"}],"containers":[{"name":"app"}]}}`
	ctlRun(t, []ctlCase{
		{
			name:  "allowed types, and a volume with no source (an emptyDir once defaulted): nothing",
			pod:   `{"spec":{"volumes":[{"name":"a","emptyDir":{}},{"name":"b","secret":{"secretName":"s"}},{"name":"c","persistentVolumeClaim":{"claimName":"c"}},{"name":"d","projected":{"sources":[]}},{"name":"e","csi":{"driver":"d"}},{"name":"f","ephemeral":{}},{"name":"g","downwardAPI":{}},{"name":"h","image":{"reference":"r"}},{"name":"plain"}],"containers":[{"name":"app"}]}}`,
			noOps: []string{"/spec/volumes/0", "/spec/volumes/8"},
			noPSS: "offline, a volume with no source is judged as an unknown type; the API server makes it an emptyDir first",
		},
		{
			name:      "nfs warn: kept, named",
			pod:       nfs,
			conflicts: []cf{{"restrictedVolumes", "pod", warnA}},
			warnings:  []string{"spec.volumes[share]=nfs kept but unsafe", `pod-hardener.io/exempt-controls: "restrictedVolumes"`},
		},
		{
			name:      "nfs enforce: no safe value, kept and said why",
			pod:       nfs,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"restrictedVolumes", "pod", warnA}},
			warnings:  []string{"spec.volumes[share]=nfs kept but unsafe", "no safe value"},
			want:      map[string]any{"spec.volumes.1.nfs.server": "s"},
		},
		{
			name:      "nfs deny: refused",
			pod:       nfs,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"restrictedVolumes", "pod", denyA}},
			denied:    true,
			message:   []string{"spec.volumes[share]=nfs"},
		},
		{
			name:  "baseline allows nfs",
			pod:   nfs,
			in:    Input{Profile: profile(t, "baseline", onConflict(denyA))},
			noOps: []string{"/spec/volumes"},
		},
	})
}

// TestVolumeSourcesMatchPSS holds volumeSources to the evaluator: for every
// volume source k8s.io/api knows, the engine reads it as forbidden exactly
// when PSS restricted refuses a pod with that volume, and as a hostPath
// exactly when baseline's hostPathVolumes check does. A source added to
// k8s.io/api shows up here.
func TestVolumeSourcesMatchPSS(t *testing.T) {
	vt := reflect.TypeOf(corev1.VolumeSource{})
	for i := 0; i < vt.NumField(); i++ {
		key, _, _ := strings.Cut(vt.Field(i).Tag.Get("json"), ",")
		raw := `{"spec":{"volumes":[{"name":"v","` + key + `":{}}],"containers":[{"name":"app"}]}}`
		var pod corev1.Pod
		if err := json.Unmarshal([]byte(raw), &pod); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if reflect.ValueOf(pod.Spec.Volumes[0].VolumeSource).Field(i).IsNil() {
			t.Fatalf("%s: not decoded into field %s", key, vt.Field(i).Name)
		}
		view, err := decodePod([]byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		got := view.Spec.Volumes[0].restricted()
		psaRefuses := !pss.Allows("restrictedVolumes", api.LevelRestricted, &pod.ObjectMeta, &pod.Spec)
		if (got != "") != psaRefuses {
			t.Errorf("volume source %s: engine reads %q, PSS restricted refuses it: %v", key, got, psaRefuses)
		}
		if got != "" && got != key {
			t.Errorf("volume source %s named %q", key, got)
		}
		hostPathRefused := !pss.Allows("hostPathVolumes", api.LevelBaseline, &pod.ObjectMeta, &pod.Spec)
		if (got == "hostPath") != hostPathRefused {
			t.Errorf("volume source %s: engine reads %q, PSS hostPathVolumes refuses it: %v", key, got, hostPathRefused)
		}
	}
}
