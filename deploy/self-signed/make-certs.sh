#!/usr/bin/env bash
# make-certs.sh: the serving certificate of pod-hardener without cert-manager.
#
# Install (from the repository root, one command):
#   kubectl apply -k deploy/self-signed && deploy/self-signed/make-certs.sh
#
# It makes, with openssl only, a fresh CA and a serving certificate for the
# Service's DNS names (pod-hardener.pod-hardener.svc and
# pod-hardener.pod-hardener.svc.cluster.local), then with kubectl:
#   1. patches the CA into the caBundle of the MutatingWebhookConfiguration
#      pod-hardener, keeping the previous CA next to it, so the certificate
#      the pods serve now stays trusted until they have the new one;
#   2. creates or updates the Secret pod-hardener/pod-hardener-tls
#      (kubectl create secret tls --dry-run=client -o yaml | kubectl apply -f -).
# The kubelet updates the mounted Secret within about a minute and the server
# re-reads the files on its next handshake: no restart. The CA key is thrown
# away; every run makes a new CA.
#
# Rotate: run it again before the serving certificate expires (--days,
# default 365), and not twice within a couple of minutes (the caBundle keeps
# only the newest two CAs).
#
# Offline (no kubectl, nothing leaves the machine; CI and tests):
#   deploy/self-signed/make-certs.sh --print DIR
# writes DIR/ca.crt, DIR/tls.crt, DIR/tls.key and DIR/ca-bundle.b64 (the
# base64 caBundle value).
#
# Environment: KUBECTL (default "kubectl", e.g. "kubectl --context prod"),
# NAMESPACE, SERVICE, SECRET, WEBHOOK (defaults: pod-hardener,
# pod-hardener, pod-hardener-tls, pod-hardener) for a renamed install.
set -euo pipefail

NAMESPACE=${NAMESPACE:-pod-hardener}
SERVICE=${SERVICE:-pod-hardener}
SECRET=${SECRET:-pod-hardener-tls}
WEBHOOK=${WEBHOOK:-pod-hardener}
read -r -a KUBECTL_CMD <<<"${KUBECTL:-kubectl}"

usage() {
	cat <<EOF
Usage: make-certs.sh [--days N] [--print DIR]

  (no --print)   make a CA and serving certificate, patch the CA into the
                 caBundle of MutatingWebhookConfiguration $WEBHOOK and store
                 the Secret $NAMESPACE/$SECRET (needs kubectl, after
                 kubectl apply -k deploy/self-signed)
  --print DIR    only write ca.crt, tls.crt, tls.key and ca-bundle.b64 to
                 DIR; no kubectl
  --days N       validity of the serving certificate in days (default 365;
                 the CA gets ten years)
  -h, --help     this help
EOF
}

die() {
	echo "make-certs.sh: $*" >&2
	exit 1
}

print_dir=""
days=365
while [ $# -gt 0 ]; do
	case "$1" in
	--print)
		{ [ $# -ge 2 ] && [ -n "$2" ]; } || die "--print needs a directory"
		print_dir=$2
		shift 2
		;;
	--print=*)
		print_dir=${1#--print=}
		[ -n "$print_dir" ] || die "--print needs a directory"
		shift
		;;
	--days)
		[ $# -ge 2 ] || die "--days needs a number"
		days=$2
		shift 2
		;;
	--days=*)
		days=${1#--days=}
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown argument: $1"
		;;
	esac
done
case "$days" in
'' | *[!0-9]* | 0) die "--days must be a positive number, got '$days'" ;;
esac

command -v openssl >/dev/null 2>&1 || die "openssl not found (Debian/Ubuntu: apt-get install -y openssl)"

dns1="$SERVICE.$NAMESPACE.svc"
dns2="$SERVICE.$NAMESPACE.svc.cluster.local"

work=$(mktemp -d "${TMPDIR:-/tmp}/pod-hardener-certs.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 077

# A minimal config, so no system openssl.cnf is needed.
cat >"$work/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_serving]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:$dns1, DNS:$dns2
EOF

serial() { echo "0x$(openssl rand -hex 15)"; }

# CA: EC P-256, self-signed, ten years.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key" 2>/dev/null
openssl req -new -key "$work/ca.key" -config "$work/openssl.cnf" \
	-subj "/CN=pod-hardener webhook CA" -out "$work/ca.csr"
openssl x509 -req -in "$work/ca.csr" -signkey "$work/ca.key" -days 3650 -sha256 \
	-set_serial "$(serial)" -extfile "$work/openssl.cnf" -extensions v3_ca \
	-out "$work/ca.crt" 2>/dev/null

# Serving certificate for the Service's DNS names, signed by the CA.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/tls.key" 2>/dev/null
openssl req -new -key "$work/tls.key" -config "$work/openssl.cnf" \
	-subj "/CN=$dns1" -out "$work/tls.csr"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
	-days "$days" -sha256 -set_serial "$(serial)" \
	-extfile "$work/openssl.cnf" -extensions v3_serving \
	-out "$work/tls.crt" 2>/dev/null

openssl verify -CAfile "$work/ca.crt" "$work/tls.crt" >/dev/null ||
	die "the new serving certificate does not verify against the new CA"
expires=$(openssl x509 -in "$work/tls.crt" -noout -enddate | sed 's/^notAfter=//')

if [ -n "$print_dir" ]; then
	mkdir -p "$print_dir"
	cp "$work/ca.crt" "$work/tls.crt" "$print_dir/"
	cp "$work/tls.key" "$print_dir/tls.key"
	chmod 0644 "$print_dir/ca.crt" "$print_dir/tls.crt"
	chmod 0600 "$print_dir/tls.key"
	openssl base64 -A -in "$work/ca.crt" >"$print_dir/ca-bundle.b64"
	echo >>"$print_dir/ca-bundle.b64"
	chmod 0644 "$print_dir/ca-bundle.b64"
	echo "wrote $print_dir/ca.crt, tls.crt, tls.key, ca-bundle.b64"
	echo "serving certificate for $dns1, $dns2; expires $expires"
	exit 0
fi

# --- cluster mode --------------------------------------------------------
k() { "${KUBECTL_CMD[@]}" "$@"; }
command -v "${KUBECTL_CMD[0]}" >/dev/null 2>&1 || die "${KUBECTL_CMD[0]} not found (or use --print DIR)"
k get namespace "$NAMESPACE" >/dev/null ||
	die "namespace $NAMESPACE not found: run 'kubectl apply -k deploy/self-signed' first"
k get mutatingwebhookconfiguration "$WEBHOOK" >/dev/null ||
	die "MutatingWebhookConfiguration $WEBHOOK not found: run 'kubectl apply -k deploy/self-signed' first"

# Keep the CA the pods serve with now (the first one of the current bundle)
# trusted next to the new one until they have reloaded the new certificate.
cp "$work/ca.crt" "$work/bundle.pem"
old_b64=$(k get mutatingwebhookconfiguration "$WEBHOOK" -o 'jsonpath={.webhooks[0].clientConfig.caBundle}')
if [ -n "$old_b64" ]; then
	printf '%s' "$old_b64" | openssl base64 -d -A >"$work/old-bundle.pem" 2>/dev/null || true
	awk '/-----BEGIN CERTIFICATE-----/ { n++ } n == 1 { print } /-----END CERTIFICATE-----/ && n == 1 { exit }' \
		"$work/old-bundle.pem" >"$work/old-ca.pem"
	if openssl x509 -in "$work/old-ca.pem" -noout 2>/dev/null; then
		cat "$work/old-ca.pem" >>"$work/bundle.pem"
	fi
fi
bundle=$(openssl base64 -A -in "$work/bundle.pem")

# Every webhook of the configuration gets the bundle (there is one).
count=$(k get mutatingwebhookconfiguration "$WEBHOOK" -o 'jsonpath={range .webhooks[*]}x{end}')
ops=""
for ((i = 0; i < ${#count}; i++)); do
	ops="$ops${ops:+,}{\"op\":\"add\",\"path\":\"/webhooks/$i/clientConfig/caBundle\",\"value\":\"$bundle\"}"
done
[ -n "$ops" ] || die "MutatingWebhookConfiguration $WEBHOOK has no webhooks"
k patch mutatingwebhookconfiguration "$WEBHOOK" --type=json -p "[$ops]"

k -n "$NAMESPACE" create secret tls "$SECRET" \
	--cert="$work/tls.crt" --key="$work/tls.key" --dry-run=client -o yaml |
	k apply -f -

echo "caBundle of $WEBHOOK and Secret $NAMESPACE/$SECRET updated; serving certificate for $dns1 expires $expires."
echo "The pods pick it up within about a minute, without a restart. Watch: kubectl -n $NAMESPACE rollout status deployment/$SERVICE"
