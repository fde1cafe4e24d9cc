#!/usr/bin/env bash
# Installs Debian's prometheus for the e2e test that scrapes the webhook and
# runs every dashboard query and alert expression (TestAuditPrometheus).
# Only when missing, so a machine that has it does no network call. The
# package's maintainer scripts would start a prometheus service on :9090;
# the test runs its own on a free loopback port, so services are kept from
# starting with a policy-rc.d (removed again unless one was already there)
# and nothing is left running. Without root or apt-get it prints why and
# exits 0: the test then skips with that reason.
set -uo pipefail

if command -v prometheus >/dev/null 2>&1; then
  echo "e2e: prometheus present ($(command -v prometheus))"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "e2e: prometheus missing and cannot apt-get it (needs root and apt-get); TestAuditPrometheus will skip"
  exit 0
fi
policy=/usr/sbin/policy-rc.d
ours=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && ours=1
fi
cleanup() { if [ "$ours" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
echo "e2e: installing prometheus with apt-get (first time only)..."
export DEBIAN_FRONTEND=noninteractive
log=/tmp/pod-hardener-apt-prometheus.log
if ! apt-get install -y -q --no-install-recommends prometheus >"$log" 2>&1; then
  if ! apt-get update -q >>"$log" 2>&1 ||
     ! apt-get install -y -q --no-install-recommends prometheus >>"$log" 2>&1; then
    echo "e2e: apt-get install prometheus failed (log $log); TestAuditPrometheus will skip"
    tail -5 "$log"
    exit 0
  fi
fi
echo "e2e: installed prometheus ($(prometheus --version 2>&1 | head -1))"
