package mutate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	kjson "sigs.k8s.io/json"
)

// The engine reads the pod through these views: only the fields a control
// looks at, decoded from the raw object. It never marshals them back; every
// change is an operation against the raw object, so fields this build does
// not know (a newer API server) and the user's formatting of everything
// else are untouched, and `creationTimestamp: null` never becomes a remove.
//
// A nil pointer or slice means "absent or null": JSON null is unset, as the
// API server treats it, and an `add` replaces a null member.

type podView struct {
	Metadata *metaView `json:"metadata"`
	Spec     *specView `json:"spec"`
}

type metaView struct {
	Name            string            `json:"name"`
	GenerateName    string            `json:"generateName"`
	Namespace       string            `json:"namespace"`
	Annotations     map[string]string `json:"annotations"`
	OwnerReferences []ownerRef        `json:"ownerReferences"`
}

type ownerRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

type specView struct {
	OS                           *osView         `json:"os"`
	NodeName                     string          `json:"nodeName"`
	HostNetwork                  *bool           `json:"hostNetwork"`
	HostPID                      *bool           `json:"hostPID"`
	HostIPC                      *bool           `json:"hostIPC"`
	HostUsers                    *bool           `json:"hostUsers"`
	AutomountServiceAccountToken *bool           `json:"automountServiceAccountToken"`
	SecurityContext              *podSCView      `json:"securityContext"`
	Volumes                      []volumeView    `json:"volumes"`
	Containers                   []containerView `json:"containers"`
	InitContainers               []containerView `json:"initContainers"`
	EphemeralContainers          []containerView `json:"ephemeralContainers"`
	imageLookupView
}

type osView struct {
	Name string `json:"name"`
}

type windowsOptionsView struct {
	HostProcess *bool `json:"hostProcess"`
}

type seccompView struct {
	Type string `json:"type"`
}

type podSCView struct {
	RunAsNonRoot   *bool               `json:"runAsNonRoot"`
	RunAsUser      *int64              `json:"runAsUser"`
	RunAsGroup     *int64              `json:"runAsGroup"`
	FSGroup        *int64              `json:"fsGroup"`
	SeccompProfile *seccompView        `json:"seccompProfile"`
	WindowsOptions *windowsOptionsView `json:"windowsOptions"`
	// Read by the controls of control_<check>.go named after PSS checks.
	SELinuxOptions  *seLinuxView  `json:"seLinuxOptions"`
	AppArmorProfile *appArmorView `json:"appArmorProfile"`
	Sysctls         []sysctlView  `json:"sysctls"`
}

type volumeView struct {
	Name string `json:"name"`
	// EmptyDir is read only for a volume whose name the engine would give
	// its own, and kept raw so no other pod's emptyDir can fail decoding.
	EmptyDir json.RawMessage `json:"emptyDir"`
	volumeSources
}

type containerView struct {
	Name string `json:"name"`
	// Image keys the container's entry in Input.Images.
	Image           imageRef          `json:"image"`
	SecurityContext *scView           `json:"securityContext"`
	VolumeMounts    []volumeMountView `json:"volumeMounts"`
	containerHostsView
}

// imageRef is a container's image. Anything but a JSON string reads as ""
// (no facts): the API server says what is wrong with it, and hardening an
// offline manifest does not stop there.
type imageRef string

func (r *imageRef) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '"' {
		return nil
	}
	var s string
	if err := kjson.UnmarshalCaseSensitivePreserveInts(b, &s); err != nil {
		return nil
	}
	*r = imageRef(s)
	return nil
}

type volumeMountView struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
}

type capabilitiesView struct {
	Add  []string `json:"add"`
	Drop []string `json:"drop"`
}

type scView struct {
	Privileged               *bool               `json:"privileged"`
	AllowPrivilegeEscalation *bool               `json:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool               `json:"readOnlyRootFilesystem"`
	RunAsNonRoot             *bool               `json:"runAsNonRoot"`
	RunAsUser                *int64              `json:"runAsUser"`
	RunAsGroup               *int64              `json:"runAsGroup"`
	Capabilities             *capabilitiesView   `json:"capabilities"`
	SeccompProfile           *seccompView        `json:"seccompProfile"`
	WindowsOptions           *windowsOptionsView `json:"windowsOptions"`
	SELinuxOptions           *seLinuxView        `json:"seLinuxOptions"`
	AppArmorProfile          *appArmorView       `json:"appArmorProfile"`
	ProcMount                *string             `json:"procMount"`
}

// decodePod reads the views from a raw pod. It rejects what is not a JSON
// object with a spec, and wrong types in the fields it reads; a wrong type
// anywhere else is not its business and passes through untouched.
func decodePod(raw []byte) (*podView, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("empty object")
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("object is not a JSON object")
	}
	var p podView
	// Decode as the API server does: keys are case-sensitive (encoding/json
	// would read "SecurityContext" as securityContext and aim a patch at a
	// path that does not exist), and a duplicate key is an error, since the
	// engine and a patch applier could each pick a different copy.
	strict, err := kjson.UnmarshalStrict(raw, &p, kjson.DisallowDuplicateFields)
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, fmt.Errorf("decoding pod: field %s: a JSON %s is not a valid %s", te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("decoding pod: %w", err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("decoding pod: %w", errors.Join(strict...))
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return &p, nil
}

// check refuses what decoding alone lets through: no spec, and null or
// nameless containers.
func (p *podView) check() error {
	if p.Spec == nil {
		return fmt.Errorf("object has no spec: not a pod")
	}
	for _, l := range []struct {
		kind string
		cs   []containerView
	}{{kindInitContainers, p.Spec.InitContainers}, {kindContainers, p.Spec.Containers}, {kindEphemeralContainers, p.Spec.EphemeralContainers}} {
		for i, c := range l.cs {
			// A null entry decodes as a container without a name; the API
			// server refuses both, and a patch into a null entry would fail.
			if c.Name == "" {
				return fmt.Errorf("spec.%s[%d] has no name (null or incomplete entry)", l.kind, i)
			}
		}
	}
	return nil
}

// Pod is a pod decoded as a field of a larger document, such as the
// object of an AdmissionReview, in that document's own decoding pass. A
// json.Unmarshaler would be handed the raw bytes and scan them twice more;
// for the webhook that was a third of a review's cost. Decode the document
// as decodePod does (sigs.k8s.io/json, case-sensitive, duplicate keys
// refused), or the engine may aim at a key the API server does not see.
type Pod struct {
	podView
}

// Annotation returns one of the pod's annotations.
func (p *Pod) Annotation(key string) string { return p.annotation(key) }

// HasAnnotation reports whether the pod carries an annotation, even empty.
func (p *Pod) HasAnnotation(key string) bool {
	_, ok := p.Metadata.annotationsOrNil()[key]
	return ok
}

func (m *metaView) annotationsOrNil() map[string]string {
	if m == nil {
		return nil
	}
	return m.Annotations
}

func (p *podView) annotation(key string) string {
	if p.Metadata == nil {
		return ""
	}
	return p.Metadata.Annotations[key]
}

// describe names the pod for messages; pods made by controllers have no
// name yet, only generateName and an owner.
func (p *podView) describe() string {
	if p.Metadata == nil {
		return "pod"
	}
	m := p.Metadata
	var s string
	switch {
	case m.Name != "":
		s = fmt.Sprintf("pod %q", m.Name)
	case m.GenerateName != "":
		s = fmt.Sprintf("pod %q (generateName)", m.GenerateName)
	default:
		s = "pod"
	}
	if len(m.OwnerReferences) > 0 {
		s += fmt.Sprintf(" of %s %q", m.OwnerReferences[0].Kind, m.OwnerReferences[0].Name)
	}
	return s
}

func (p *podView) windows() bool {
	return p.Spec.OS != nil && p.Spec.OS.Name == "windows"
}

// hostProcess: a Windows HostProcess pod runs as a node account by design.
func (p *podView) hostProcess() bool {
	if sc := p.Spec.SecurityContext; sc != nil && sc.WindowsOptions.hostProcess() {
		return true
	}
	for _, c := range p.Spec.allContainers() {
		if sc := c.SecurityContext; sc != nil && sc.WindowsOptions.hostProcess() {
			return true
		}
	}
	return false
}

// hostProcess reports windowsOptions.hostProcess: true; nil options have none.
func (w *windowsOptionsView) hostProcess() bool { return w != nil && isTrue(w.HostProcess) }

func isTrue(b *bool) bool  { return b != nil && *b }
func isFalse(b *bool) bool { return b != nil && !*b }
