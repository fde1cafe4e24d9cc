// Command etcd is etcd v3.7.3 built from the Go module proxy, for the e2e
// control plane (Debian's etcd 3.4 degrades watch features).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
