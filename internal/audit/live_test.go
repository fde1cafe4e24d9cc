package audit

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/pod-hardener/pod-hardener/mutate"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// liveCluster: a namespace with a pod of each kind the webhook meets, one
// where config allows exemptions, and one whose rule selects baseline for
// a pod hardened under restricted.
func liveCluster(t *testing.T, cfg *profiles.Config) *fake.Clientset {
	t.Helper()
	shop := profiles.Facts{Namespace: "shop", NamespaceKnown: true}
	yes := true
	priv := plain("shop", "priv", nil)
	priv.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	ex := plain("exempt-by-config", "ex", nil)
	ex.Annotations = map[string]string{mutate.AnnotationExempt: "true"}
	applied := plain("shop", "applied", nil)
	applied.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: strings.Repeat("x", 4096)}
	applied.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	applied.Status.Phase = corev1.PodRunning
	objs := []runtime.Object{
		ns("shop", nil), ns("exempt-by-config", nil), ns("legacy-x", nil),
		plain("shop", "plain", nil),
		applied,
		hardenedBy(t, cfg, shop, plain("shop", "hard", nil)),
		priv,
		ex,
		hardenedBy(t, cfg, shop, plain("legacy-x", "old", nil)),
	}
	return fake.NewClientset(objs...)
}

// startLive runs a continuous audit of cs and returns it with a registry
// that exports it. The interval is long: tests call Pass themselves.
func startLive(t *testing.T, cs *fake.Clientset, nsLabel bool, cfg func() *profiles.Config) (*Live, *prometheus.Registry) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := NewLive(cs, LiveOptions{Interval: time.Hour, NamespaceLabel: nsLabel, Config: cfg})
	reg := prometheus.NewRegistry()
	reg.MustRegister(l)
	if err := l.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return l, reg
}

// series flattens what reg exports: `name{label=value,...}` to value.
func series(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			sort.Strings(ls)
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out
}

// waitFor polls the exported series until want holds (the informer
// delivers events asynchronously) and fails with what was seen.
func waitFor(t *testing.T, reg *prometheus.Registry, what string, want func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := series(t, reg)
		if want(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never seen; series:\n%s", what, dump(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dump(s map[string]float64) string {
	var lines []string
	for k, v := range s {
		lines = append(lines, fmt.Sprintf("  %s %g", k, v))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func pods(ns, status string) string {
	return "pod_hardener_audit_pods{namespace=" + ns + ",status=" + status + "}"
}

func TestLiveCountsStatuses(t *testing.T) {
	cfg := loadTestConfig(t)
	l, reg := startLive(t, liveCluster(t, cfg), true, func() *profiles.Config { return cfg })
	want := map[string]float64{
		pods("shop", "hardened"):                                                 1,
		pods("shop", "would-change"):                                             2,
		pods("shop", "conflict"):                                                 1,
		pods("shop", "exempt"):                                                   0,
		pods("exempt-by-config", "exempt"):                                       1,
		pods("legacy-x", "hardened"):                                             1,
		"pod_hardener_audit_exempted_pods{namespace=exempt-by-config}":           1,
		"pod_hardener_audit_unreviewed_pods{namespace=shop}":                     3,
		"pod_hardener_audit_drifted_pods{kind=profile,namespace=legacy-x}":       1,
		"pod_hardener_audit_drifted_pods{kind=still-changes,namespace=legacy-x}": 0,
		"pod_hardener_audit_drifted_pods{kind=profile,namespace=shop}":           0,
		"pod_hardener_audit_evaluation_errors_total{}":                           0,
	}
	s := waitFor(t, reg, "every pod evaluated and a pass done", func(s map[string]float64) bool {
		_, ran := s["pod_hardener_audit_last_run_timestamp_seconds{}"]
		return ran && s[pods("legacy-x", "hardened")] == 1 && s[pods("exempt-by-config", "exempt")] == 1 &&
			s[pods("shop", "hardened")]+s[pods("shop", "would-change")]+s[pods("shop", "conflict")] == 4
	})
	for k, v := range want {
		got, ok := s[k]
		if !ok || got != v {
			t.Errorf("%s = %g (exported: %t), want %g", k, got, ok, v)
		}
	}
	if ts := s["pod_hardener_audit_last_run_timestamp_seconds{}"]; time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last run timestamp %g is not now", ts)
	}
	// The informer's cache keeps what evaluation reads, not the rest.
	obj, ok, _ := l.pods.GetByKey("shop/applied")
	if !ok {
		t.Fatal("shop/applied not cached")
	}
	p := obj.(*corev1.Pod)
	if _, kept := p.Annotations[corev1.LastAppliedConfigAnnotation]; kept || p.ManagedFields != nil || p.Status.Phase != "" || p.Labels != nil {
		t.Errorf("cached pod keeps fields evaluation does not read: %+v", p.ObjectMeta)
	}
	if len(p.Spec.Containers) != 1 || p.Name != "applied" || p.Namespace != "shop" {
		t.Errorf("cached pod lost its spec or identity: %+v", p)
	}
}

func TestLiveFollowsUpdatesDeletesAndReloads(t *testing.T) {
	cfg := loadTestConfig(t)
	cs := liveCluster(t, cfg)
	var current atomic.Pointer[profiles.Config]
	current.Store(cfg)
	l, reg := startLive(t, cs, true, current.Load)
	waitFor(t, reg, "the initial counts", func(s map[string]float64) bool {
		return s[pods("shop", "conflict")] == 1 && s[pods("legacy-x", "hardened")] == 1
	})
	ctx := context.Background()
	priv, err := cs.CoreV1().Pods("shop").Get(ctx, "priv", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	priv.Spec.Containers[0].SecurityContext = nil
	if _, err := cs.CoreV1().Pods("shop").Update(ctx, priv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reg, "an update moves conflict to would-change", func(s map[string]float64) bool {
		return s[pods("shop", "conflict")] == 0 && s[pods("shop", "would-change")] == 3
	})
	if err := cs.CoreV1().Pods("shop").Delete(ctx, "hard", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods("legacy-x").Delete(ctx, "old", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reg, "deletes leave the counts, and an emptied namespace its series", func(s map[string]float64) bool {
		_, legacy := s[pods("legacy-x", "hardened")]
		_, drift := s["pod_hardener_audit_drifted_pods{kind=profile,namespace=legacy-x}"]
		return s[pods("shop", "hardened")] == 0 && !legacy && !drift
	})

	// A namespace relabelled: its pods are evaluated again at once.
	shop, err := cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shop.Labels = map[string]string{profiles.LabelProfile: "privileged"}
	if _, err := cs.CoreV1().Namespaces().Update(ctx, shop, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reg, "a namespace relabelled privileged: nothing would change", func(s map[string]float64) bool {
		return s[pods("shop", "would-change")] == 0 && s[pods("shop", "hardened")] == 3
	})
	shop.Labels = nil
	if _, err := cs.CoreV1().Namespaces().Update(ctx, shop, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reg, "the label removed again", func(s map[string]float64) bool {
		return s[pods("shop", "would-change")] == 3
	})

	// A reload reaches unchanged pods at the next pass: under privileged
	// nothing would change.
	relaxed, err := profiles.Parse([]byte("defaultProfile: privileged\n"))
	if err != nil {
		t.Fatal(err)
	}
	current.Store(relaxed)
	l.Pass()
	s := series(t, reg)
	if s[pods("shop", "hardened")] != 3 || s[pods("shop", "would-change")] != 0 {
		t.Errorf("after a reload and a pass, shop counts are not today's:\n%s", dump(s))
	}
}

func TestLiveWithoutNamespaceLabel(t *testing.T) {
	cfg := loadTestConfig(t)
	_, reg := startLive(t, liveCluster(t, cfg), false, func() *profiles.Config { return cfg })
	s := waitFor(t, reg, "every pod evaluated", func(s map[string]float64) bool {
		return s["pod_hardener_audit_pods{status=hardened}"]+s["pod_hardener_audit_pods{status=would-change}"]+
			s["pod_hardener_audit_pods{status=conflict}"]+s["pod_hardener_audit_pods{status=exempt}"] == 6
	})
	n := 0
	for k := range s {
		if strings.Contains(k, "namespace=") {
			t.Errorf("series with a namespace label: %s", k)
		}
		if strings.HasPrefix(k, "pod_hardener_audit_pods{") {
			n++
		}
	}
	if n != len(Statuses) {
		t.Errorf("%d pod series, want one per status (%d):\n%s", n, len(Statuses), dump(s))
	}
	for st, v := range map[string]float64{"hardened": 2, "would-change": 2, "conflict": 1, "exempt": 1} {
		if got := s["pod_hardener_audit_pods{status="+st+"}"]; got != v {
			t.Errorf("status %s: %g pods, want %g", st, got, v)
		}
	}
	if got := s["pod_hardener_audit_drifted_pods{kind=profile}"]; got != 1 {
		t.Errorf("drifted (profile): %g, want 1", got)
	}
}

// TestLiveCacheSharesReplicaSpecs: replicas that differ only in what the
// evaluation ignores (names, node, the token volume's suffix) share one
// spec in the informer's cache, and evaluate as before; a mirror pod keeps
// its node.
func TestLiveCacheSharesReplicaSpecs(t *testing.T) {
	cfg := loadTestConfig(t)
	l := NewLive(nil, LiveOptions{Config: func() *profiles.Config { return cfg }})
	slim := func(p *corev1.Pod) *corev1.Pod {
		t.Helper()
		o, err := l.slimPod(p)
		if err != nil {
			t.Fatal(err)
		}
		return o.(*corev1.Pod)
	}
	a, b := slim(replica(0, "abcde")), slim(replica(1, "vwxyz"))
	if &a.Spec.Containers[0] != &b.Spec.Containers[0] || &a.Spec.Volumes[0] != &b.Spec.Volumes[0] {
		t.Error("two replicas keep two copies of the same spec")
	}
	if a.Name != "web-7d9f-0" || b.UID != "uid-1" || b.ResourceVersion != "101" || a.Labels != nil || a.Spec.NodeName != "" {
		t.Errorf("slim pods: %+v / %+v", a.ObjectMeta, b.ObjectMeta)
	}
	withEnv := replica(4, "eeeee")
	withEnv.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_PASSWORD", Value: "hunter2"}}
	withEnv.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}
	if e := slim(withEnv); e.Spec.Containers[0].Env != nil || e.Spec.Containers[0].EnvFrom != nil {
		t.Errorf("the cache keeps environment variables: %+v", e.Spec.Containers[0].Env)
	} else if &e.Spec.Containers[0] != &a.Spec.Containers[0] {
		t.Error("a replica with environment variables does not share the spec of one without")
	}
	if withEnv.Spec.Containers[0].Env == nil {
		t.Error("slimPod changed the pod it was given")
	}
	f := profiles.Facts{Namespace: "apps", NamespaceKnown: true}
	full, err := newEvaluator(cfg).evaluate(f, withEnv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := newEvaluator(cfg).evaluate(f, a)
	if err != nil {
		t.Fatal(err)
	}
	if got.status != full.status || len(got.changes) != len(full.changes) || got.pssNow != full.pssNow {
		t.Errorf("a cached pod evaluates as %s (%d changes, %s), the pod as stored as %s (%d, %s)",
			got.status, len(got.changes), got.pssNow, full.status, len(full.changes), full.pssNow)
	}
	m := replica(3, "mmmmm")
	m.Annotations = map[string]string{mutate.AnnotationMirror: "x"}
	if r, err := newEvaluator(cfg).evaluate(f, slim(m)); err != nil || r.status != Exempt {
		t.Errorf("a cached mirror pod: %v, %v; want exempt", r, err)
	}
}
