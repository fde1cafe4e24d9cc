// Command archetype is the one program behind the e2e node's workload
// images: each image sets, in its config's Env, what the program does, so
// the images behave like the popular ones they stand for (a root web
// server binding port 80, a non-root app on 8080, a database writing its
// volume, a sleeper). What fails is logged as the program's last line and
// ends it with exit code 1, which is what the kubelet then reports.
//
//	ARCHETYPE_WRITE     comma-separated directories to write a file into at start
//	ARCHETYPE_LISTEN    address to serve HTTP on, readiness at /healthz
//	ARCHETYPE_UID       the uid the program must run as
//	ARCHETYPE_DATA_ENV  the variable (PGDATA) naming a data directory the
//	                    program creates and makes private (mode 0700), as
//	                    initdb does, then writes a file into
//	ARCHETYPE_DROP_TO   uid:gid; started as root, the program gives the data
//	                    directory to them and switches to them (what gosu
//	                    does in postgres's docker-entrypoint.sh)
//	ARCHETYPE_NOT_ROOT  refuse to run as uid 0, as postgres does
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
	data := ""
	if v := os.Getenv("ARCHETYPE_DATA_ENV"); v != "" {
		if data = os.Getenv(v); data == "" {
			return fmt.Errorf("%s is not set", v)
		}
	}
	if to := os.Getenv("ARCHETYPE_DROP_TO"); to != "" && os.Getuid() == 0 {
		if err := dropTo(to, data); err != nil {
			return err
		}
	}
	fmt.Printf("archetype: uid %d, gid %d\n", os.Getuid(), os.Getgid())
	if want := os.Getenv("ARCHETYPE_UID"); want != "" {
		if strconv.Itoa(os.Getuid()) != want {
			return fmt.Errorf("running as uid %d, this image needs uid %s", os.Getuid(), want)
		}
	}
	if os.Getenv("ARCHETYPE_NOT_ROOT") != "" && os.Getuid() == 0 {
		return errors.New("running as root is not permitted: run as the user who owns the data directory")
	}
	write := split(os.Getenv("ARCHETYPE_WRITE"))
	if data != "" {
		if err := os.MkdirAll(data, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(data, 0o700); err != nil {
			return fmt.Errorf("could not change permissions of the data directory: %w", err)
		}
		write = append(write, data)
	}
	for _, dir := range write {
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

// dropTo gives dir (when set) to uid:gid and switches to them for good.
func dropTo(to, dir string) error {
	u, g, ok := strings.Cut(to, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("ARCHETYPE_DROP_TO %q: want uid:gid", to)
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	return nil
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
