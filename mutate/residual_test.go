package mutate

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/internal/pss"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// TestEveryCheckHasAnOwner: every check of the official evaluator has
// exactly one entry in checkOwners, naming a registered control, and the
// entry's level is the check's.
func TestEveryCheckHasAnOwner(t *testing.T) {
	ids := pss.CheckIDs()
	seen := map[string]bool{}
	for _, o := range checkOwners {
		if seen[o.check] {
			t.Errorf("check %s owned twice", o.check)
		}
		seen[o.check] = true
		lv, ok := ids[o.check]
		if !ok {
			t.Errorf("checkOwners names %s, which the evaluator does not have", o.check)
			continue
		}
		if o.restrictedOnly != (lv == "restricted") {
			t.Errorf("check %s: restrictedOnly %v, level %s", o.check, o.restrictedOnly, lv)
		}
		if registry[o.control] == nil {
			t.Errorf("check %s owned by %q, not a registered control", o.check, o.control)
		}
	}
	for id := range ids {
		if !seen[id] {
			t.Errorf("check %s has no owning control", id)
		}
	}
}

// finding6 holds a hostPath volume, a hostPort and AppArmor Unconfined.
const finding6 = `{"metadata":{"name":"p"},"spec":{"volumes":[{"name":"h","hostPath":{"path":"/"}}],"securityContext":{"appArmorProfile":{"type":"Unconfined"}},"containers":[{"name":"app","ports":[{"containerPort":80,"hostPort":80}],"volumeMounts":[{"name":"h","mountPath":"/host"}]}]}}`

func TestResidual(t *testing.T) {
	cfg := profiles.Default()
	facts := profiles.Facts{Namespace: "apps", NamespaceKnown: true}
	review := func(t *testing.T, raw string, prof string, mutateProfile func(*profiles.Profile)) *Result {
		t.Helper()
		p := profile(t, prof)
		if mutateProfile != nil {
			mutateProfile(p)
		}
		pod, err := decodePod([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		r, err := hardenPod(context.Background(), &pod.podView, Input{Profile: p})
		if err != nil {
			t.Fatal(err)
		}
		if err := Residual([]byte(raw), r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	t.Run("kept conflicts: each failing check named with why", func(t *testing.T) {
		r := review(t, finding6, "restricted", nil)
		if !r.MayFail {
			t.Fatal("MayFail = false with conflicts kept")
		}
		got := append([]string(nil), r.Failures...)
		sort.Strings(got)
		want := []string{"appArmorProfile", "hostPathVolumes", "hostPorts", "restrictedVolumes"}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("Failures = %q, want %q", got, want)
		}
		ctlWarnings(t, r, []string{
			"still fails Pod Security Standards restricted check hostPorts after hardening",
			"control hostPorts kept ports[0].hostPort=80 (its conflicts are warned, not fixed)",
			"check restrictedVolumes after hardening",
			"check restrictedVolumes after hardening (restricted volume types (volume \"h\" uses restricted volume type \"hostPath\")): control hostPathVolumes kept spec.volumes[h]=hostPath",
		}, nil)
	})
	t.Run("enforce fixes what has a safe value; the volume is named with its reason", func(t *testing.T) {
		r := review(t, finding6, "restricted", func(p *profiles.Profile) { p.OnConflict = profiles.ActionEnforce })
		got := append([]string(nil), r.Failures...)
		sort.Strings(got)
		if strings.Join(got, ",") != "hostPathVolumes,restrictedVolumes" {
			t.Errorf("Failures = %q", got)
		}
		ctlWarnings(t, r, []string{"check hostPathVolumes after hardening", "no safe value: removing the volume"}, nil)
	})
	t.Run("control off: said so", func(t *testing.T) {
		r := review(t, `{"spec":{"containers":[{"name":"app"}]}}`, "restricted", func(p *profiles.Profile) { p.Controls[profiles.Capabilities] = profiles.ModeOff })
		if strings.Join(r.Failures, ",") != "capabilities_restricted" {
			t.Errorf("Failures = %q", r.Failures)
		}
		ctlWarnings(t, r, []string{`control capabilities is off in profile "restricted"`}, nil)
	})
	t.Run("clean pod: not judged, nothing to say", func(t *testing.T) {
		r := review(t, `{"spec":{"containers":[{"name":"app","ports":[{"containerPort":80}]}]}}`, "restricted", nil)
		if r.MayFail || len(r.Failures) != 0 {
			t.Errorf("MayFail %v, Failures %q", r.MayFail, r.Failures)
		}
	})
	t.Run("baseline profile judged at baseline", func(t *testing.T) {
		r := review(t, finding6, "baseline", nil)
		got := append([]string(nil), r.Failures...)
		sort.Strings(got)
		if strings.Join(got, ",") != "appArmorProfile,hostPathVolumes,hostPorts" {
			t.Errorf("Failures = %q", got)
		}
		ctlWarnings(t, r, []string{"still fails Pod Security Standards baseline check hostPorts"}, []string{"restrictedVolumes", "runAsNonRoot"})
	})
	t.Run("privileged profile: never judged", func(t *testing.T) {
		if r := review(t, finding6, "privileged", nil); r.MayFail {
			t.Error("MayFail on the privileged profile")
		}
	})
	t.Run("through Review, for a pod template", func(t *testing.T) {
		tmpl := finding6
		r, err := Review(context.Background(), cfg, []byte(tmpl), facts, Options{Prefix: "/spec/template"})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Failures) != 4 {
			t.Errorf("Failures = %q", r.Failures)
		}
	})
}
