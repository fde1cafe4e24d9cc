package mutate

import (
	"fmt"
	"strings"

	"k8s.io/pod-security-admission/api"

	"github.com/pod-hardener/pod-hardener/internal/pss"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// Pod Security Standards levels a profile can aim at (profiles.Profile.Level).
const (
	pssRestricted = "restricted"
	pssBaseline   = "baseline"
)

// checkOwners gives every Pod Security Standards check (its ID in
// k8s.io/pod-security-admission/policy) the control that handles it, and
// the check's level. TestEveryCheckHasAnOwner holds it to the evaluator's
// list of checks.
var checkOwners = []struct {
	check, control string
	restrictedOnly bool
}{
	{"allowPrivilegeEscalation", profiles.AllowPrivilegeEscalation, true},
	{"appArmorProfile", profiles.AppArmorProfile, false},
	{"capabilities_baseline", profiles.Capabilities, false},
	{"capabilities_restricted", profiles.Capabilities, true},
	{"hostNamespaces", profiles.HostNamespaces, false},
	{"hostPathVolumes", profiles.HostPathVolumes, false},
	{"hostPorts", profiles.HostPorts, false},
	{"hostProbesAndHostLifecycle", profiles.HostProbesAndHostLifecycle, false},
	{"privileged", profiles.Privileged, false},
	{"procMount", profiles.ProcMount, false},
	{"procMount_restricted", profiles.ProcMount, true},
	{"restrictedVolumes", profiles.RestrictedVolumes, true},
	{"runAsNonRoot", profiles.RunAsNonRoot, true},
	// runAsUser: 0 is a conflict of runAsNonRoot.
	{"runAsUser", profiles.RunAsNonRoot, true},
	{"seLinuxOptions", profiles.SELinuxOptions, false},
	{"seccompProfile_baseline", profiles.SeccompProfile, false},
	{"seccompProfile_restricted", profiles.SeccompProfile, true},
	{"sysctls", profiles.Sysctls, false},
	{"windowsHostProcess", profiles.WindowsHostProcess, false},
}

func checkOwner(id string) string {
	for _, o := range checkOwners {
		if o.check == id {
			return o.control
		}
	}
	return ""
}

// mayFail reports whether the hardened pod can still fail its profile's
// level. Every check has an owning control, and a control leaves nothing
// that fails its checks unless it is off, exempted, skipped on a Windows
// pod, or a conflict of it was kept; only then is the pod judged (see
// docs/security.md, "Judging the hardened pod", for the cost that decides
// this). An UPDATE of pods/ephemeralcontainers hardens only the new
// containers, and the rest of the pod was judged when it was created.
func (h *hctx) mayFail() bool {
	lv := h.prof.Level
	if lv != pssRestricted && lv != pssBaseline || h.in.EphemeralOnly != nil || h.res.Denied {
		return false
	}
	if len(h.res.Exempted) > 0 || h.windows {
		return true
	}
	for _, c := range h.res.Conflicts {
		if c.Action != profiles.ActionEnforce {
			return true
		}
	}
	for _, o := range checkOwners {
		if (lv == pssRestricted || !o.restrictedOnly) && !h.prof.Enabled(o.control) {
			return true
		}
	}
	return false
}

// Residual judges the hardened pod with k8s.io/pod-security-admission at
// its profile's level, and adds to the result the checks it still fails
// (Failures) and a warning for each, saying why no control fixed it. raw
// is the pod as the engine read it; a prefixed result (a pod template)
// has its operations applied without the prefix. It does nothing unless
// MayFail is set.
func Residual(raw []byte, res *Result) error {
	if !res.MayFail {
		return nil
	}
	ops := res.Operations
	if res.Report {
		ops = res.reportOps
	}
	if res.prefix != "" {
		trimmed := make([]Operation, len(ops))
		for i, o := range ops {
			o.Path = strings.TrimPrefix(o.Path, res.prefix)
			trimmed[i] = o
		}
		ops = trimmed
	}
	out, err := Apply(raw, ops)
	if err != nil {
		return fmt.Errorf("judging the hardened pod: %w", err)
	}
	pod, _, err := pss.DecodePodLenient(out)
	if err != nil {
		return err
	}
	for _, f := range pss.Evaluate(pod, api.Level(res.level)) {
		res.Failures = append(res.Failures, f.ID)
		verb := "still fails"
		if res.Report {
			verb = "would still fail"
		}
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s Pod Security Standards %s check %s after hardening (%s): %s",
			verb, res.level, f.ID, f, res.why(f.ID)))
	}
	return nil
}

// Level is the Pod Security Standards level the pod was judged at.
func (r *Result) Level() string { return r.level }

// why says why the control owning a check left the pod failing it.
func (r *Result) why(check string) string {
	c := checkOwner(check)
	switch {
	case c == "":
		return "no control of this build handles it"
	case !r.prof.Enabled(c):
		return fmt.Sprintf("control %s is off in profile %q", c, r.Profile)
	}
	for _, e := range r.Exempted {
		if e == "*" {
			return "the pod is exempt"
		}
		if strings.HasPrefix(e, c+"@") {
			return fmt.Sprintf("control %s is exempted (%s)", c, e)
		}
	}
	for _, x := range r.Conflicts {
		if x.Action == profiles.ActionEnforce {
			continue
		}
		var how string
		switch {
		case x.Control == c:
		// restrictedVolumes leaves hostPath volumes to hostPathVolumes.
		case c == profiles.RestrictedVolumes && x.Control == profiles.HostPathVolumes:
		// The API server refuses allowPrivilegeEscalation: false next to
		// privileged: true or an added SYS_ADMIN, so it stays unset.
		case c == profiles.AllowPrivilegeEscalation && (x.Control == profiles.Privileged || x.Control == profiles.Capabilities):
			how = c + " left unset, as the API server requires next to it: "
		default:
			continue
		}
		if x.Note != "" {
			return fmt.Sprintf("%scontrol %s kept %s=%s: %s", how, x.Control, x.Field, x.Value, x.Note)
		}
		return fmt.Sprintf("%scontrol %s kept %s=%s (its conflicts are %sed, not fixed)", how, x.Control, x.Field, x.Value, x.Action)
	}
	if r.windows && registry[c] != nil && registry[c].linuxOnly {
		return fmt.Sprintf("control %s sets no Linux-only field on a Windows pod", c)
	}
	return fmt.Sprintf("control %s did not fix it", c)
}
