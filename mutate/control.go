package mutate

import (
	"github.com/pod-hardener/pod-hardener/profiles"
)

type level int

const (
	levelContainer level = iota
	levelPod
)

// control is one hardening control. Each lives in control_<name>.go with
// its doc, registration and table test, as in pod-security-admission. It
// reads the pod view and changes the pod only through the functions of
// edit.go, which write the operation, the view and the change record
// together; a conflict it records (hctx.conflict) is the handle it decides
// on.
type control struct {
	name string
	// linuxOnly controls set fields the API server forbids on Windows pods
	// (spec.os.name: windows); PSS exempts those pods from them too.
	linuxOnly bool
	// perContainer marks a pod-level control whose pod-level default also
	// covers each container and which otherwise edits each container: it
	// honours exempt.pod-hardener.io/<container> too, leaving that
	// container's own fields as written and setting its default on the
	// other containers instead of the pod, so an exemption for one never
	// weakens another.
	perContainer bool
	// pod runs once per pod (pod-level controls, and pod-level work of
	// container controls such as adding volumes); may be nil.
	pod func(h *hctx)
	// container runs for each container being hardened; may be nil.
	container func(h *hctx, t *target)
}

var registry = map[string]*control{}

func register(c *control) {
	if _, dup := registry[c.name]; dup {
		panic("mutate: control registered twice: " + c.name)
	}
	if _, ok := profiles.CanonicalControl(c.name); !ok {
		panic("mutate: control not declared in profiles.ControlNames: " + c.name)
	}
	registry[c.name] = c
}

// level is derived from the functions a control has: one that runs per
// container is a container-level control (it may also do pod-level work
// such as adding volumes), one that runs only per pod is pod-level.
func (c *control) level() level {
	if c.container != nil {
		return levelContainer
	}
	return levelPod
}

// containerExemptable reports whether exempt.pod-hardener.io/<container>
// may name the control.
func containerExemptable(name string) bool {
	c, ok := registry[name]
	return !ok || c.level() == levelContainer || c.perContainer
}

// ordered returns the registered controls in profiles.ControlNames order,
// so operations and messages are deterministic.
func ordered() []*control {
	out := make([]*control, 0, len(registry))
	for _, n := range profiles.ControlNames {
		if c, ok := registry[n]; ok {
			out = append(out, c)
		}
	}
	return out
}
