package mutate

import "testing"

// BenchmarkJudge is what judging every hardened pod with the official
// evaluator would add to each review: apply the patch, decode the typed
// pod, run every check. Compare with BenchmarkHarden on the same pods;
// docs/security.md ("Judging the hardened pod") has the figures.
func BenchmarkJudge(b *testing.B) {
	for _, p := range benchPods {
		b.Run(p.name, func(b *testing.B) {
			r := harden(b, string(p.raw), Input{Profile: profile(b, "restricted")})
			if r.MayFail {
				b.Fatal("benchmark pod may fail: the judge would run anyway")
			}
			r.MayFail = true
			b.ReportAllocs()
			for b.Loop() {
				rr := *r
				rr.Warnings, rr.Failures = nil, nil
				if err := Residual(p.raw, &rr); err != nil {
					b.Fatal(err)
				}
				if len(rr.Failures) != 0 {
					b.Fatalf("hardened benchmark pod fails %v", rr.Failures)
				}
			}
		})
	}
}
