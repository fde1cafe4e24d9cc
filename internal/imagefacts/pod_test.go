package imagefacts

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestPlatformFor(t *testing.T) {
	arm := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	for _, c := range []struct {
		os, arch string
		def      v1.Platform
		want     string
	}{
		{"", "", DefaultPlatform, "linux/amd64"},
		{"", "arm64", DefaultPlatform, "linux/arm64"},
		{"windows", "", DefaultPlatform, "windows/amd64"},
		{"", "arm64", arm, "linux/arm64/v8"},
		{"", "amd64", arm, "linux/amd64"},
	} {
		if got := PlatformFor(c.os, c.arch, c.def).String(); got != c.want {
			t.Errorf("PlatformFor(%q, %q, %s) = %s, want %s", c.os, c.arch, c.def, got, c.want)
		}
	}
	for s, ok := range map[string]bool{"linux/amd64": true, "linux/arm64/v8": true, "amd64": false, "": false} {
		if _, err := ParsePlatform(s); (err == nil) != ok {
			t.Errorf("ParsePlatform(%q): %v", s, err)
		}
	}
}
