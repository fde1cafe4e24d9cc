package pss

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
)

// A volume with no source is an emptyDir by the time admission sees it, so
// the offline judge reads it so too; a hostPath volume still fails.
func TestDecodeDefaultsVolumesLikeTheAPIServer(t *testing.T) {
	const restrictedPod = `{"spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},` +
		`"containers":[{"name":"c","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}],"volumes":[{"name":"plain"},%s]}}`
	decoders := map[string]func([]byte) (*corev1.Pod, error){
		"DecodePod": DecodePod,
		"DecodePodLenient": func(b []byte) (*corev1.Pod, error) {
			p, _, err := DecodePodLenient(b)
			return p, err
		},
	}
	for _, c := range []struct {
		extra string
		fails bool
	}{
		{`{"name":"s","secret":{"secretName":"x"}}`, false},
		{`{"name":"h","hostPath":{"path":"/"}}`, true},
	} {
		raw := []byte(fmt.Sprintf(restrictedPod, c.extra))
		for name, decode := range decoders {
			p, err := decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if p.Spec.Volumes[0].EmptyDir == nil {
				t.Errorf("%s: volume with no source not defaulted to emptyDir", name)
			}
			if f := Evaluate(p, api.LevelRestricted); (len(f) > 0) != c.fails {
				t.Errorf("%s %s: failures %v, want failing %v", name, c.extra, f, c.fails)
			}
		}
	}
}
