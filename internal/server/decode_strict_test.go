package server

import (
	"strings"
	"testing"
)

// The decision reads the mirror annotation and the ephemeral containers as
// the engine reads the pod: keys case-sensitive, a duplicate key an error.
// encoding/json would take "Annotations" for annotations and let the last
// of "ephemeralContainers" and "EphemeralContainers" win, so the decision
// and the engine would each read a different pod.
func TestDecisionReadsPodPartsLikeTheEngine(t *testing.T) {
	if hasMirrorAnnotation([]byte(`{"metadata":{"Annotations":{"kubernetes.io/config.mirror":"x"}}}`)) {
		t.Error(`a case variant "Annotations" read as the pod's annotations: a node's pod skipped as a mirror pod`)
	}
	if !hasMirrorAnnotation([]byte(`{"metadata":{"annotations":{"kubernetes.io/config.mirror":"x"}}}`)) {
		t.Error("the mirror annotation not found")
	}
	if hasMirrorAnnotation([]byte(`{"metadata":{"annotations":{"kubernetes.io/config.mirror":"x"},"annotations":{}}}`)) {
		t.Error("a pod with a duplicate key read as a mirror pod")
	}

	const old = `{"spec":{"ephemeralContainers":[{"name":"old"}]}}`
	added, err := newEphemeralContainers([]byte(old),
		[]byte(`{"spec":{"ephemeralContainers":[{"name":"old"},{"name":"debugger"}],"EphemeralContainers":[{"name":"old"}]}}`))
	if err != nil || !added["debugger"] || len(added) != 1 {
		t.Errorf("new ephemeral containers behind a case variant: %v, %v; want debugger", added, err)
	}
	_, err = newEphemeralContainers([]byte(old),
		[]byte(`{"spec":{"ephemeralContainers":[{"name":"old"},{"name":"debugger"}],"ephemeralContainers":[{"name":"old"}]}}`))
	if err == nil || !strings.Contains(err.Error(), "duplicate field") {
		t.Errorf("a duplicate ephemeralContainers key: error %v, want a duplicate field error", err)
	}
}
