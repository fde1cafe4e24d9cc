package audit

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// BenchmarkEvaluate is the audit's cost per pod, beside what reading a pod
// costs anyway (docs/audit.md measures both against a real API server).
func BenchmarkEvaluate(b *testing.B) {
	cfg := profiles.Default()
	f := profiles.Facts{Namespace: "apps", NamespaceKnown: true}
	p := plain("apps", "web-1", ctrl("apps/v1", "ReplicaSet", "web-1"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := newEvaluator(cfg).evaluate(f, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluateReplicas: the replicas of one workload, reviewed once.
func BenchmarkEvaluateReplicas(b *testing.B) {
	cfg := profiles.Default()
	f := profiles.Facts{Namespace: "apps", NamespaceKnown: true}
	e := newEvaluator(cfg)
	pods := []*corev1.Pod{replica(0, "aaaaa"), replica(1, "bbbbb"), replica(2, "ccccc")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := e.evaluate(f, pods[i%3]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
