package audit

import (
	"context"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// PolicyReport is a wgpolicyk8s.io/v1alpha2 PolicyReport, the fields this
// audit fills, written out so the project needs no dependency for it.
type PolicyReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Scope             *corev1.ObjectReference `json:"scope,omitempty"`
	Summary           PolicyReportSummary     `json:"summary"`
	Results           []PolicyReportResult    `json:"results"`
}

// PolicyReportSummary counts results by outcome.
type PolicyReportSummary struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

// PolicyReportResult is one finding about one workload.
type PolicyReportResult struct {
	Source     string                   `json:"source"`
	Policy     string                   `json:"policy"`
	Rule       string                   `json:"rule"`
	Category   string                   `json:"category"`
	Severity   string                   `json:"severity"`
	Timestamp  metav1.Timestamp         `json:"timestamp"`
	Result     string                   `json:"result"`
	Scored     bool                     `json:"scored"`
	Message    string                   `json:"message"`
	Resources  []corev1.ObjectReference `json:"resources"`
	Properties map[string]string        `json:"properties,omitempty"`
}

// PolicyReport outcomes and the rule of a hardened workload.
const (
	ResultPass = "pass"
	ResultFail = "fail"
	ResultWarn = "warn"
	ResultSkip = "skip"

	RuleHardened  = "hardened"
	reportName    = "pod-hardener-audit"
	reportPolicy  = "pod-hardener"
	reportSource  = "pod-hardener"
	reportSection = "Pod Security"
)

// PolicyReports builds one PolicyReport per namespace, in namespace order.
// A workload contributes one result per finding, so a report grows with
// workloads, not replicas: the size that made per-pod reports outgrow etcd.
func PolicyReports(r *Report) []PolicyReport {
	// result and severity of each kind of finding
	outcome := map[string][2]string{
		FindingChange: {ResultFail, "medium"}, FindingConflict: {ResultFail, "high"}, FindingRejected: {ResultFail, "high"},
		FindingExemption: {ResultSkip, "info"}, FindingDrift: {ResultWarn, "low"},
	}
	ts := metav1.Timestamp{Seconds: r.GeneratedAt.Unix()}
	byNS := map[string]*PolicyReport{}
	var out []*PolicyReport
	for _, ns := range r.Namespaces {
		pr := &PolicyReport{
			TypeMeta: metav1.TypeMeta{APIVersion: "wgpolicyk8s.io/v1alpha2", Kind: "PolicyReport"},
			ObjectMeta: metav1.ObjectMeta{Name: reportName, Namespace: ns.Name,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "pod-hardener"}},
			Results: []PolicyReportResult{},
		}
		byNS[ns.Name] = pr
		out = append(out, pr)
	}
	for _, wl := range r.Workloads {
		pr := byNS[wl.Namespace]
		res := corev1.ObjectReference{APIVersion: wl.APIVersion, Kind: wl.Kind, Name: wl.Name, Namespace: wl.Namespace}
		add := func(rule, result, severity, msg string, pods int) {
			pr.Results = append(pr.Results, PolicyReportResult{
				Source: reportSource, Policy: reportPolicy, Rule: rule, Category: reportSection,
				Severity: severity, Timestamp: ts, Result: result, Scored: true, Message: msg,
				Resources: []corev1.ObjectReference{res},
				Properties: map[string]string{
					"status": string(wl.Status), "pods": fmt.Sprint(pods), "workloadPods": fmt.Sprint(wl.Pods),
					"pssNow": string(wl.PSSNow), "pssAfter": string(wl.PSSAfter), "profile": strings.Join(wl.Profiles, ","),
				},
			})
			switch result {
			case ResultPass:
				pr.Summary.Pass++
			case ResultFail:
				pr.Summary.Fail++
			case ResultWarn:
				pr.Summary.Warn++
			case ResultSkip:
				pr.Summary.Skip++
			}
		}
		if wl.Status == Hardened && len(wl.Drift) == 0 {
			add(RuleHardened, ResultPass, "info", "the webhook would change nothing", wl.Pods)
		}
		for _, f := range wl.Findings() {
			o := outcome[f.Kind]
			add(f.Rule, o[0], o[1], f.Text, f.Pods)
		}
	}
	reports := make([]PolicyReport, len(out))
	for i, p := range out {
		reports[i] = *p
	}
	return reports
}

// WritePolicyReports writes the reports as a YAML stream, ready for
// `kubectl apply -f -` where the PolicyReport CRD is installed.
func WritePolicyReports(w io.Writer, r *Report) error {
	for i, pr := range PolicyReports(r) {
		b, err := yaml.Marshal(pr)
		if err != nil {
			return fmt.Errorf("writing PolicyReport %s: %w", pr.Namespace, err)
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return fmt.Errorf("writing PolicyReport: %w", err)
			}
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("writing PolicyReport: %w", err)
		}
	}
	return nil
}

// PolicyReportResource is the PolicyReport CRD's resource.
var PolicyReportResource = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}

// ApplyPolicyReports writes the reports to the cluster, creating each or
// replacing the one a previous audit wrote, and calls done after each.
// A namespace that has no pods in scope any more keeps its old report.
func ApplyPolicyReports(ctx context.Context, dyn dynamic.Interface, r *Report, done func(namespace, verb string)) error {
	for _, pr := range PolicyReports(r) {
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&pr)
		if err != nil {
			return fmt.Errorf("PolicyReport %s: %w", pr.Namespace, err)
		}
		u := &unstructured.Unstructured{Object: obj}
		client := dyn.Resource(PolicyReportResource).Namespace(pr.Namespace)
		verb := "created"
		cur, err := client.Get(ctx, pr.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			u.SetResourceVersion(cur.GetResourceVersion())
			_, err = client.Update(ctx, u, metav1.UpdateOptions{FieldManager: "pod-hardener"})
			verb = "updated"
		case apierrors.IsNotFound(err):
			_, err = client.Create(ctx, u, metav1.CreateOptions{FieldManager: "pod-hardener"})
		}
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("writing PolicyReport %s/%s: %w (is the wgpolicyk8s.io/v1alpha2 PolicyReport CRD installed?)", pr.Namespace, pr.Name, err)
		}
		if err != nil {
			return fmt.Errorf("writing PolicyReport %s/%s: %w", pr.Namespace, pr.Name, err)
		}
		if done != nil {
			done(pr.Namespace, verb)
		}
	}
	return nil
}
