package server

import (
	"strings"
	"testing"
)

// The latency histogram is fed as kubewebhook's measured wrapper feeds it:
// an answer that allows in the mutating histogram (mutated when it
// patches), a rejection in the validating one, every label from a closed
// set, the operation as the request names it.
func TestLatencyHistogramLabels(t *testing.T) {
	e := newEnv(t, nil)
	e.send(t, review{obj: futurePod}.JSON())
	e.send(t, review{obj: futurePod, dryRun: true}.JSON())
	e.send(t, review{obj: `{"spec":{"containers":"x"}}`}.JSON())
	e.send(t, review{op: "DELETE"}.JSON())
	want := map[string]uint64{
		`kubewebhook_mutating_webhook_review_duration_seconds{dry_run="false",mutated="true",operation="CREATE",resource_kind="v1/Pod",resource_namespace="",success="true",webhook_id="pod-hardener",webhook_version="v1"}`:    1,
		`kubewebhook_mutating_webhook_review_duration_seconds{dry_run="true",mutated="true",operation="CREATE",resource_kind="v1/Pod",resource_namespace="",success="true",webhook_id="pod-hardener",webhook_version="v1"}`:     1,
		`kubewebhook_mutating_webhook_review_duration_seconds{dry_run="false",mutated="false",operation="DELETE",resource_kind="v1/Pod",resource_namespace="",success="true",webhook_id="pod-hardener",webhook_version="v1"}`:   1,
		`kubewebhook_validating_webhook_review_duration_seconds{allowed="false",dry_run="false",operation="CREATE",resource_kind="v1/Pod",resource_namespace="",success="true",webhook_id="pod-hardener",webhook_version="v1"}`: 1,
	}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, mf := range mfs {
		if !strings.HasSuffix(mf.GetName(), "_review_duration_seconds") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			got[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetHistogram().GetSampleCount()
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d samples, want %d", k, got[k], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
}
