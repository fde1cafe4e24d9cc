// Command archetype is the one program behind the e2e node's workload
// images: each image sets, in its config's Env, what the program does, so
// the images behave like the popular ones they stand for (a root web
// server binding port 80, a non-root app on 8080, a database writing its
// volume, a sleeper). What fails is logged as the program's last line and
// ends it with exit code 1, which is what the kubelet then reports.
//
//	ARCHETYPE_WRITE   comma-separated directories to write a file into at start
//	ARCHETYPE_LISTEN  address to serve HTTP on, readiness at /healthz
//	ARCHETYPE_UID     the uid the program must run as
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Println("archetype:", err)
		os.Exit(1)
	}
}

func run() error {
	fmt.Printf("archetype: uid %d, gid %d\n", os.Getuid(), os.Getgid())
	if want := os.Getenv("ARCHETYPE_UID"); want != "" {
		if strconv.Itoa(os.Getuid()) != want {
			return fmt.Errorf("running as uid %d, this image needs uid %s", os.Getuid(), want)
		}
	}
	for _, dir := range split(os.Getenv("ARCHETYPE_WRITE")) {
		p := filepath.Join(dir, "archetype-started")
		if err := os.WriteFile(p, []byte(time.Now().UTC().Format(time.RFC3339)), 0o644); err != nil {
			return err
		}
		fmt.Println("archetype: wrote", p)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	addr := os.Getenv("ARCHETYPE_LISTEN")
	if addr == "" {
		fmt.Println("archetype: sleeping until signalled")
		<-stop
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("archetype: serving on", l.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-stop:
		return srv.Close()
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
