// Command image builds pod-hardener's container image without Docker (what
// `make image` runs): the static binary as /pod-hardener on an empty base,
// uid and gid 65532 (the uid deploy/ runs it as), no shell, OCI media
// types. It writes an OCI image layout tarball and, with --push, pushes it.
//
//	go run ./e2e/cmd/image --binary bin/pod-hardener-static --out bin/pod-hardener-image.tar [--push REF] [--insecure]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pod-hardener/pod-hardener/internal/ociimage"
)

func main() {
	binary := flag.String("binary", "", "static pod-hardener binary (CGO_ENABLED=0)")
	out := flag.String("out", "", "OCI image layout tarball to write")
	ref := flag.String("ref", "ghcr.io/pod-hardener/pod-hardener:latest", "name recorded in the tarball")
	push := flag.String("push", "", "push the image to this reference (registry/repository:tag)")
	insecure := flag.Bool("insecure", false, "push over plain HTTP (a local registry)")
	flag.Parse()
	if err := run(*binary, *out, *ref, *push, *insecure); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(binary, out, ref, push string, insecure bool) error {
	if binary == "" || (out == "" && push == "") {
		return fmt.Errorf("--binary and one of --out or --push are required")
	}
	img, err := ociimage.Build(ociimage.PodHardener(binary))
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	if out != "" {
		if err := ociimage.WriteOCITarball(img, ref, out); err != nil {
			return err
		}
		fmt.Printf("image: wrote %s (%s, %s)\n", out, ref, d)
	}
	if push != "" {
		var opts []name.Option
		if insecure {
			opts = append(opts, name.Insecure)
		}
		r, err := name.ParseReference(push, opts...)
		if err != nil {
			return err
		}
		if err := remote.Write(r, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("pushing %s: %w", push, err)
		}
		fmt.Printf("image: pushed %s@%s\n", push, d)
	}
	return nil
}
