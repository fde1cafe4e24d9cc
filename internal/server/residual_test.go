package server

import (
	"strings"
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// A pod with a hostPath volume, a hostPort and AppArmor Unconfined comes
// out of the webhook still failing restricted: every failing check is named
// in a warning with the reason, and in the audit annotation.
func TestHandlerNamesRestrictedFailures(t *testing.T) {
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"apps"},"spec":{"volumes":[{"name":"h","hostPath":{"path":"/"}}],"securityContext":{"appArmorProfile":{"type":"Unconfined"}},"containers":[{"name":"app","image":"x","ports":[{"containerPort":80,"hostPort":80}],"volumeMounts":[{"name":"h","mountPath":"/host"}]}]}}`
	enforce, err := profiles.Parse([]byte("defaultProfile: strict\nprofiles:\n- name: strict\n  onConflict: enforce\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		cfg      *profiles.Config
		failures string
		warnings []string
	}{
		{"warn", nil, "appArmorProfile,hostPathVolumes,hostPorts,restrictedVolumes", []string{
			"pod-hardener: still fails Pod Security Standards restricted check hostPorts after hardening",
			"control hostPorts kept ports[0].hostPort=80",
			"check appArmorProfile after hardening",
		}},
		{"enforce", enforce, "hostPathVolumes,restrictedVolumes", []string{
			"still fails Pod Security Standards restricted check restrictedVolumes after hardening",
			"no safe value: removing the volume would break the containers that mount it",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.cfg)
			_, resp := e.send(t, review{obj: pod}.JSON())
			if resp == nil || !resp.Allowed {
				t.Fatalf("response %+v", resp)
			}
			if got := resp.AuditAnnotations["restricted-failures"]; got != c.failures {
				t.Errorf("restricted-failures = %q, want %q (all: %v)", got, c.failures, resp.AuditAnnotations)
			}
			all := strings.Join(resp.Warnings, "\n")
			for _, w := range c.warnings {
				if !strings.Contains(all, w) {
					t.Errorf("no warning contains %q:\n%s", w, all)
				}
			}
		})
	}
	t.Run("a clean pod is not judged and gets no such annotation", func(t *testing.T) {
		e := newEnv(t, nil)
		_, resp := e.send(t, review{obj: `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"x"}]}}`}.JSON())
		if _, ok := resp.AuditAnnotations["restricted-failures"]; ok || strings.Contains(strings.Join(resp.Warnings, "\n"), "still fails") {
			t.Errorf("clean pod: %v %q", resp.AuditAnnotations, resp.Warnings)
		}
	})
}
