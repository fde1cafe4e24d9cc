//go:build tools

// Package kwokbin pins kwok v0.8.0, which fakes a node for the e2e tests so
// Deployments get Running pods without a kubelet.
package kwokbin

import _ "sigs.k8s.io/kwok/cmd/kwok"
