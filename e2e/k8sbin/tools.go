//go:build tools

// Package k8sbin pins the Kubernetes binaries the e2e tests run:
// kube-apiserver, kube-controller-manager, kube-scheduler and the kubelet
// v1.37.2, and kubectl v1.37.2 to render deploy/ as `kubectl apply -k`
// does, built from the Go module proxy (no Docker on these machines, and a
// fresh one has no kubectl). It is its own module so the webhook's go.mod
// never sees Kubernetes' dependency graph.
package k8sbin

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
