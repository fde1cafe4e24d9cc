package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/pod-hardener/pod-hardener/e2e/cluster"
)

// scrape reads the webhook's /metrics: each sample line's series, as
// written (name{labels}), to its value.
func scrape(t *testing.T, prefix string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(hook.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitAuditMetrics waits (a few audit intervals at most) until the
// webhook's continuous audit exports each series with its value.
func waitAuditMetrics(t *testing.T, want map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(10*cluster.AuditInterval + 20*time.Second)
	for {
		got := scrape(t, "pod_hardener_audit_")
		var wrong []string
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				wrong = append(wrong, fmt.Sprintf("%s = %g (exported: %t), want %g", k, g, ok, v))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(wrong)
			t.Fatalf("the continuous audit's metrics never matched:\n  %s", strings.Join(wrong, "\n  "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// prometheus is a Prometheus server the test started.
type prometheus struct {
	url string
}

// query runs an instant query and returns the result's type and how many
// samples it holds; a failed query is an error.
func (p *prometheus) query(q string) (string, int, error) {
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", 0, fmt.Errorf("query %s: %v: %s", q, err, b)
	}
	if r.Status != "success" {
		return "", 0, fmt.Errorf("query %s: %s", q, r.Error)
	}
	if r.Data.ResultType == "scalar" {
		return "scalar", 1, nil
	}
	var samples []json.RawMessage
	if err := json.Unmarshal(r.Data.Result, &samples); err != nil {
		return "", 0, fmt.Errorf("query %s: %v", q, err)
	}
	return r.Data.ResultType, len(samples), nil
}

// value runs a query expected to return one sample and returns it.
func (p *prometheus) value(t *testing.T, q string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, false // not up yet
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Data.Result) != 1 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// ruleFile is deploy/monitoring's PrometheusRule.
type ruleFile struct {
	Spec struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// dashboardExprs walks the dashboard JSON for every target's expr.
func dashboardExprs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if s, ok := c.(string); ok && k == "expr" {
				*out = append(*out, s)
				continue
			}
			dashboardExprs(c, out)
		}
	case []any:
		for _, c := range x {
			dashboardExprs(c, out)
		}
	}
}

var (
	// threshold splits an alert's expression into its value and comparison.
	threshold = regexp.MustCompile(`^(.*\S)\s+(>|<|>=|<=|==|!=)\s+[0-9.e+*\s]+$`)
	// selector finds the metric selectors an expression reads.
	selector = regexp.MustCompile(`\b((?:pod_hardener|kubewebhook)_[a-z_]+)(\{[^}]*\})?`)
)

// TestAuditPrometheus: a real Prometheus (Debian's package) scrapes the
// webhook, which runs its continuous audit, while pods of every kind are
// admitted; every query of deploy/monitoring's Grafana dashboard and
// every rule of its PrometheusRule (the alerts' values, and each selector
// they read) returns data, so neither can name a metric or label that
// does not exist. Prometheus itself loads the rules and evaluates them.
func TestAuditPrometheus(t *testing.T) {
	requireCluster(t)
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed and this test needs a real one: e2e/install-prometheus.sh (make e2e-bins) installs Debian's package; it could not here")
	}
	ctx := context.Background()
	root := repoRoot()
	dashRaw, err := os.ReadFile(filepath.Join(root, "deploy", "monitoring", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(dashRaw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var exprs []string
	dashboardExprs(dash, &exprs)
	rulesRaw, err := os.ReadFile(filepath.Join(root, "deploy", "monitoring", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules ruleFile
	if err := yaml.Unmarshal(rulesRaw, &rules); err != nil {
		t.Fatalf("PrometheusRule: %v", err)
	}
	if len(exprs) < 10 || len(rules.Spec.Groups) == 0 {
		t.Fatalf("read %d dashboard queries and %d rule groups", len(exprs), len(rules.Spec.Groups))
	}

	// Prometheus on loopback: the rule groups as its rule file, scraping
	// the webhook every second.
	dir := t.TempDir()
	var spec struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(rulesRaw, &spec); err != nil {
		t.Fatal(err)
	}
	groups, err := yaml.JSONToYAML(spec.Spec)
	if err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, groups, 0o644); err != nil {
		t.Fatal(err)
	}
	target := strings.TrimPrefix(hook.MetricsURL, "http://")
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: pod-hardener
    static_configs:
      - targets: [%q]
`, rulesPath, target)
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	port := cluster.FreePort()
	proc, err := env.Run("prometheus", bin, "--config.file", configPath, "--storage.tsdb.path", filepath.Join(dir, "data"),
		"--web.listen-address", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Stop(10 * time.Second) })
	prom := &prometheus{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	waitUntil(t, 30*time.Second, "Prometheus scraping the webhook (log "+proc.Log+")", func() bool {
		v, ok := prom.value(t, `up{job="pod-hardener"}`)
		return ok && v == 1
	})

	// Traffic over several scrapes, so rates have something to rate:
	// hardened pods, a conflict kept under onConflict warn, an exemption
	// honoured where config allows it, a namespace in report mode, and a
	// request refused before review.
	const nsProm, nsReport, nsExempt = "audit-prom", "audit-prom-report", "audit-prom-exempt"
	for ns, labels := range map[string]map[string]string{
		nsProm: nil, nsReport: {"pod-hardener.io/mode": "report"}, nsExempt: {"pod-hardener.io/allow-exemptions": "true"},
	} {
		if err := ensureNamespace(ctx, ns, labels); err != nil {
			t.Fatal(err)
		}
	}
	zero := int64(0)
	for _, ns := range []string{nsProm, nsReport, nsExempt} {
		sel := metav1.ListOptions{LabelSelector: auditLabel + "=prom"}
		if err := admin.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, sel); err != nil {
			t.Fatal(err)
		}
	}
	cs := quietClient(t)
	const rounds = 4
	for i := range rounds {
		mk := func(ns, name string, ann map[string]string, sc *corev1.SecurityContext) {
			t.Helper()
			p := plainPod(fmt.Sprintf("%s-%d", name, i))
			p.Labels = map[string]string{auditLabel: "prom"}
			p.Annotations = ann
			p.Spec.Containers[0].SecurityContext = sc
			if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating %s/%s: %v", ns, p.Name, err)
			}
		}
		yes := true
		mk(nsProm, "plain", nil, nil)
		mk(nsProm, "priv", nil, &corev1.SecurityContext{Privileged: &yes})
		mk(nsReport, "plain", nil, nil)
		mk(nsExempt, "exempt", map[string]string{"pod-hardener.io/exempt": "true"}, nil)
		time.Sleep(1500 * time.Millisecond)
	}
	// A request the webhook refuses before review (HTTP 405).
	ca, err := hook.CABundle()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(hook.URL)
	if err != nil {
		t.Fatalf("GET %s: %v", hook.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET %s: %s, want 405", hook.URL, resp.Status)
	}

	// The continuous audit, as Prometheus stored it, counts these pods.
	for q, want := range map[string]float64{
		`max(pod_hardener_audit_pods{namespace="` + nsProm + `",status="hardened"})`:       rounds,
		`max(pod_hardener_audit_pods{namespace="` + nsProm + `",status="conflict"})`:       rounds,
		`max(pod_hardener_audit_pods{namespace="` + nsReport + `",status="would-change"})`: rounds,
	} {
		waitUntil(t, 10*cluster.AuditInterval+20*time.Second, fmt.Sprintf("%s == %g", q, want), func() bool {
			v, ok := prom.value(t, q)
			return ok && v == want
		})
	}

	// Every dashboard query returns data.
	for _, q := range exprs {
		waitUntil(t, 30*time.Second, "dashboard query returning data: "+q, func() bool {
			_, n, err := prom.query(q)
			if err != nil {
				t.Fatalf("dashboard query: %v", err)
			}
			return n > 0
		})
	}
	t.Logf("%d dashboard queries returned data", len(exprs))

	// Every rule: Prometheus loaded and evaluated it without error; its
	// value (the expression without its threshold) and each selector it
	// reads return data.
	n := 0
	for _, g := range rules.Spec.Groups {
		for _, r := range g.Rules {
			n++
			if _, _, err := prom.query(r.Expr); err != nil {
				t.Errorf("rule %s: %v", r.Alert, err)
				continue
			}
			m := threshold.FindStringSubmatch(r.Expr)
			if m == nil {
				t.Errorf("rule %s: expression is not `<value> <op> <threshold>`: %s", r.Alert, r.Expr)
				continue
			}
			checks := []string{m[1]}
			for _, s := range selector.FindAllString(r.Expr, -1) {
				checks = append(checks, s)
			}
			for _, q := range checks {
				waitUntil(t, 30*time.Second, fmt.Sprintf("rule %s: %s returning data", r.Alert, q), func() bool {
					_, n, err := prom.query(q)
					return err == nil && n > 0
				})
			}
		}
	}
	waitUntil(t, 30*time.Second, "Prometheus evaluating every rule without error", func() bool {
		bad, evaluated := ruleHealth(t, prom)
		if len(bad) > 0 {
			t.Fatalf("rules Prometheus could not evaluate: %v", bad)
		}
		return evaluated == n
	})
	t.Logf("%d rules loaded, evaluated by Prometheus, and their values and selectors returned data", n)
}

// ruleHealth asks Prometheus which rules failed and how many were
// evaluated at least once.
func ruleHealth(t *testing.T, p *prometheus) (bad []string, evaluated int) {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name           string `json:"name"`
					Health         string `json:"health"`
					LastError      string `json:"lastError"`
					LastEvaluation string `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			if rule.Health == "err" {
				bad = append(bad, rule.Name+": "+rule.LastError)
			}
			if rule.Health == "ok" && !strings.HasPrefix(rule.LastEvaluation, "0001-") {
				evaluated++
			}
		}
	}
	return bad, evaluated
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
