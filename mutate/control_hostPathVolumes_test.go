package mutate

import (
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestControlHostPathVolumes(t *testing.T) {
	hp := `{"spec":{"volumes":[{"name":"logs","hostPath":{"path":"/var/log"}}],"containers":[{"name":"app","volumeMounts":[{"name":"logs","mountPath":"/logs"}]}]}}`
	ctlRun(t, []ctlCase{
		{
			name:      "warn: kept, named once (restrictedVolumes leaves it to this control)",
			pod:       hp,
			conflicts: []cf{{"hostPathVolumes", "pod", warnA}},
			want:      map[string]any{"spec.volumes.0.hostPath.path": "/var/log"},
			warnings:  []string{"spec.volumes[logs]=hostPath kept but unsafe", `pod-hardener.io/exempt-controls: "hostPathVolumes"`},
		},
		{
			name:      "enforce: no safe value, kept and said why",
			pod:       hp,
			in:        restrictedIn(t, enforceA),
			conflicts: []cf{{"hostPathVolumes", "pod", warnA}},
			want:      map[string]any{"spec.volumes.0.hostPath.path": "/var/log"},
			warnings:  []string{"spec.volumes[logs]=hostPath kept but unsafe", "no safe value"},
			noOps:     []string{"/spec/volumes/0"},
		},
		{
			name:      "deny: refused",
			pod:       hp,
			in:        restrictedIn(t, denyA),
			conflicts: []cf{{"hostPathVolumes", "pod", denyA}},
			denied:    true,
			message:   []string{"spec.volumes[logs]=hostPath", `pod-hardener.io/exempt-controls: "hostPathVolumes"`},
		},
		{
			name:      "baseline owns it",
			pod:       hp,
			in:        Input{Profile: profile(t, "baseline", onConflict(denyA))},
			conflicts: []cf{{"hostPathVolumes", "pod", denyA}},
			denied:    true,
		},
		{
			name:      "exempted: restrictedVolumes still names it, as restricted still fails",
			pod:       `{"metadata":{"annotations":{"pod-hardener.io/exempt-controls":"hostPathVolumes"}},"spec":{"volumes":[{"name":"logs","hostPath":{"path":"/var/log"}}],"containers":[{"name":"app"}]}}`,
			in:        Input{Profile: profile(t, "restricted"), Auth: authorized},
			conflicts: []cf{{"restrictedVolumes", "pod", warnA}},
			exempted:  []string{"hostPathVolumes@pod"},
		},
		{
			name:      "off: restrictedVolumes names it",
			pod:       hp,
			in:        restrictedIn(t, warnA, withControl(profiles.HostPathVolumes, profiles.ModeOff)),
			conflicts: []cf{{"restrictedVolumes", "pod", warnA}},
			warnings:  []string{"spec.volumes[logs]=hostPath kept but unsafe (profile \"restricted\", control restrictedVolumes"},
		},
	})
}
