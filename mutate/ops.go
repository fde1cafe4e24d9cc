package mutate

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/pod-hardener/pod-hardener/internal/jsonenc"
)

// Operation is one RFC 6902 operation.
type Operation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// ValueJSON is the operation's value as JSON.
func (o Operation) ValueJSON() ([]byte, error) { return appendValue(nil, o.Value) }

// MarshalJSON writes `value` for add/replace even when it is false or 0,
// which omitempty would drop.
func (o Operation) MarshalJSON() ([]byte, error) {
	return appendOp(nil, o)
}

// Patch encodes operations as an RFC 6902 JSON patch. It writes the JSON
// itself: encoding/json re-validates and compacts every Marshaler's output
// at each level, which costs more than computing the patch.
func Patch(ops []Operation) ([]byte, error) {
	if len(ops) == 0 {
		return []byte("[]"), nil
	}
	b := make([]byte, 0, 160*len(ops)) // a typical operation is 60-150 bytes
	b = append(b, '[')
	for i, o := range ops {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendOp(b, o); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

func appendOp(b []byte, o Operation) ([]byte, error) {
	b = append(b, `{"op":`...)
	b = jsonenc.AppendString(b, o.Op)
	b = append(b, `,"path":`...)
	b = jsonenc.AppendString(b, o.Path)
	if o.Op != "remove" {
		b = append(b, `,"value":`...)
		var err error
		if b, err = appendValue(b, o.Value); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendValue encodes the value types the engine produces; anything else
// goes through encoding/json.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return jsonenc.AppendString(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case *object:
		b = append(b, '{')
		for i, k := range x.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, x.vals[i]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case *list:
		b = append(b, '[')
		for i, item := range x.items {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, item); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case volume:
		return x.appendJSON(b), nil
	case volumeMount:
		return x.appendJSON(b), nil
	case []string:
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, s)
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
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
	// size bounds the encoded patch from above as it grows, so the engine
	// stops at MaxPatchBytes instead of building a patch of any size.
	size int
}

// opOverhead is what an operation costs besides its path and value:
// {"op":"replace","path":,"value":},
const opOverhead = 36

func (b *ops) add(path string, v any) {
	b.size += opOverhead + stringSize(path) + valueSize(v)
	b.list = append(b.list, Operation{Op: "add", Path: path, Value: v})
}
func (b *ops) replace(path string, v any) {
	b.size += opOverhead + stringSize(path) + valueSize(v)
	b.list = append(b.list, Operation{Op: "replace", Path: path, Value: v})
}
func (b *ops) remove(path string) {
	b.size += opOverhead + stringSize(path)
	b.list = append(b.list, Operation{Op: "remove", Path: path})
}

// valueSize bounds a value's encoding from above. Objects and lists the
// engine creates count as empty here: their members are counted as they are
// set (obj.set, obj.append).
func valueSize(v any) int {
	switch x := v.(type) {
	case bool:
		return 5
	case string:
		return stringSize(x)
	case int64, int:
		return 20
	case volume:
		return 45 + stringSize(x.Name) + stringSize(x.EmptyDir.Medium) + stringSize(x.EmptyDir.SizeLimit)
	case volumeMount:
		return 22 + stringSize(x.Name) + stringSize(x.MountPath)
	case []string:
		n := 2
		for _, s := range x {
			n += stringSize(s) + 1
		}
		return n
	case map[string]any:
		n := 2
		for k, v := range x {
			n += stringSize(k) + 2 + valueSize(v)
		}
		return n
	}
	return 32 // new objects and lists
}

// stringSize bounds a JSON string's length: printable ASCII other than
// "\<>& is written as is; any other byte takes at most six (\u003c).
func stringSize(s string) int {
	n := 2
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			n += 6
		} else {
			n++
		}
	}
	return n
}

// obj is an object in the pod that the engine may add fields to. When it
// does not exist (absent or null), the first field set creates it with one
// `add` at its parent, and later fields go into that same new value; so a
// container without a securityContext gets one operation, not a chain that
// would fail on the missing parent. Its path is built only when an
// operation needs it: most objects the engine visits never get one.
type obj struct {
	b      *ops
	path   string
	pathOK bool
	exists bool
	parent *obj
	key    string
	// rawKey: key is already a pointer suffix ("containers/0").
	rawKey bool
	fields *object
	lists  []namedList
	// lbuf holds the first lists, so most objects allocate once.
	lbuf [1]namedList
	// index, when rawKey is set and key empty, is the array index below
	// the parent, turned into a path only when one is needed.
	index   int
	idxKind string
}

type namedList struct {
	key string
	l   *list
}

func newObj(b *ops, path string, exists bool, parent *obj, key string) *obj {
	return &obj{b: b, path: path, pathOK: true, exists: exists, parent: parent, key: key}
}

// at returns the JSON pointer of the object.
func (o *obj) at() string {
	if !o.pathOK {
		k := o.key
		switch {
		case o.rawKey && k == "":
			// One allocation for parent/kind/index.
			p := o.parent.at()
			b := make([]byte, 0, len(p)+len(o.idxKind)+8)
			b = append(append(append(append(b, p...), '/'), o.idxKind...), '/')
			o.path, o.pathOK = string(strconv.AppendInt(b, int64(o.index), 10)), true
			return o.path
		case !o.rawKey:
			k = escape(k)
		}
		o.path, o.pathOK = o.parent.at()+"/"+k, true
	}
	return o.path
}

// child returns the object at key below o.
func (o *obj) child(key string, exists bool) *obj {
	c := o.childValue(key, exists)
	return &c
}

func (o *obj) childValue(key string, exists bool) obj {
	return obj{b: o.b, exists: exists && o.exists, parent: o, key: key}
}

// set adds key: v (the key must be absent or null in the input).
func (o *obj) set(key string, v any) {
	if o.exists {
		o.b.add(o.at()+"/"+escape(key), v)
		return
	}
	if o.fields == nil {
		o.fields = &object{}
		o.fields.keys, o.fields.vals = o.fields.kbuf[:0], o.fields.vbuf[:0]
		o.parent.set(o.key, o.fields)
	}
	o.b.size += len(key) + 4 + valueSize(v)
	o.fields.keys = append(o.fields.keys, key)
	o.fields.vals = append(o.fields.vals, v)
}

// replace overwrites a value the user set (enforce mode only).
func (o *obj) replace(key string, v any) {
	o.b.replace(o.at()+"/"+escape(key), v)
}

// append adds v at the end of the array at key; exists says whether the
// array is present and non-null in the input. Appending keeps every entry
// the user wrote: a whole array is never replaced.
func (o *obj) append(key string, exists bool, v any) {
	if exists && o.exists {
		o.b.add(o.at()+"/"+escape(key)+"/-", v)
		return
	}
	for _, nl := range o.lists {
		if nl.key == key {
			o.b.size += 1 + valueSize(v)
			nl.l.items = append(nl.l.items, v)
			return
		}
	}
	o.b.size += valueSize(v)
	l := &list{}
	l.items = append(l.buf[:0], v)
	if o.lists == nil {
		o.lists = o.lbuf[:0]
	}
	o.lists = append(o.lists, namedList{key, l})
	o.set(key, l)
}

// object is a JSON object the engine creates, keys in the order set. The
// buffers hold the usual few fields without another allocation.
type object struct {
	keys []string
	vals []any
	kbuf [4]string
	vbuf [4]any
}

func (o *object) MarshalJSON() ([]byte, error) { return appendValue(nil, o) }

// list is an array the engine creates and may still append to.
type list struct {
	items []any
	buf   [1]any
}

func (l *list) MarshalJSON() ([]byte, error) { return appendValue(nil, l) }

func itoa(i int) string { return strconv.Itoa(i) }
