package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pod-hardener/pod-hardener/internal/audit"
)

// startAudit runs the continuous audit (serve --audit-interval) with the
// decider's config, reloads included, and exports it on reg.
func startAudit(ctx context.Context, restCfg *rest.Config, o Options, d *Decider, reg prometheus.Registerer) error {
	if restCfg == nil {
		return errors.New("--audit-interval needs cluster access: --kubeconfig, or run in a pod")
	}
	// Protobuf: cheaper than JSON to decode, for every pod listed and
	// watched.
	pcfg := rest.CopyConfig(restCfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	client, err := kubernetes.NewForConfig(pcfg)
	if err != nil {
		return fmt.Errorf("kubernetes client for the audit: %w", err)
	}
	live := audit.NewLive(client, audit.LiveOptions{Interval: o.Config.Server.AuditInterval, NamespaceLabel: o.Config.Server.AuditNamespaceLabel, Config: d.Config, Log: o.Logger})
	if err := reg.Register(live); err != nil {
		return fmt.Errorf("audit metrics: %w", err)
	}
	return live.Run(ctx)
}
