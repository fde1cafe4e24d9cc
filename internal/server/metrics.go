package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pod-hardener/pod-hardener/mutate"
)

// Metrics are pod-hardener's own Prometheus metrics; kubewebhook's
// recorder adds the review latency histogram beside them. Every label value
// comes from a closed set (code, config, or a bucket such as "other"),
// never from a request as sent: each distinct value is a series held for
// good, so a client could otherwise grow memory and /metrics without bound.
type Metrics struct {
	Reviews           *prometheus.CounterVec
	Patches           *prometheus.CounterVec
	WouldPatch        *prometheus.CounterVec
	Exemptions        *prometheus.CounterVec
	Conflicts         *prometheus.CounterVec
	ConfigReloads     *prometheus.CounterVec
	NamespaceFailures prometheus.Counter
	Panics            prometheus.Counter
	BadRequests       *prometheus.CounterVec
	Unreviewed        *prometheus.CounterVec
	CertReloads       *prometheus.CounterVec
	CertNotAfter      prometheus.Gauge
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Reviews: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pod_hardener_reviews_total",
			Help: "Admission reviews by operation and result (hardened, unchanged, denied, skipped, error; in report mode would-harden, would-deny)."}, []string{"operation", "result"}),
		Patches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pod_hardener_patches_total",
			Help: "Fields set by hardening, by profile and control."}, []string{"profile", "control"}),
		WouldPatch: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pod_hardener_report_changes_total",
			Help: "Fields report mode would have set, by profile and control; nothing was patched."}, []string{"profile", "control"}),
		Exemptions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pod_hardener_exemptions_total",
			Help: "Exemption requests by result (honoured, refused)."}, []string{"result"}),
		Conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pod_hardener_conflicts_total",
			Help: "Explicit unsafe values by control and action (warn, enforce, deny)."}, []string{"control", "action"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pod_hardener_config_reloads_total",
			Help: "config.yaml reloads by result (success, error)."}, []string{"result"}),
		NamespaceFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "pod_hardener_namespace_lookup_failures_total",
			Help: "Namespace lookups that failed; the pod was hardened with the default profile and no exemption."}),
		Panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "pod_hardener_panics_total",
			Help: "Panics recovered while serving a request."}),
		BadRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pod_hardener_bad_requests_total",
			Help: "Requests refused before review, by HTTP status."}, []string{"code"}),
		Unreviewed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pod_hardener_unreviewed_total",
			Help: "Reviews answered allowed: false unread, by reason (too_large, busy)."}, []string{"reason"}),
		CertReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pod_hardener_certificate_reloads_total",
			Help: "Serving certificate reloads by result (success, error)."}, []string{"result"}),
		CertNotAfter: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pod_hardener_certificate_not_after_timestamp_seconds",
			Help: "When the serving certificate in use expires (Unix time); set on every load."}),
	}
	// The failure and reload series exist from the start, at 0: an alert's rate()
	// then has data before the first failure, and a query naming them
	// is known to be valid.
	m.Reviews.WithLabelValues("CREATE", "error")
	m.Unreviewed.WithLabelValues("too_large")
	m.Unreviewed.WithLabelValues("busy")
	m.ConfigReloads.WithLabelValues("error")
	m.ConfigReloads.WithLabelValues("success")
	reg.MustRegister(m.Reviews, m.Patches, m.WouldPatch, m.Exemptions, m.Conflicts, m.ConfigReloads, m.NamespaceFailures, m.Panics, m.BadRequests, m.Unreviewed, m.CertReloads, m.CertNotAfter)
	return m
}

// The methods below accept a nil receiver, so decisions run without
// metrics in tests.

func (m *Metrics) observe(r *mutate.Result) {
	if m == nil {
		return
	}
	// One counter update per control and field, not per container: each
	// labelled lookup hashes its labels.
	changes := m.Patches
	if r.Report {
		changes = m.WouldPatch
	}
	for _, c := range r.Changes {
		changes.WithLabelValues(r.Profile, c.Control).Add(float64(c.Count))
	}
	for _, c := range r.Conflicts {
		m.Conflicts.WithLabelValues(c.Control, string(c.Action)).Inc()
	}
	if len(r.Exempted) > 0 {
		m.Exemptions.WithLabelValues("honoured").Inc()
	}
	if r.Refused {
		m.Exemptions.WithLabelValues("refused").Inc()
	}
}

func (m *Metrics) review(op, result string) {
	if m != nil {
		m.Reviews.WithLabelValues(operationLabel(op), result).Inc()
	}
}

// labelOther buckets a label value outside its closed set.
const labelOther = "other"

// operationLabel keeps the admission operations as they are and buckets
// anything else.
func operationLabel(op string) string {
	switch op {
	case "CREATE", "UPDATE", "DELETE", "CONNECT":
		return op
	}
	return labelOther
}

func (m *Metrics) unreviewed(reason string) {
	if m != nil {
		m.Unreviewed.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) namespaceFailure() {
	if m != nil {
		m.NamespaceFailures.Inc()
	}
}

func (m *Metrics) panicked() {
	if m != nil {
		m.Panics.Inc()
	}
}

func (m *Metrics) badRequest(code string) {
	if m != nil {
		m.BadRequests.WithLabelValues(code).Inc()
	}
}

func (m *Metrics) configReload(result string) {
	if m != nil {
		m.ConfigReloads.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) certExpiry(t time.Time) {
	if m != nil {
		m.CertNotAfter.Set(float64(t.Unix()))
	}
}

func (m *Metrics) certReload(result string) {
	if m != nil {
		m.CertReloads.WithLabelValues(result).Inc()
	}
}
