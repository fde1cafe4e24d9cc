package main

// The floor: the least any webhook built on typed objects pays. It serves
// HTTPS with the webhook's TLS and HTTP settings (TLS 1.2+, HTTP/1.1 only,
// the same timeouts and limits), reads the body, decodes the
// AdmissionReview and the pod into typed objects and answers "allowed",
// with no patch, no logging and no metrics.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

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
	mux.Handle("/mutate", floorHandler{patch: *patch})
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
const floorAnnotation = "loadgen.floor/seen"

// floorWarning is the floor's answer to a dry run, and only to a dry run.
const floorWarning = "loadgen floor webhook"

// floorHandler decodes the review and the pod and allows it; with patch,
// it also sets one annotation, so the API server pays for a mutation
// (applying a patch, re-running its mutating admission) as with ours.
type floorHandler struct{ patch bool }

func (f floorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, server.MaxBodyBytes+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > server.MaxBodyBytes {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &ar); err != nil || ar.Request == nil {
		http.Error(w, "bad review", http.StatusBadRequest)
		return
	}
	var pod corev1.Pod
	if err := json.Unmarshal(ar.Request.Object.Raw, &pod); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: ar.Request.UID, Allowed: true}
	if f.patch {
		op := `[{"op":"add","path":"/metadata/annotations","value":{"` + floorAnnotation + `":"true"}}]`
		if pod.Annotations != nil {
			op = `[{"op":"add","path":"/metadata/annotations/` + strings.ReplaceAll(floorAnnotation, "/", "~1") + `","value":"true"}]`
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = []byte(op), &pt
	}
	if ar.Request.DryRun != nil && *ar.Request.DryRun {
		// Lets `loadgen apiserver` see that the floor is the webhook called.
		resp.Warnings = []string{floorWarning}
	}
	out, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: ar.TypeMeta, Response: resp})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}
