package e2e

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAPIServerRestart: the API server goes away and comes back. The
// webhook's namespace informer loses its connection; the webhook keeps
// running, and once the API server returns, hardening goes on and label
// changes made after the restart are seen (the informer reconnected), for
// an old namespace and for one created after the restart.
func TestAPIServerRestart(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	if err := ensureNamespace(ctx, "restart-old", map[string]string{"pod-hardener.io/profile": "baseline"}); err != nil {
		t.Fatal(err)
	}
	p, err := admin.CoreV1().Pods("restart-old").Create(ctx, plainPod(uniqueName("before")), metav1.CreateOptions{})
	if err != nil || p.Annotations["pod-hardener.io/hardened"] != "baseline" {
		t.Fatalf("before the restart: %v %v", err, p.Annotations)
	}
	start := time.Now()
	if err := env.RestartAPIServer(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver back after %s", time.Since(start).Round(100*time.Millisecond))
	if hook.Proc.Exited() {
		t.Fatalf("the webhook died with the API server (log %s)", hook.Proc.Log)
	}
	labels := getNamespace(t, "restart-old")
	labels["pod-hardener.io/profile"] = "strict-deny"
	if err := ensureNamespace(ctx, "restart-old", labels); err != nil {
		t.Fatal(err)
	}
	if err := ensureNamespace(ctx, "restart-new", map[string]string{"pod-hardener.io/profile": "baseline"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"restart-old": "strict-deny", "restart-new": "baseline"}
	deadline := time.Now().Add(60 * time.Second)
	for ns, profile := range want {
		for {
			p, err := admin.CoreV1().Pods(ns).Create(ctx, plainPod(uniqueName("after")), metav1.CreateOptions{})
			if err == nil && p.Annotations["pod-hardener.io/hardened"] == profile {
				break
			}
			if time.Now().After(deadline) {
				got := ""
				if p != nil {
					got = p.Annotations["pod-hardener.io/hardened"]
				}
				t.Fatalf("%s: after the restart pods get %q (err %v), want %q", ns, got, err, profile)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}
