// Package profiles holds the hardening profiles: their types, the built-ins,
// loading config.yaml, validation and the choice of a profile for a pod.
// It imports nothing else of pod-hardener, so the engine, the webhook and
// the CLI all read one definition.
package profiles

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Control names. They are stable: config keys, annotations, metrics and
// messages all use them, so renaming one is a breaking change.
const (
	Capabilities                 = "capabilities"
	AllowPrivilegeEscalation     = "allowPrivilegeEscalation"
	Privileged                   = "privileged"
	ReadOnlyRootFilesystem       = "readOnlyRootFilesystem"
	RunAsNonRoot                 = "runAsNonRoot"
	RunAsUser                    = "runAsUser"
	SeccompProfile               = "seccompProfile"
	HostNamespaces               = "hostNamespaces"
	AutomountServiceAccountToken = "automountServiceAccountToken"
	// The controls below are named after the Pod Security Standards check
	// each one owns (k8s.io/pod-security-admission/policy check IDs).
	AppArmorProfile            = "appArmorProfile"
	ProcMount                  = "procMount"
	SELinuxOptions             = "seLinuxOptions"
	Sysctls                    = "sysctls"
	HostPorts                  = "hostPorts"
	HostProbesAndHostLifecycle = "hostProbesAndHostLifecycle"
	HostPathVolumes            = "hostPathVolumes"
	RestrictedVolumes          = "restrictedVolumes"
	WindowsHostProcess         = "windowsHostProcess"
)

// ControlNames lists every control in the order the engine runs them.
var ControlNames = []string{
	Privileged,
	Capabilities,
	AllowPrivilegeEscalation,
	ReadOnlyRootFilesystem,
	RunAsNonRoot,
	RunAsUser,
	SeccompProfile,
	HostNamespaces,
	AutomountServiceAccountToken,
	AppArmorProfile,
	ProcMount,
	SELinuxOptions,
	Sysctls,
	// After HostNamespaces: whether a hostPort can go depends on whether
	// hostNetwork stayed true.
	HostPorts,
	HostProbesAndHostLifecycle,
	HostPathVolumes,
	RestrictedVolumes,
	WindowsHostProcess,
}

// baselineControls are the controls that own a Pod Security Standards
// baseline check: the built-in baseline profile turns them on.
var baselineControls = []string{
	Privileged, Capabilities, HostNamespaces, SeccompProfile, AppArmorProfile, ProcMount,
	SELinuxOptions, Sysctls, HostPorts, HostProbesAndHostLifecycle, HostPathVolumes, WindowsHostProcess,
}

// CanonicalControl returns the control's canonical name for a name in any
// letter case, so "readonlyrootfilesystem" in a config is understood.
func CanonicalControl(name string) (string, bool) {
	for _, c := range ControlNames {
		if strings.EqualFold(c, strings.TrimSpace(name)) {
			return c, true
		}
	}
	return "", false
}

// Mode says what a control does.
type Mode string

const (
	// ModeOff: the control does nothing.
	ModeOff Mode = "off"
	// ModeDefault: fill what is unset; conflicts follow the profile's onConflict.
	ModeDefault Mode = "default"
	// ModeWarn, ModeEnforce, ModeDeny: fill what is unset and handle this
	// control's conflicts so, whatever the profile's onConflict says.
	ModeWarn    Mode = "warn"
	ModeEnforce Mode = "enforce"
	ModeDeny    Mode = "deny"
)

// UnmarshalJSON accepts the mode names and, since YAML 1.1 reads a bare
// `off`/`on` as a boolean, false (off) and true (default).
func (m *Mode) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch t := v.(type) {
	case bool:
		if t {
			*m = ModeDefault
		} else {
			*m = ModeOff
		}
	case string:
		// sigs.k8s.io/yaml hands a bare `off` to a string field as "false".
		switch v := strings.ToLower(strings.TrimSpace(t)); v {
		case "on", "true", "yes":
			*m = ModeDefault
		case "false", "no":
			*m = ModeOff
		default:
			*m = Mode(v)
		}
	default:
		return fmt.Errorf("control mode must be a string or boolean, got %s", string(b))
	}
	return nil
}

// Action is what happens to a conflict: a value the user set explicitly that
// the profile considers unsafe.
type Action string

const (
	ActionWarn    Action = "warn"
	ActionEnforce Action = "enforce"
	ActionDeny    Action = "deny"
)

// RolloutMode says whether a profile's changes are made or only reported,
// as Pod Security's enforce level against its warn and audit levels.
type RolloutMode string

const (
	// RolloutHarden patches the pod: the default.
	RolloutHarden RolloutMode = "harden"
	// RolloutReport patches nothing and never rejects: the webhook answers
	// with warnings and audit annotations saying what hardening would do.
	RolloutReport RolloutMode = "report"
)

// RootImages says what happens to a container whose image runs as root
// (no USER, USER 0 or root, or a named user that resolves to uid 0) when
// runAsNonRoot is in force for it and no non-zero runAsUser applies: the
// kubelet would refuse to start it. It is read only when the image's facts
// were looked up (image-aware hardening).
type RootImages string

const (
	// RootImagesAssign sets the container's runAsUser and runAsGroup (the
	// profile's, default 65532) and the pod's fsGroup where unset, so the
	// container starts as a non-root user and can write its volumes.
	RootImagesAssign RootImages = "assign"
	// RootImagesWarn admits the pod unchanged in that respect, with a
	// warning that the container will not start.
	RootImagesWarn RootImages = "warn"
	// RootImagesDeny rejects the pod, naming the image and the fix.
	RootImagesDeny RootImages = "deny"
)

// RootImagesValues lists the accepted values of rootImages.
var RootImagesValues = []string{string(RootImagesAssign), string(RootImagesWarn), string(RootImagesDeny)}

// EmptyDir shapes the emptyDir volumes added for writable paths.
type EmptyDir struct {
	Medium    string `json:"medium,omitempty"`
	SizeLimit string `json:"sizeLimit,omitempty"`
}

// Profile is a fully resolved profile: built-in, or custom with its
// `extends` chain applied. The engine reads only this.
type Profile struct {
	Name        string
	Description string
	// Level is the Pod Security Standards level the profile aims at
	// (restricted, baseline or privileged), inherited through extends from
	// the built-in at the root: after hardening, a pod is judged at it.
	Level string
	// Mode is harden or report, inherited through extends.
	Mode                RolloutMode
	Controls            map[string]Mode
	OnConflict          Action
	AllowedCapabilities []string
	DropCapabilities    []string
	WritablePaths       []string
	EmptyDir            EmptyDir
	RunAsUser           *int64
	RunAsGroup          *int64
	FSGroup             *int64
	// RootImages is what to do with a container whose image runs as root.
	RootImages RootImages
}

// Enabled reports whether a control is on in this profile.
func (p *Profile) Enabled(control string) bool {
	m, ok := p.Controls[control]
	return ok && m != ModeOff
}

// ConflictAction is what happens to a conflict of the given control.
func (p *Profile) ConflictAction(control string) Action {
	switch p.Controls[control] {
	case ModeWarn:
		return ActionWarn
	case ModeEnforce:
		return ActionEnforce
	case ModeDeny:
		return ActionDeny
	}
	if p.OnConflict == "" {
		return ActionWarn
	}
	return p.OnConflict
}

// CapabilityAllowed reports whether adding capability c is allowed. The
// profile may write an entry with or without CAP_, but the pod's value must
// be the bare upper-case name: Pod Security Standards accept only that
// spelling, so CAP_NET_BIND_SERVICE would fail restricted despite the
// runtime taking it.
func (p *Profile) CapabilityAllowed(c string) bool {
	for _, a := range p.AllowedCapabilities {
		if NormalizeCapability(a) == c {
			return true
		}
	}
	return false
}

// NormalizeCapability upper-cases a capability name and strips CAP_.
func NormalizeCapability(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	return strings.TrimPrefix(c, "CAP_")
}

func int64p(v int64) *int64 { return &v }

// allControls returns a control map with every control in mode m.
func allControls(m Mode) map[string]Mode {
	out := make(map[string]Mode, len(ControlNames))
	for _, c := range ControlNames {
		out[c] = m
	}
	return out
}

// pssBaselineCapabilities are the capabilities PSS baseline allows a
// container to add (policy/check_capabilities_baseline.go).
var pssBaselineCapabilities = []string{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// Builtins returns fresh copies of the built-in profiles, so a caller may
// not change what another one sees.
func Builtins() map[string]*Profile {
	restricted := &Profile{
		Name:                "restricted",
		Description:         "every control; a pod without conflicts passes Pod Security Standards restricted",
		Level:               "restricted",
		Mode:                RolloutHarden,
		Controls:            allControls(ModeDefault),
		OnConflict:          ActionWarn,
		AllowedCapabilities: []string{"NET_BIND_SERVICE"},
		DropCapabilities:    []string{"ALL"},
		WritablePaths:       []string{"/tmp"},
		// assign: of the three, the only one under which a root image's
		// container can start at all (docs/image-aware.md).
		RootImages: RootImagesAssign,
	}
	restricted.Controls[RunAsUser] = ModeOff
	restricted.Controls[AutomountServiceAccountToken] = ModeOff

	baseline := &Profile{
		Name:        "baseline",
		Description: "what Pod Security Standards baseline needs, plus allowPrivilegeEscalation and seccompProfile",
		Level:       "baseline",
		Mode:        RolloutHarden,
		Controls:    allControls(ModeOff),
		OnConflict:  ActionWarn,
		// Baseline keeps the runtime's default capabilities: nothing is
		// dropped, and only adds beyond the PSS baseline set conflict.
		AllowedCapabilities: append([]string(nil), pssBaselineCapabilities...),
		RootImages:          RootImagesAssign,
	}
	for _, c := range append([]string{AllowPrivilegeEscalation}, baselineControls...) {
		baseline.Controls[c] = ModeDefault
	}

	privileged := &Profile{
		Name:        "privileged",
		Description: "touches nothing",
		Level:       "privileged",
		Mode:        RolloutHarden,
		Controls:    allControls(ModeOff),
		OnConflict:  ActionWarn,
		RootImages:  RootImagesAssign,
	}
	return map[string]*Profile{
		restricted.Name: restricted,
		baseline.Name:   baseline,
		privileged.Name: privileged,
	}
}

// clone returns a deep copy, so profiles built by `extends` never share
// slices or maps with their parent.
func (p *Profile) clone() *Profile {
	c := *p
	c.Controls = make(map[string]Mode, len(p.Controls))
	for k, v := range p.Controls {
		c.Controls[k] = v
	}
	c.AllowedCapabilities = append([]string(nil), p.AllowedCapabilities...)
	c.DropCapabilities = append([]string(nil), p.DropCapabilities...)
	c.WritablePaths = append([]string(nil), p.WritablePaths...)
	return &c
}
