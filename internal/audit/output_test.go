package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestTable(t *testing.T) {
	r, _ := runFixture(t, Options{})
	var b bytes.Buffer
	if err := WriteTable(&b, r, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "\x1b[") {
		t.Error("colour without a terminal")
	}
	nsAt := strings.Index(out, "NAMESPACE         PROFILE")
	wlAt := strings.Index(out, "WORKLOAD")
	if nsAt != 0 || wlAt < nsAt {
		t.Errorf("the namespace summary does not come first:\n%s", out)
	}
	for _, want := range []string{
		"apps              restricted  12    9          1         1       6             1",
		"apps              StatefulSet/db        conflict      1     restricted  privileged  privileged",
		"    conflict: containers[app]: securityContext.privileged=true, kept but unsafe",
		`    drift: hardened under profile "baseline"; selected today: "restricted" (e.g. old-profile)`,
		"    exempt: *, allowed by namespace \"team-x\" has label pod-hardener.io/allow-exemptions=true",
		"    exemption annotations ignored: namespace \"apps\" does not allow exemptions",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// With colour, columns still line up: each row's PODS column starts at
	// the same visible offset.
	b.Reset()
	if err := WriteTable(&b, r, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), statusColour[Conflict]+"conflict"+resetCode) {
		t.Error("no colour on a terminal")
	}
	plainLines := strings.Split(out, "\n")
	colourLines := strings.Split(b.String(), "\n")
	if len(plainLines) != len(colourLines) {
		t.Fatalf("%d lines plain, %d coloured", len(plainLines), len(colourLines))
	}
	for i := range plainLines {
		if visibleLen(colourLines[i]) != len(plainLines[i]) {
			t.Errorf("line %d: coloured width %d, plain %d:\n%q\n%q", i, visibleLen(colourLines[i]), len(plainLines[i]), colourLines[i], plainLines[i])
		}
	}
}

func TestJSON(t *testing.T) {
	r, _ := runFixture(t, Options{})
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Totals.Pods != r.Totals.Pods || len(back.Workloads) != len(r.Workloads) || back.Namespaces[0].Name != "apps" {
		t.Errorf("round trip: %+v", back.Totals)
	}
	w := byName(&back)["apps/Deployment/web"]
	if w == nil || w.Status != WouldChange || w.APIVersion != "apps/v1" || len(w.Changes) == 0 {
		t.Errorf("web after JSON: %+v", w)
	}
}

// TestSARIF checks what SARIF 2.1.0 requires of a log, a run, a tool, a
// rule and a result, and that the results are one per workload finding.
func TestSARIF(t *testing.T) {
	r, _ := runFixture(t, Options{})
	var b bytes.Buffer
	if err := WriteSARIF(&b, r); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Version string `json:"version"`
		Schema  string `json:"$schema"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string `json:"name"`
					Rules []struct {
						ID               string `json:"id"`
						ShortDescription struct {
							Text string `json:"text"`
						} `json:"shortDescription"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Level     string `json:"level"`
				Message   struct {
					Text string `json:"text"`
				} `json:"message"`
				Locations []struct {
					LogicalLocations []struct {
						FullyQualifiedName string `json:"fullyQualifiedName"`
					} `json:"logicalLocations"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name == "" {
		t.Fatalf("log: version %q, %d runs", log.Version, len(log.Runs))
	}
	run := log.Runs[0]
	ids := map[string]bool{}
	for _, ru := range run.Tool.Driver.Rules {
		if ids[ru.ID] || ru.ShortDescription.Text == "" {
			t.Errorf("rule %q: duplicate or undescribed", ru.ID)
		}
		ids[ru.ID] = true
	}
	for _, c := range profiles.ControlNames {
		if !ids[c] {
			t.Errorf("no rule for control %s", c)
		}
	}
	levels := map[string]bool{"none": true, "note": true, "warning": true, "error": true}
	perWorkload := map[string]int{}
	for i, res := range run.Results {
		if res.RuleIndex < 0 || res.RuleIndex >= len(run.Tool.Driver.Rules) || run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("result %d: ruleIndex %d does not name rule %q", i, res.RuleIndex, res.RuleID)
		}
		if res.Message.Text == "" || !levels[res.Level] || len(res.Locations) != 1 || len(res.Locations[0].LogicalLocations) != 1 {
			t.Errorf("result %d incomplete: %+v", i, res)
			continue
		}
		perWorkload[res.Locations[0].LogicalLocations[0].FullyQualifiedName+" "+res.RuleID+" "+res.Level]++
	}
	want := 0
	for _, w := range r.Workloads {
		want += len(w.Changes) + len(w.Conflicts) + len(w.Exemptions) + len(w.Drift)
	}
	if len(run.Results) != want {
		t.Errorf("%d results, want %d (one per finding)", len(run.Results), want)
	}
	for k, n := range map[string]int{
		"apps/StatefulSet/db privileged error":     1,
		"apps/Pod/old-profile drift warning":       2,
		"team-x/DaemonSet/agent exemption note":    1,
		"apps/Deployment/web runAsNonRoot warning": 1,
	} {
		if perWorkload[k] != n {
			t.Errorf("%s: %d results, want %d", k, perWorkload[k], n)
		}
	}
	if perWorkload["apps/Deployment/api hardened"] != 0 {
		t.Error("a hardened workload has results")
	}
}

func TestPolicyReports(t *testing.T) {
	r, _ := runFixture(t, Options{})
	var b bytes.Buffer
	if err := WritePolicyReports(&b, r); err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(b.String(), "\n---\n")
	if len(docs) != len(r.Namespaces) {
		t.Fatalf("%d documents, want one per namespace (%d)", len(docs), len(r.Namespaces))
	}
	results := map[string]bool{ResultPass: true, ResultFail: true, ResultWarn: true, "error": true, ResultSkip: true}
	severities := map[string]bool{"critical": true, "high": true, "medium": true, "low": true, "info": true}
	seen := map[string]string{}
	for _, d := range docs {
		var pr PolicyReport
		if err := yaml.UnmarshalStrict([]byte(d), &pr); err != nil {
			t.Fatal(err)
		}
		if pr.APIVersion != "wgpolicyk8s.io/v1alpha2" || pr.Kind != "PolicyReport" || pr.Name == "" || pr.Namespace == "" {
			t.Errorf("header: %+v %+v", pr.TypeMeta, pr.ObjectMeta)
		}
		var sum PolicyReportSummary
		for _, res := range pr.Results {
			if !results[res.Result] || !severities[res.Severity] || res.Policy == "" || res.Rule == "" || res.Message == "" || res.Timestamp.Seconds == 0 {
				t.Errorf("%s: result incomplete: %+v", pr.Namespace, res)
			}
			if len(res.Resources) != 1 || res.Resources[0].Namespace != pr.Namespace || res.Resources[0].Kind == "" || res.Resources[0].APIVersion == "" {
				t.Errorf("%s: resources %+v", pr.Namespace, res.Resources)
			}
			switch res.Result {
			case ResultPass:
				sum.Pass++
			case ResultFail:
				sum.Fail++
			case ResultWarn:
				sum.Warn++
			case ResultSkip:
				sum.Skip++
			}
			ref := res.Resources[0]
			seen[ref.Namespace+"/"+ref.Kind+"/"+ref.Name+" "+res.Rule] = res.Result
		}
		if sum != pr.Summary {
			t.Errorf("%s: summary %+v, results say %+v", pr.Namespace, pr.Summary, sum)
		}
	}
	for k, want := range map[string]string{
		"apps/Deployment/api hardened":                  ResultPass,
		"apps/StatefulSet/db privileged":                ResultFail,
		"apps/Deployment/web seccompProfile":            ResultFail,
		"team-x/DaemonSet/agent exemption":              ResultSkip,
		"apps/Pod/old-profile drift":                    ResultWarn,
		"apps/CronJob/nightly allowPrivilegeEscalation": ResultFail,
	} {
		if seen[k] != want {
			t.Errorf("%s: %q, want %q", k, seen[k], want)
		}
	}
}
