package manifest

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestReadWorkloadsAndYAMLOrder(t *testing.T) {
	in := `# comment only
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: apps}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: nginx, args: ["true", "8080"], zeta: 1, alpha: 2}]
---
apiVersion: v1
kind: Service
metadata: {name: svc}
---
: broken: [
---
apiVersion: batch/v1beta1
kind: CronJob
metadata: {name: cj}
spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: j}]}}}}}
`
	docs, err := Read(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 4 {
		t.Fatalf("got %d documents, want 4", len(docs))
	}
	if docs[2].Err == nil {
		t.Errorf("broken document read without error")
	}
	ws, err := Workloads(docs[0].JSON)
	if err != nil || len(ws) != 1 || ws[0].Pointer != "/spec/template" || ws[0].Header.ID() != "Deployment apps/web" {
		t.Fatalf("deployment: %v %+v", err, ws)
	}
	if ws, _ := Workloads(docs[1].JSON); len(ws) != 0 {
		t.Errorf("service has workloads: %+v", ws)
	}
	ws, err = Workloads(docs[3].JSON)
	if err != nil || len(ws) != 1 || ws[0].Pointer != "/spec/jobTemplate/spec/template" {
		t.Fatalf("cronjob: %v %+v", err, ws)
	}
	y, err := ToYAML(docs[0].JSON, docs[0].Source)
	if err != nil {
		t.Fatal(err)
	}
	s := string(y)
	if strings.Index(s, "zeta") > strings.Index(s, "alpha") || strings.Index(s, "kind") > strings.Index(s, "metadata") {
		t.Errorf("key order not kept:\n%s", s)
	}
	for _, want := range []string{`- "true"`, `- "8080"`, "apiVersion: apps/v1\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("YAML lacks %q:\n%s", want, s)
		}
	}
}

func TestDiff(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	b := "a\nb\nc\nX\nd\ne\nf\ng\nh\ni\nj\nk\n"
	got := Diff("before", "after", a, b)
	want := "--- before\n+++ after\n@@ -1,6 +1,7 @@\n a\n b\n c\n+X\n d\n e\n f\n@@ -8,3 +9,4 @@\n h\n i\n j\n+k\n"
	if got != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", got, want)
	}
	if Diff("a", "b", a, a) != "" {
		t.Fatal("equal texts give a diff")
	}
}

// Strings only YAML 1.1 reads as something else keep quotes when rendered,
// so kubectl (YAML 1.1) reads them back as the same strings.
func TestToYAMLQuotesYAML11Words(t *testing.T) {
	in := []byte(`{"Y":"yes","on":["n","0777","1_000","2001-12-14",".5","+1","0b11","~","<<"],"plain":"restricted","n":1,"t":true}`)
	y, err := ToYAML(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := yaml.YAMLToJSON(y)
	if err != nil || !sameJSON(back, in) {
		t.Errorf("rendered\n%s\nreads as %s (%v), want %s", y, back, err, in)
	}
	if !strings.Contains(string(y), "plain: restricted") || !strings.Contains(string(y), "t: true") {
		t.Errorf("plain values quoted needlessly:\n%s", y)
	}
}
