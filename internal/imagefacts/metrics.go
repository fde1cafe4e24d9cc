package imagefacts

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics carry no image names or registries, only closed sets: a pod
// chooses its images, and every distinct label value is a series kept for
// good.
type metrics struct {
	lookups  *prometheus.CounterVec
	cacheReq *prometheus.CounterVec
	failures *prometheus.CounterVec
	latency  prometheus.Histogram
	// The warm path's counters, resolved once: a labelled lookup hashes
	// its labels on every call.
	cachedLookups prometheus.Counter
	hits, misses  map[string]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pod_hardener_image_lookups_total",
			Help: "Image lookups by result: cached, fetched, error (the pod was hardened without the image's facts)."}, []string{"result"}),
		cacheReq: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pod_hardener_image_cache_requests_total",
			Help: "Image cache reads by cache (tag, digest) and result (hit, miss)."}, []string{"cache", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pod_hardener_image_lookup_errors_total",
			Help: "Image lookup failures by reason: timeout, unauthorized, not_found, rate_limited, registry_error, unreachable, malformed, too_large, platform, busy, skipped, invalid_reference, and user (a named USER not resolved)."}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pod_hardener_image_lookup_duration_seconds",
			Help:    "Time one review spent looking up its pod's images.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .25, .5, 1, 2, 5}}),
	}
	m.cachedLookups = m.lookups.WithLabelValues("cached")
	m.hits, m.misses = map[string]prometheus.Counter{}, map[string]prometheus.Counter{}
	for _, c := range []string{"tag", "digest"} {
		m.hits[c], m.misses[c] = m.cacheReq.WithLabelValues(c, "hit"), m.cacheReq.WithLabelValues(c, "miss")
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.lookups, m.cacheReq, m.failures, m.latency} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering image lookup metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) lookup(result string) {
	if result == "cached" {
		m.cachedLookups.Inc()
		return
	}
	m.lookups.WithLabelValues(result).Inc()
}
func (m *metrics) failure(why string) { m.failures.WithLabelValues(why).Inc() }
func (m *metrics) observe(d time.Duration) {
	m.latency.Observe(d.Seconds())
}

func (m *metrics) cache(which string, hit bool) {
	if hit {
		m.hits[which].Inc()
	} else {
		m.misses[which].Inc()
	}
}

func isNetwork(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}
