package mutate

// A control changes the pod only through the functions of this file. Each
// writes the operation, the pod view the later controls read, and the
// record of the change in one step, so the three cannot disagree: a later
// control sees exactly what the patch will have set, and the warnings name
// exactly what it sets.

// change is what a control records for a field it sets: the control, the
// field as warnings name it, and the container (nil: the pod). at, when
// set, caches the index of the field's entry in Result.Changes (-1 before
// the first), for a field set in many places (a writable path is mounted
// in every container). The zero change records nothing: for a value that
// replaces a conflict (enforced), the conflict is the record; for a volume
// the engine adds, its mounts are.
type change struct {
	control string
	field   string
	t       *target
	at      *int
}

// enforced sets a field in place of a conflicting value.
var enforced = change{}

func (h *hctx) record(c change) {
	switch {
	case c.control == "":
	case c.at != nil:
		h.changedAt(c.at, c.control, c.t, c.field)
	default:
		h.changed(c.control, c.t, c.field)
	}
}

// set sets key of o to v where the view holds the field as a pointer (nil:
// absent or null): an add where it is nil, a replace where it holds a
// value, and the view then holds v.
func set[T any](h *hctx, o *obj, key string, view **T, v T, c change) {
	setAs(h, o, key, view, v, v, c)
}

// setAs is set for a field whose value in the patch (op) is written
// differently from its value in the view (v): an object.
func setAs[T any](h *hctx, o *obj, key string, view **T, v T, op any, c change) {
	if *view == nil {
		o.set(key, op)
		*view = &v
	} else {
		o.replace(key, op)
		**view = v
	}
	h.record(c)
}

// setValue is set for a field whose view holds the zero value when it is
// absent, null or empty: an add then (valid for a null too), a replace
// otherwise.
func setValue[T comparable](h *hctx, o *obj, key string, view *T, v T, c change) {
	var zero T
	if *view == zero {
		o.set(key, v)
	} else {
		o.replace(key, v)
	}
	*view = v
	h.record(c)
}

// remove removes the field at rel below o (a relative JSON pointer, its
// tokens escaped) and clears it in the view.
func remove[T any](h *hctx, o *obj, rel string, view *T) {
	h.b.remove(o.at() + "/" + rel)
	var zero T
	*view = zero
}

// appendTo appends an entry to the array at key of o, as op in the patch
// and as item in the view. exists says whether the array is present and
// non-null in the input (not whether an earlier call made it): entries the
// engine appends to an array it creates go into that one new array.
func appendTo[V any](h *hctx, o *obj, key string, exists bool, view *[]V, item V, op any, c change) {
	o.append(key, exists, op)
	*view = append(*view, item)
	h.record(c)
}

// removeEntries removes the entries at the ascending indices drop from the
// array at key of o, the last first so that each index still points at its
// entry, and from the view.
func removeEntries[V any](h *hctx, o *obj, key string, view *[]V, drop []int) {
	if len(drop) == 0 {
		return
	}
	at := o.at() + "/" + escape(key) + "/"
	for j := len(drop) - 1; j >= 0; j-- {
		h.b.remove(at + itoa(drop[j]))
	}
	kept := (*view)[:0]
	for i, x := range *view {
		if len(drop) > 0 && drop[0] == i {
			drop = drop[1:]
			continue
		}
		kept = append(kept, x)
	}
	*view = kept
}

// podSecurityContext is the view of spec.securityContext, made empty when
// a control first sets a field there (the patch object is h.podSC).
func (h *hctx) podSecurityContext() *podSCView {
	if h.pod.Spec.SecurityContext == nil {
		h.pod.Spec.SecurityContext = &podSCView{}
	}
	return h.pod.Spec.SecurityContext
}
