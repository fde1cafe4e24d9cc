#!/usr/bin/env bash
# Installs what the e2e suite's real node runs on: Debian's containerd,
# runc, the CNI plugins (bridge, host-local, loopback in /usr/lib/cni),
# iproute2 (network namespaces, veth) and iptables (the kubelet and the
# bridge plugin call it). Only what is missing is installed, so a machine
# that has them does no network call. Without root or apt-get it prints why
# and exits 0: the node tests then skip with that reason, the rest of the
# suite runs.
set -uo pipefail

need=()
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)

if [ ${#need[@]} -eq 0 ]; then
  echo "e2e: node dependencies present (containerd, runc, CNI plugins, iproute2, iptables)"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "e2e: missing ${need[*]} and cannot apt-get them (needs root and apt-get); node tests will skip"
  exit 0
fi
echo "e2e: installing ${need[*]} with apt-get (first time only)..."
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -q >/tmp/pod-hardener-apt.log 2>&1 ||
   ! apt-get install -y -q --no-install-recommends "${need[@]}" >>/tmp/pod-hardener-apt.log 2>&1; then
  echo "e2e: apt-get install ${need[*]} failed (log /tmp/pod-hardener-apt.log); node tests will skip"
  tail -5 /tmp/pod-hardener-apt.log
  exit 0
fi
# Debian starts the packaged containerd service when it can; the tests run
# their own containerd and never use it.
echo "e2e: installed ${need[*]}"
