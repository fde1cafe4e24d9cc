package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// writeSelfSigned writes a self-signed serving pair that expires at notAfter.
func writeSelfSigned(t *testing.T, dir string, notAfter time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "expiry"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCertificateExpiryGauge: the gauge says when the certificate being
// served expires, and follows a rotation (alerts on expiry read it).
func TestCertificateExpiryGauge(t *testing.T) {
	dir := t.TempDir()
	first := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	writeSelfSigned(t, dir, first)
	m := NewMetrics(prometheus.NewRegistry())
	r, err := NewCertReloader(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.CertNotAfter); got != float64(first.Unix()) {
		t.Fatalf("not-after gauge %v, want %v (%s)", got, first.Unix(), first)
	}
	second := first.AddDate(0, 3, 0)
	writeSelfSigned(t, dir, second)
	r.mu.Lock()
	r.lastCheck = time.Time{}
	r.mu.Unlock()
	c, err := r.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Leaf.NotAfter.Equal(second) {
		t.Fatalf("rotated certificate not served: NotAfter %s", c.Leaf.NotAfter)
	}
	if got := testutil.ToFloat64(m.CertNotAfter); got != float64(second.Unix()) {
		t.Fatalf("after rotation the gauge says %v, want %v (%s)", got, second.Unix(), second)
	}
}
