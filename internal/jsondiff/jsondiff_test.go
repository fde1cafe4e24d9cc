package jsondiff

import (
	"reflect"
	"testing"
)

func TestLost(t *testing.T) {
	cases := []struct {
		before, after string
		want          []string
	}{
		{`{"a":1,"b":{"c":[1,2]}}`, `{"a":1,"b":{"c":[1,2,3]},"d":4}`, nil},
		{`{"a":1,"b":{"c":[1,2]}}`, `{"b":{"c":[2]}}`, []string{"/a", "/b/c"}},
		{`{"a":null,"b":"x"}`, `{"a":{"filled":true},"b":"y"}`, []string{"/b"}},
		{`{"a":{"b":1}}`, `{"a":[1]}`, []string{"/a"}},
		{`{"a":[{"x":1}]}`, `{"a":[{"x":2}]}`, []string{"/a/0/x"}},
	}
	for _, c := range cases {
		got, err := Lost([]byte(c.before), []byte(c.after))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Lost(%s, %s) = %v, want %v", c.before, c.after, got, c.want)
		}
	}
	if _, err := Lost([]byte(`{`), []byte(`{}`)); err == nil {
		t.Error("broken JSON accepted")
	}
}
