// Command loadgen measures pod-hardener under load, from outside, beside a
// floor server measured in the same run (issue 5; docs/performance.md).
//
//	loadgen run [flags]          the webhook binary and the floor, HTTPS keep-alive,
//	                             closed and open loop, realistic reviews
//	loadgen floor-server [flags] the floor: decode the review and the pod, allow
//	loadgen apiserver [flags]    pod-create latency through a real kube-apiserver,
//	                             with and without the webhook registered
//	loadgen harden [flags]       CPU of `pod-hardener harden` on a file of N pods
//	loadgen profile [flags]      CPU profile of the /mutate handler in process
//	loadgen reviews [flags]      write the review bodies to files (for curl)
//	loadgen audit [flags]        `pod-hardener audit` over N pods on a real
//	                             kube-apiserver, beside a bare paginated list
//	loadgen list-pods [flags]    that list: every pod, a page at a time
//
// Every loop is bounded in count and time, and talks to 127.0.0.1 only.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"run":          runCmd,
		"floor-server": floorServerCmd,
		"apiserver":    apiserverCmd,
		"harden":       hardenCmd,
		"profile":      profileCmd,
		"reviews":      reviewsCmd,
		"audit":        auditCmd,
		"list-pods":    listPodsCmd,
	}
	f, ok := cmds[os.Args[1]]
	if !ok {
		usage()
		os.Exit(2)
	}
	if err := f(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: loadgen run|floor-server|apiserver|harden|profile|reviews|audit|list-pods [flags]   (-h for each)`)
}
