// Command pod-hardener: the hardening webhook and its offline CLI.
package main

import (
	"os"

	"github.com/pod-hardener/pod-hardener/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
