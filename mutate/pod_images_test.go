package mutate

import (
	"fmt"
	"testing"

	kjson "sigs.k8s.io/json"
)

func TestPodImageLookupInputs(t *testing.T) {
	var p Pod
	if err := kjson.UnmarshalCaseSensitivePreserveInts([]byte(`{"metadata":{"annotations":{"pod-hardener.io/exempt":" True "}},"spec":{
		"nodeSelector":{"kubernetes.io/arch":"arm64"},"serviceAccountName":"builder",
		"imagePullSecrets":[{"name":"a"},{"name":""},{"name":"a"},{"name":"b"}],
		"initContainers":[{"name":"i","image":"busybox"}],
		"containers":[{"name":"c","image":"nginx"},{"name":"d","image":"busybox"},{"name":"e"},{"name":"f","image":7}],
		"ephemeralContainers":[{"name":"old","image":"debug:1"},{"name":"new","image":"debug:2"}]}}`), &p); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(p.ImageRefs(nil)); got != "[busybox nginx debug:1 debug:2]" {
		t.Errorf("ImageRefs(all) = %s", got)
	}
	if got := fmt.Sprint(p.ImageRefs(map[string]bool{"new": true})); got != "[debug:2]" {
		t.Errorf("ImageRefs(new ephemeral) = %s", got)
	}
	if sa, secrets := p.PullCredentials(); sa != "builder" || fmt.Sprint(secrets) != "[a b]" {
		t.Errorf("PullCredentials = %s %v", sa, secrets)
	}
	if !p.ExemptRequested() {
		t.Error("exempt annotation not seen")
	}
	for _, c := range []struct{ pod, os, arch string }{
		{`{"spec":{}}`, "", ""},
		{`{"spec":{"nodeSelector":{"kubernetes.io/arch":"arm64"}}}`, "", "arm64"},
		{`{"spec":{"os":{"name":"windows"}}}`, "windows", ""},
		{`{"spec":{"nodeSelector":{"kubernetes.io/os":"linux","kubernetes.io/arch":"s390x"},"os":{"name":"windows"}}}`, "linux", "s390x"},
		{`{"spec":{"nodeSelector":"x","serviceAccountName":5,"imagePullSecrets":{}}}`, "", ""},
	} {
		var p Pod
		if err := kjson.UnmarshalCaseSensitivePreserveInts([]byte(c.pod), &p); err != nil {
			t.Fatal(err)
		}
		if os, arch := p.NodePlatform(); os != c.os || arch != c.arch {
			t.Errorf("%s: platform %s/%s, want %s/%s", c.pod, os, arch, c.os, c.arch)
		}
	}
}
