package mutate

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Operation is one RFC 6902 operation.
type Operation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// MarshalJSON writes `value` for add/replace even when it is false or 0,
// which omitempty would drop.
func (o Operation) MarshalJSON() ([]byte, error) {
	if o.Op == "remove" {
		return json.Marshal(struct {
			Op   string `json:"op"`
			Path string `json:"path"`
		}{o.Op, o.Path})
	}
	return json.Marshal(struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}{o.Op, o.Path, o.Value})
}

// Patch encodes operations as an RFC 6902 JSON patch.
func Patch(ops []Operation) ([]byte, error) {
	if len(ops) == 0 {
		return []byte("[]"), nil
	}
	return json.Marshal(ops)
}

// escape encodes a JSON pointer token (RFC 6901).
func escape(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// ops collects operations in the order the controls produce them.
type ops struct {
	list []Operation
}

func (b *ops) add(path string, v any) {
	b.list = append(b.list, Operation{Op: "add", Path: path, Value: v})
}
func (b *ops) replace(path string, v any) {
	b.list = append(b.list, Operation{Op: "replace", Path: path, Value: v})
}
func (b *ops) remove(path string) { b.list = append(b.list, Operation{Op: "remove", Path: path}) }

// obj is an object in the pod that the engine may add fields to. When it
// does not exist (absent or null), the first field set creates it with one
// `add` at its parent, and later fields go into that same new value; so a
// container without a securityContext gets one operation, not a chain that
// would fail on the missing parent.
type obj struct {
	b      *ops
	path   string
	exists bool
	parent *obj
	key    string
	fields map[string]any
	lists  map[string]*list
}

func newObj(b *ops, path string, exists bool, parent *obj, key string) *obj {
	return &obj{b: b, path: path, exists: exists, parent: parent, key: key}
}

// child returns the object at key below o.
func (o *obj) child(key string, exists bool) *obj {
	return newObj(o.b, o.path+"/"+escape(key), exists && o.exists, o, key)
}

// set adds key: v (the key must be absent or null in the input).
func (o *obj) set(key string, v any) {
	if o.exists {
		o.b.add(o.path+"/"+escape(key), v)
		return
	}
	if o.fields == nil {
		o.fields = map[string]any{}
		o.parent.set(o.key, o.fields)
	}
	o.fields[key] = v
}

// replace overwrites a value the user set (enforce mode only).
func (o *obj) replace(key string, v any) {
	o.b.replace(o.path+"/"+escape(key), v)
}

// append adds v at the end of the array at key; exists says whether the
// array is present and non-null in the input. Appending keeps every entry
// the user wrote: a whole array is never replaced.
func (o *obj) append(key string, exists bool, v any) {
	if exists && o.exists {
		o.b.add(o.path+"/"+escape(key)+"/-", v)
		return
	}
	if o.lists == nil {
		o.lists = map[string]*list{}
	}
	l, ok := o.lists[key]
	if !ok {
		l = &list{}
		o.lists[key] = l
		o.set(key, l)
	}
	l.items = append(l.items, v)
}

// list is an array the engine creates and may still append to.
type list struct{ items []any }

func (l *list) MarshalJSON() ([]byte, error) { return json.Marshal(l.items) }

func itoa(i int) string { return strconv.Itoa(i) }
