package main

// The floor: the least any webhook built on typed objects pays. It serves
// HTTPS with the webhook's TLS and HTTP settings (TLS 1.2+, HTTP/1.1 only,
// the same timeouts and limits), reads the body, decodes the
// AdmissionReview and the pod into typed objects and answers "allowed",
// with no patch, no logging and no metrics.

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pod-hardener/pod-hardener/internal/admissiontest"
	"github.com/pod-hardener/pod-hardener/internal/server"
)

func floorServerCmd(args []string) error {
	fs := flag.NewFlagSet("floor-server", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:8444", "HTTPS address")
	cert := fs.String("cert", "", "serving certificate (PEM)")
	key := fs.String("key", "", "serving key (PEM)")
	patch := fs.Bool("patch", false, "answer with a one-operation JSON patch (an annotation): a mutating floor")
	_ = fs.Parse(args)
	if *cert == "" || *key == "" {
		return errors.New("floor-server: --cert and --key are required")
	}
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		return fmt.Errorf("floor-server: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mutate", floorHandler(*patch))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}, NextProtos: []string{"http/1.1"}},
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/2 off, as ours by default
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(os.Stderr, "floor: ", log.LstdFlags),
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	fmt.Fprintf(os.Stderr, "floor: serving on %s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// floorAnnotation is what the floor sets with --patch.
const floorAnnotation = admissiontest.FloorAnnotation

// floorWarning is the floor's answer to a dry run, and only to a dry run:
// it lets `loadgen apiserver` see that the floor is the webhook called.
const floorWarning = "loadgen floor webhook"

// floorHandler is the floor shared with the handler benchmarks.
func floorHandler(patch bool) http.Handler {
	return admissiontest.Floor{Patch: patch, MaxBody: server.MaxBodyBytes, DryRunWarning: floorWarning}
}
