package mutate

// Container kinds, as named in the pod spec. One visitor walks all three, so
// no control can forget init containers (native sidecars among them) or
// ephemeral containers.
const (
	kindContainers          = "containers"
	kindInitContainers      = "initContainers"
	kindEphemeralContainers = "ephemeralContainers"
)

// target is one container being hardened.
type target struct {
	c     *containerView
	kind  string
	index int
	obj   *obj
	sc    *obj
	caps  *obj
}

func (t *target) name() string { return t.c.Name }

// field names a container field for messages: containers[app].securityContext.privileged
func (t *target) field(f string) string {
	return t.kind + "[" + t.c.Name + "]." + f
}

func (t *target) securityContext() *scView {
	if t.c.SecurityContext == nil {
		t.c.SecurityContext = &scView{}
	}
	return t.c.SecurityContext
}

func (s *specView) allContainers() []*containerView {
	out := make([]*containerView, 0, len(s.Containers)+len(s.InitContainers)+len(s.EphemeralContainers))
	for _, l := range [][]containerView{s.InitContainers, s.Containers, s.EphemeralContainers} {
		for i := range l {
			out = append(out, &l[i])
		}
	}
	return out
}

// targets lists the containers to harden, in spec order: init containers,
// containers, ephemeral containers. With ephemeralOnly set, only the named
// ephemeral containers (those new in an UPDATE of pods/ephemeralcontainers).
func targets(spec *specView, specObj *obj, ephemeralOnly map[string]bool) []*target {
	var out []*target
	add := func(kind string, l []containerView, present bool) {
		for i := range l {
			c := &l[i]
			if ephemeralOnly != nil && (kind != kindEphemeralContainers || !ephemeralOnly[c.Name]) {
				continue
			}
			o := newObj(specObj.b, specObj.path+"/"+kind+"/"+itoa(i), true, nil, "")
			sc := o.child("securityContext", c.SecurityContext != nil)
			caps := sc.child("capabilities", c.SecurityContext != nil && c.SecurityContext.Capabilities != nil)
			out = append(out, &target{c: c, kind: kind, index: i, obj: o, sc: sc, caps: caps})
		}
	}
	add(kindInitContainers, spec.InitContainers, true)
	add(kindContainers, spec.Containers, true)
	add(kindEphemeralContainers, spec.EphemeralContainers, true)
	return out
}
