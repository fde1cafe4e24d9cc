package imagefacts

import (
	"fmt"
	"testing"
)

func TestPodImagesAndPlatform(t *testing.T) {
	p, err := DecodePod([]byte(`{"metadata":{"annotations":{"pod-hardener.io/exempt":" True "}},"spec":{
		"nodeSelector":{"kubernetes.io/arch":"arm64"},
		"imagePullSecrets":[{"name":"a"},{"name":""},{"name":"a"},{"name":"b"}],
		"initContainers":[{"name":"i","image":"busybox"}],
		"containers":[{"name":"c","image":"nginx"},{"name":"d","image":"busybox"},{"name":"e"}],
		"ephemeralContainers":[{"name":"old","image":"debug:1"},{"name":"new","image":"debug:2"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(p.Images(nil)); got != "[busybox nginx debug:1 debug:2]" {
		t.Errorf("Images(all) = %s", got)
	}
	if got := fmt.Sprint(p.Images(map[string]bool{"new": true})); got != "[debug:2]" {
		t.Errorf("Images(new ephemeral) = %s", got)
	}
	if got := fmt.Sprint(p.PullSecrets()); got != "[a b]" {
		t.Errorf("PullSecrets = %s", got)
	}
	if !p.ExemptRequested() {
		t.Error("exempt annotation not seen")
	}
	for _, c := range []struct{ pod, want string }{
		{`{"spec":{}}`, "linux/amd64"},
		{`{"spec":{"nodeSelector":{"kubernetes.io/arch":"arm64"}}}`, "linux/arm64"},
		{`{"spec":{"os":{"name":"windows"}}}`, "windows/amd64"},
		{`{"spec":{"nodeSelector":{"kubernetes.io/os":"linux","kubernetes.io/arch":"s390x"},"os":{"name":"windows"}}}`, "linux/s390x"},
	} {
		p, err := DecodePod([]byte(c.pod))
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Platform(DefaultPlatform).String(); got != c.want {
			t.Errorf("%s: platform %s, want %s", c.pod, got, c.want)
		}
	}
}
