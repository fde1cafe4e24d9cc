#!/usr/bin/env bash
# Builds the control plane the e2e tests and `make demo` run, from the Go
# module proxy (no Docker here): etcd v3.7.3, kube-apiserver,
# kube-controller-manager, kube-scheduler and the kubelet v1.37.2 (the real
# node's), kwok v0.8.0, and kubectl v1.37.2 (the e2e suite renders deploy/
# with its kustomize). Binaries are cached by version; a cached binary is
# not rebuilt. A cold build takes about 35 minutes on 2 cores beside other
# builds (kube-apiserver alone about 11, the kubelet about 8, kubectl about 6).
#
# Usage: e2e/build-binaries.sh [NAME...]  (default: all, what `make test`
#        and `make demo` need). Binaries go to
#        $POD_HARDENER_BIN_DIR, default ~/.cache/pod-hardener/k8s-v1.37.2.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${POD_HARDENER_BIN_DIR:-$HOME/.cache/pod-hardener/k8s-v1.37.2}"
wanted=" ${*:-etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kwok kubectl} "
mkdir -p "$dir"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"

build() { # name module-dir package [ldflags]
  local name=$1 mod=$2 pkg=$3 flags=${4:-}
  case "$wanted" in *" $name "*) ;; *) return ;; esac
  if [ -x "$dir/$name" ]; then
    echo "e2e: $name cached in $dir"
    return
  fi
  echo "e2e: building $name (first time only; progress every 30s)..."
  local start=$SECONDS
  ( while sleep 30; do echo "e2e:   still building $name ($((SECONDS - start))s)"; done ) &
  local ticker=$!
  if ! (cd "$here/$mod" && go build -ldflags "$flags" -o "$dir/$name.tmp" "$pkg"); then
    kill "$ticker" 2>/dev/null || true
    echo "e2e: building $name failed" >&2
    exit 1
  fi
  kill "$ticker" 2>/dev/null || true
  mv "$dir/$name.tmp" "$dir/$name"
  echo "e2e: built $name in $((SECONDS - start))s"
}

build etcd etcdbin . 
build kube-apiserver k8sbin k8s.io/kubernetes/cmd/kube-apiserver "$ldflags"
build kube-controller-manager k8sbin k8s.io/kubernetes/cmd/kube-controller-manager "$ldflags"
build kube-scheduler k8sbin k8s.io/kubernetes/cmd/kube-scheduler "$ldflags"
build kubelet k8sbin k8s.io/kubernetes/cmd/kubelet "$ldflags"
build kwok kwokbin sigs.k8s.io/kwok/cmd/kwok
build kubectl k8sbin k8s.io/kubernetes/cmd/kubectl "$ldflags"
# kwok's stage files (fake pod and node lifecycles) ship in its module.
if [[ "$wanted" == *" kwok "* && ! -d "$dir/kwok-stage" ]]; then
  src="$(cd "$here/kwokbin" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage"
  cp -r "$src" "$dir/kwok-stage"
  chmod -R u+w "$dir/kwok-stage"
fi
echo "e2e: binaries ready in $dir"
