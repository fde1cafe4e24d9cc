// Package jsondiff says what a change to a JSON document lost: the tests'
// measure of "nothing the user wrote is removed or changed".
package jsondiff

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
)

// Lost returns the JSON pointers of the leaves of before whose value is
// missing or different in after. Explicit nulls in before count as unset,
// as the API server treats them, so filling one is not a loss; arrays may
// grow but not shrink or change their entries.
func Lost(before, after []byte) ([]string, error) {
	var a, b any
	if err := json.Unmarshal(before, &a); err != nil {
		return nil, fmt.Errorf("decoding the document before: %w", err)
	}
	if err := json.Unmarshal(after, &b); err != nil {
		return nil, fmt.Errorf("decoding the document after: %w", err)
	}
	var out []string
	var walk func(p string, x, y any)
	walk = func(p string, x, y any) {
		switch xv := x.(type) {
		case map[string]any:
			yv, ok := y.(map[string]any)
			if !ok {
				out = append(out, p)
				return
			}
			for k, v := range xv {
				if v != nil {
					walk(p+"/"+k, v, yv[k])
				}
			}
		case []any:
			yv, ok := y.([]any)
			if !ok || len(yv) < len(xv) {
				out = append(out, p)
				return
			}
			for i := range xv {
				walk(p+"/"+strconv.Itoa(i), xv[i], yv[i])
			}
		default:
			if !reflect.DeepEqual(x, y) {
				out = append(out, p)
			}
		}
	}
	walk("", a, b)
	sort.Strings(out)
	return out, nil
}
