package manifest

import (
	"strings"
	"testing"
)

// TestWorkloads holds the finder to each workload kind's pod, on the
// one-pass read and on documents that read does not fit (which are found
// by pointer, or refused with the place that is wrong).
func TestWorkloads(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // pointer=pod
		err       string
	}{
		{"pod", `{"kind":"Pod","spec":{"containers":[]}}`, []string{`={"kind":"Pod","spec":{"containers":[]}}`}, ""},
		{"pod whose spec is not an object", `{"kind":"Pod","spec":"x"}`, []string{`={"kind":"Pod","spec":"x"}`}, ""},
		{"deployment", `{"kind":"Deployment","spec":{"template":{"spec":{}}}}`, []string{`/spec/template={"spec":{}}`}, ""},
		{"pod template", `{"kind":"PodTemplate","template":{"spec":{}}}`, []string{`/template={"spec":{}}`}, ""},
		{"cronjob", `{"kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"spec":{}}}}}}`, []string{`/spec/jobTemplate/spec/template={"spec":{}}`}, ""},
		{"deployment with a stray field of another shape", `{"kind":"Deployment","spec":{"jobTemplate":5,"template":{"spec":{}}}}`, []string{`/spec/template={"spec":{}}`}, ""},
		{"list", `{"kind":"List","items":[{"kind":"Service"},{"kind":"Job","spec":{"template":{"spec":{}}}}]}`, []string{`/items/1/spec/template={"spec":{}}`}, ""},
		{"other kind", `{"kind":"ConfigMap","data":{"a":"b"}}`, nil, ""},
		{"other kind whose spec is not an object", `{"kind":"Service","spec":"x"}`, nil, ""},
		{"deployment without a template", `{"kind":"Deployment","metadata":{"name":"web"},"spec":{}}`, nil, "Deployment web: no pod template at /spec/template"},
		{"deployment whose spec is not an object", `{"kind":"Deployment","spec":"x"}`, nil, "no object at /spec/template"},
		{"bad header", `{"kind":5}`, nil, "reading apiVersion/kind/metadata"},
		{"list item without a template", `{"kind":"List","items":[{"kind":"Job","spec":{}}]}`, nil, "item 0: Job (unnamed): no pod template at /spec/template"},
	} {
		ws, err := Workloads([]byte(tc.doc))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, w := range ws {
			got = append(got, w.Pointer+"="+string(w.Pod))
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s: found %q, want %q", tc.name, got, tc.want)
		}
	}
}
