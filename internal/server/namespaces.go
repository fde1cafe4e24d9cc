package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// InformerNamespaces reads namespace labels from a client-go informer's
// cache (RBAC: get, list, watch namespaces). A namespace missing from the
// cache (created a moment ago, or the informer not synced) is fetched
// directly; if that fails too, the error makes the decision fail safe.
type InformerNamespaces struct {
	client kubernetes.Interface
	lister corelisters.NamespaceLister
	synced cache.InformerSynced
	// Timeout bounds the direct lookup, well inside the webhook timeout.
	Timeout time.Duration
}

// NewInformerNamespaces starts a namespace informer; it stops with ctx.
func NewInformerNamespaces(ctx context.Context, client kubernetes.Interface, log *slog.Logger) *InformerNamespaces {
	f := informers.NewSharedInformerFactory(client, 10*time.Minute)
	inf := f.Core().V1().Namespaces()
	n := &InformerNamespaces{client: client, lister: inf.Lister(), synced: inf.Informer().HasSynced, Timeout: 2 * time.Second}
	f.Start(ctx.Done())
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), n.synced) {
			log.Info("namespace informer synced")
		}
	}()
	return n
}

// Synced reports whether the cache has been filled once (readiness).
func (n *InformerNamespaces) Synced() bool { return n.synced() }

// Labels returns the namespace's labels.
func (n *InformerNamespaces) Labels(ctx context.Context, name string) (map[string]string, error) {
	if n.synced() {
		ns, err := n.lister.Get(name)
		if err == nil {
			return ns.Labels, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("namespace cache: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, n.Timeout)
	defer cancel()
	ns, err := n.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("getting namespace: %w", err)
	}
	return ns.Labels, nil
}

// NoNamespaces is used without cluster access (no kubeconfig, not in a
// pod): namespace labels are not read, and config rules by name still apply.
type NoNamespaces struct{}

// Labels returns no labels and no error.
func (NoNamespaces) Labels(context.Context, string) (map[string]string, error) { return nil, nil }
