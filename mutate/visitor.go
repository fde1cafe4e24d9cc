package mutate

// Container kinds, as named in the pod spec. One visitor walks all three, so
// no control can forget init containers (native sidecars among them) or
// ephemeral containers.
const (
	kindContainers          = "containers"
	kindInitContainers      = "initContainers"
	kindEphemeralContainers = "ephemeralContainers"
)

// target is one container being hardened. Its securityContext and
// capabilities objects are made when a control first writes there; whether
// they exist is read from the input once, before any control runs, since
// controls update the view as they go.
type target struct {
	c          *containerView
	kind       string
	index      int
	obj        *obj
	scExists   bool
	capsExists bool
	scObj      *obj
	capsObj    *obj
	whereS     string
	// imagePaths index the writable paths (hctx.paths) of the VOLUMEs
	// its image declares.
	imagePaths []int
	// The container's objects live in the target, which targets allocates
	// with all the others at once; so do the views of a securityContext
	// and capabilities the container does not have yet, and its first
	// dropped capability.
	objV, scV, capsV obj
	scView           scView
	capsView         capabilitiesView
	dropBuf          [1]string
}

// sc is the container's securityContext object.
func (t *target) sc() *obj {
	if t.scObj == nil {
		t.scV = t.obj.childValue("securityContext", t.scExists)
		t.scObj = &t.scV
	}
	return t.scObj
}

// caps is the container's securityContext.capabilities object.
func (t *target) caps() *obj {
	if t.capsObj == nil {
		t.capsV = t.sc().childValue("capabilities", t.capsExists)
		t.capsObj = &t.capsV
	}
	return t.capsObj
}

// where names the container in messages: containers[app].
func (t *target) where() string {
	if t.whereS == "" {
		t.whereS = t.kind + "[" + t.c.Name + "]"
	}
	return t.whereS
}

func (t *target) name() string { return t.c.Name }

func (t *target) securityContext() *scView {
	if t.c.SecurityContext == nil {
		t.c.SecurityContext = &t.scView
	}
	return t.c.SecurityContext
}

// drop is the view of the container's dropped capabilities.
func (t *target) drop() *[]string {
	sc := t.securityContext()
	if sc.Capabilities == nil {
		t.capsView.Drop = t.dropBuf[:0]
		sc.Capabilities = &t.capsView
	}
	return &sc.Capabilities.Drop
}

// containerList is the containers of one kind.
type containerList struct {
	kind string
	cs   []containerView
}

// byKind is the pod's containers by kind, in spec order: init containers,
// containers, ephemeral containers. Every walk over containers starts
// here, so the kinds are listed once.
func (s *specView) byKind() [3]containerList {
	return [3]containerList{{kindInitContainers, s.InitContainers}, {kindContainers, s.Containers}, {kindEphemeralContainers, s.EphemeralContainers}}
}

func (s *specView) allContainers() []*containerView {
	out := make([]*containerView, 0, len(s.Containers)+len(s.InitContainers)+len(s.EphemeralContainers))
	for _, l := range s.byKind() {
		for i := range l.cs {
			out = append(out, &l.cs[i])
		}
	}
	return out
}

// targets lists the containers to harden, in spec order: init containers,
// containers, ephemeral containers. With ephemeralOnly set, only the named
// ephemeral containers (those new in an UPDATE of pods/ephemeralcontainers).
func targets(spec *specView, specObj *obj, ephemeralOnly map[string]bool) []*target {
	n := len(spec.InitContainers) + len(spec.Containers) + len(spec.EphemeralContainers)
	out := make([]*target, 0, n)
	all := make([]target, n) // one allocation for every target
	for _, l := range spec.byKind() {
		for i := range l.cs {
			c := &l.cs[i]
			if ephemeralOnly != nil && (l.kind != kindEphemeralContainers || !ephemeralOnly[c.Name]) {
				continue
			}
			t := &all[len(out)]
			*t = target{c: c, kind: l.kind, index: i,
				objV:       obj{b: specObj.b, exists: true, parent: specObj, rawKey: true, idxKind: l.kind, index: i},
				scExists:   c.SecurityContext != nil,
				capsExists: c.SecurityContext != nil && c.SecurityContext.Capabilities != nil}
			t.obj = &t.objV
			out = append(out, t)
		}
	}
	return out
}
