package audit

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/pod-hardener/pod-hardener/mutate"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// LiveOptions configure a continuous audit.
type LiveOptions struct {
	// Interval is how often every pod is evaluated again, so that config
	// reloads and namespace label changes reach pods that did not change.
	Interval time.Duration
	// NamespaceLabel exports one series per namespace; off, the series
	// are summed over the cluster (namespaces are the only open label set).
	NamespaceLabel bool
	// Config returns the config in use (the webhook's, reloads included).
	Config func() *profiles.Config
	Log    *slog.Logger
}

// Live keeps an audit of every pod current from a pod informer and exports
// it as Prometheus metrics (it is a prometheus.Collector). Each pod is
// evaluated exactly as `pod-hardener audit` evaluates it, when it is added
// or changed and again every Interval; a deleted pod leaves the counts.
// Series are computed from the per-pod results when scraped, so a
// namespace whose pods are all gone leaves no stale series behind.
type Live struct {
	o      LiveOptions
	client kubernetes.Interface
	pods   cache.Store
	nss    corelisters.NamespaceLister

	mu sync.Mutex
	// ready: both caches synced; pods are evaluated from then on.
	ready bool
	eval  *evaluator
	// results holds what the metrics need of each pod, by namespace/name.
	results  map[string]livePod
	lastRun  time.Time
	duration time.Duration
	failures float64

	// specs interns pod specs by content (slimPod): replicas share one.
	specsMu sync.Mutex
	specs   map[[sha256.Size]byte]*corev1.PodSpec

	podsDesc, driftDesc, exemptDesc, unreviewedDesc *prometheus.Desc
	lastDesc, durationDesc, failuresDesc            *prometheus.Desc
}

// livePod is one pod's verdict, a few bytes: 10,000 pods cost little.
type livePod struct {
	// eval evaluated it: a pass skips pods evaluated under the config in use.
	eval       *evaluator
	namespace  string
	status     Status
	drift      []string // drift kinds
	exempt     bool
	unreviewed bool
}

// driftKinds are the drift label's values.
var driftKinds = []string{DriftProfile, DriftStillChanges, DriftExemptions}

// NewLive prepares a continuous audit; Run starts it.
func NewLive(client kubernetes.Interface, o LiveOptions) *Live {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	var nsLabel []string
	if o.NamespaceLabel {
		nsLabel = []string{"namespace"}
	}
	with := func(extra ...string) []string { return append(append([]string(nil), nsLabel...), extra...) }
	return &Live{
		o: o, client: client, results: map[string]livePod{}, specs: map[[sha256.Size]byte]*corev1.PodSpec{},
		podsDesc: prometheus.NewDesc("pod_hardener_audit_pods",
			"Pods by audit status (hardened, exempt, would-change, conflict), as `pod-hardener audit` judges them.", with("status"), nil),
		driftDesc: prometheus.NewDesc("pod_hardener_audit_drifted_pods",
			"Pods hardened under a profile or exemptions other than today's, by kind (profile, still-changes, exemptions).", with("kind"), nil),
		exemptDesc: prometheus.NewDesc("pod_hardener_audit_exempted_pods",
			"Pods with exemptions in force (the whole pod or some controls).", with(), nil),
		unreviewedDesc: prometheus.NewDesc("pod_hardener_audit_unreviewed_pods",
			"Pods the webhook never reviewed (created before it, while it was down under failurePolicy Ignore, or outside its namespaceSelector).", with(), nil),
		lastDesc: prometheus.NewDesc("pod_hardener_audit_last_run_timestamp_seconds",
			"When the last pass ended, every pod's status then today's (Unix time).", nil, nil),
		durationDesc: prometheus.NewDesc("pod_hardener_audit_run_duration_seconds",
			"How long the last pass took (it evaluates the pods not yet evaluated under the config in use).", nil, nil),
		failuresDesc: prometheus.NewDesc("pod_hardener_audit_evaluation_errors_total",
			"Pods that could not be evaluated; they are left out of the counts.", nil, nil),
	}
}

// Run watches pods and namespaces until ctx ends. It returns once the
// informers are started; evaluation goes on in the background.
func (l *Live) Run(ctx context.Context) error {
	if l.o.Interval <= 0 {
		return fmt.Errorf("audit interval must be positive, got %s", l.o.Interval)
	}
	f := informers.NewSharedInformerFactory(l.client, 0)
	podInf := f.Core().V1().Pods().Informer()
	if err := podInf.SetTransform(l.slimPod); err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}
	nsInf := f.Core().V1().Namespaces()
	l.pods, l.nss = podInf.GetStore(), nsInf.Lister()
	_, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { l.update(obj) },
		UpdateFunc: func(_, obj any) { l.update(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
				l.mu.Lock()
				delete(l.results, key)
				l.mu.Unlock()
			}
		},
	})
	if err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}
	// A namespace's labels choose its pods' profile and exemptions: its
	// pods are evaluated again when they change, or when it arrives after
	// its pods did.
	podIndex := podInf.GetIndexer()
	_, err = nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { l.namespaceChanged(podIndex, obj) },
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*corev1.Namespace)
			n, ok2 := obj.(*corev1.Namespace)
			if ok1 && ok2 && !maps.Equal(o.Labels, n.Labels) {
				l.namespaceChanged(podIndex, obj)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("namespace informer: %w", err)
	}
	f.Start(ctx.Done())
	go func() {
		if !cache.WaitForCacheSync(ctx.Done(), podInf.HasSynced, nsInf.Informer().HasSynced) {
			return
		}
		// Until both caches are filled a pod's namespace may be missing
		// and its verdict wrong; events wait for the first pass.
		l.mu.Lock()
		l.ready = true
		l.mu.Unlock()
		l.o.Log.Info("audit informers synced", "pods", len(l.pods.ListKeys()))
		t := time.NewTicker(l.o.Interval)
		defer t.Stop()
		for {
			l.Pass()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// slimPod keeps of a pod what its evaluation reads, so the informer's
// cache holds little more than one spec per distinct pod: managed fields,
// labels, status, environment variables and kubectl's copy of the last
// applied manifest are dropped, and the spec is kept as the evaluation reads it (reviewed: no
// node, hostname or token volume suffix), its slices shared with every
// replica whose spec is the same. The node is kept for mirror pods, which
// the evaluation tells apart by it.
func (l *Live) slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	ann := p.Annotations
	if _, ok := ann[corev1.LastAppliedConfigAnnotation]; ok {
		ann = make(map[string]string, len(p.Annotations))
		for k, v := range p.Annotations {
			if k != corev1.LastAppliedConfigAnnotation {
				ann[k] = v
			}
		}
	}
	spec := reviewed(p).Spec
	// Environment variables, which may hold credentials, are read by
	// neither the engine nor the PSS checks: the cache does not keep them.
	spec.Containers, spec.InitContainers = withoutEnv(spec.Containers), withoutEnv(spec.InitContainers)
	if len(spec.EphemeralContainers) > 0 {
		spec.EphemeralContainers = append([]corev1.EphemeralContainer(nil), spec.EphemeralContainers...)
		for i := range spec.EphemeralContainers {
			spec.EphemeralContainers[i].Env, spec.EphemeralContainers[i].EnvFrom = nil, nil
		}
	}
	if raw, err := json.Marshal(&spec); err == nil {
		key := sha256.Sum256(raw)
		l.specsMu.Lock()
		if shared, ok := l.specs[key]; ok {
			spec = *shared
		} else {
			if len(l.specs) >= maxCached {
				clear(l.specs)
			}
			l.specs[key] = &spec
		}
		l.specsMu.Unlock()
	}
	if _, ok := ann[mutate.AnnotationMirror]; ok {
		spec.NodeName = p.Spec.NodeName
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, GenerateName: p.GenerateName,
			UID: p.UID, ResourceVersion: p.ResourceVersion, Annotations: ann, OwnerReferences: p.OwnerReferences},
		Spec: spec,
	}, nil
}

func withoutEnv(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return cs
	}
	out := append([]corev1.Container(nil), cs...)
	for i := range out {
		out[i].Env, out[i].EnvFrom = nil, nil
	}
	return out
}

// evaluatorLocked returns the evaluator for the config in use, a new one
// (with an empty cache) after a reload.
func (l *Live) evaluatorLocked() *evaluator {
	if cfg := l.o.Config(); l.eval == nil || l.eval.cfg != cfg {
		l.eval = newEvaluator(cfg)
	}
	return l.eval
}

// factsLocked are the webhook's facts for a pod created now in ns. A
// namespace not in the cache is treated as the webhook treats a failed
// lookup in the one-shot audit: default profile, no exemption.
func (l *Live) factsLocked(ns string) profiles.Facts {
	n, err := l.nss.Get(ns)
	if err != nil {
		return profiles.Facts{Namespace: ns}
	}
	return profiles.Facts{Namespace: ns, NamespaceLabels: n.Labels, NamespaceKnown: true}
}

func (l *Live) update(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ready {
		l.evaluateLocked(p.Namespace+"/"+p.Name, p)
	}
}

func (l *Live) namespaceChanged(pods cache.Indexer, obj any) {
	n, ok := obj.(*corev1.Namespace)
	if !ok {
		return
	}
	keys, err := pods.IndexKeys(cache.NamespaceIndex, n.Name)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ready {
		return
	}
	for _, key := range keys {
		l.evaluateKeyLocked(key)
	}
}

// evaluateKeyLocked evaluates the pod as the cache holds it now, so an
// update that arrived meanwhile is not overwritten by an older copy.
func (l *Live) evaluateKeyLocked(key string) {
	obj, ok, _ := l.pods.GetByKey(key)
	if !ok {
		delete(l.results, key)
		return
	}
	if p, ok := obj.(*corev1.Pod); ok {
		l.evaluateLocked(key, p)
	}
}

func (l *Live) evaluateLocked(key string, p *corev1.Pod) {
	r, err := l.evaluatorLocked().evaluate(l.factsLocked(p.Namespace), p)
	if err != nil {
		l.failures++
		delete(l.results, key)
		l.o.Log.Warn("audit: pod not evaluated", "pod", key, "error", err)
		return
	}
	lp := livePod{eval: l.eval, namespace: p.Namespace, status: r.status, exempt: r.exempted != "", unreviewed: !r.reviewed}
	for _, d := range r.drift {
		lp.drift = append(lp.drift, d.kind)
	}
	l.results[key] = lp
}

// Pass brings every pod in the informer's cache up to date, one at a
// time, so a scrape waits for one pod's evaluation at most. Pod changes
// and namespace relabelling are evaluated as they arrive; what a pass
// adds is a config reload (a new evaluator), so a pod already evaluated
// under the config in use is skipped.
func (l *Live) Pass() {
	start := time.Now()
	for _, key := range l.pods.ListKeys() {
		l.mu.Lock()
		if r, ok := l.results[key]; !ok || r.eval != l.evaluatorLocked() {
			l.evaluateKeyLocked(key)
		}
		l.mu.Unlock()
	}
	l.mu.Lock()
	l.lastRun, l.duration = time.Now(), time.Since(start)
	l.mu.Unlock()
}

// Describe is for prometheus.Collector.
func (l *Live) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{l.podsDesc, l.driftDesc, l.exemptDesc, l.unreviewedDesc, l.lastDesc, l.durationDesc, l.failuresDesc} {
		ch <- d
	}
}

// liveCounts are one namespace's (or, without the label, the cluster's).
type liveCounts struct {
	status     map[Status]int
	drift      map[string]int
	exempt     int
	unreviewed int
}

// Collect is for prometheus.Collector. Every status and drift kind is
// exported for each namespace with pods, zeros included, so a rate or an
// alert on a status has a series before its first pod.
func (l *Live) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	by := map[string]*liveCounts{}
	for _, p := range l.results {
		ns := ""
		if l.o.NamespaceLabel {
			ns = p.namespace
		}
		c := by[ns]
		if c == nil {
			c = &liveCounts{status: map[Status]int{}, drift: map[string]int{}}
			by[ns] = c
		}
		c.status[p.status]++
		for _, k := range p.drift {
			c.drift[k]++
		}
		if p.exempt {
			c.exempt++
		}
		if p.unreviewed {
			c.unreviewed++
		}
	}
	last, dur, failures := l.lastRun, l.duration, l.failures
	l.mu.Unlock()

	labels := func(ns string, extra ...string) []string {
		if !l.o.NamespaceLabel {
			return extra
		}
		return append([]string{ns}, extra...)
	}
	for ns, c := range by {
		for _, s := range Statuses {
			ch <- prometheus.MustNewConstMetric(l.podsDesc, prometheus.GaugeValue, float64(c.status[s]), labels(ns, string(s))...)
		}
		for _, k := range driftKinds {
			ch <- prometheus.MustNewConstMetric(l.driftDesc, prometheus.GaugeValue, float64(c.drift[k]), labels(ns, k)...)
		}
		ch <- prometheus.MustNewConstMetric(l.exemptDesc, prometheus.GaugeValue, float64(c.exempt), labels(ns)...)
		ch <- prometheus.MustNewConstMetric(l.unreviewedDesc, prometheus.GaugeValue, float64(c.unreviewed), labels(ns)...)
	}
	if !last.IsZero() {
		ch <- prometheus.MustNewConstMetric(l.lastDesc, prometheus.GaugeValue, float64(last.UnixNano())/1e9)
		ch <- prometheus.MustNewConstMetric(l.durationDesc, prometheus.GaugeValue, dur.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(l.failuresDesc, prometheus.CounterValue, failures)
}
