// Command pause is the e2e node's sandbox image: it holds a pod's
// namespaces and sleeps until the runtime signals it, as the upstream
// pause container does, without an image from outside the machine.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
