package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pod-hardener/pod-hardener/internal/audit"
)

// ExitFindings: the audit found a workload with a status --fail-on names.
const ExitFindings = 3

// auditClient connects to the cluster; tests replace it with fakes. The
// dynamic client writes PolicyReports (--apply).
var auditClient = func(kubeconfig, context string, qps float32, burst int) (kubernetes.Interface, dynamic.Interface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("cluster access (--kubeconfig, KUBECONFIG, ~/.kube/config or in-cluster): %w", err)
	}
	cfg.QPS, cfg.Burst = qps, burst
	cfg.UserAgent = "pod-hardener-audit"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster client: %w", err)
	}
	return cs, dyn, nil
}

type auditFlags struct {
	kubeconfig, context string
	namespace, selector string
	output              string
	failOn              []string
	pageSize            int64
	qps                 float32
	burst               int
	apply               bool
}

func newAuditCmd(v *viper.Viper) *cobra.Command {
	var o auditFlags
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Report what the webhook would do to the pods already in a cluster, per workload and namespace",
		Long: `Review every pod in the cluster (or -n/-l selected) exactly as the webhook
would review it if it were created now, with the same config (--config: use
the webhook's config.yaml) and its namespace's labels, and group the results
by owning workload: Deployment (through its ReplicaSet), StatefulSet,
DaemonSet, Job, CronJob (through its Job), other owners, bare pods alone.

Per workload: status (hardened: the webhook would change nothing;
exempt: nothing changes because exemptions are in force; would-change;
conflict: an unsafe value set explicitly, kept, replaced or rejected by the
profile's onConflict), what would change, the Pod Security Standards level
now and after hardening, exemptions in force and the rule that allowed them,
and drift: pods hardened under another profile than today's, annotated
hardened yet still changed, or exempted at admission otherwise than today.
A per-namespace summary comes first.

The requester of a stored pod is unknown: exemptions are judged by config
and namespace only. An exemption the webhook recorded at admission that
only a requester listed in exemptions.subjects could have allowed is
reported exempt, "allowed by requester at admission (not verifiable)".

Pods are read in pages (--page-size) and summed per workload as they come;
a namespace's ReplicaSets and Jobs are listed once to find their owners.
RBAC: list pods and namespaces, list and get replicasets and jobs.

Output (-o): table (colour on a terminal), json, sarif (SARIF 2.1.0, one
rule per control plus drift and exemption, one result per workload
finding), policyreport (wgpolicyk8s.io/v1alpha2 PolicyReports, one per
namespace, printed as YAML; with --apply written to the cluster instead,
each created or replacing the pod-hardener-audit report of its namespace;
RBAC then also get, create and update policyreports).

Exit codes: 0 done; 1 invalid flags or config, or the cluster could not be
read; 3 a workload has a status named by --fail-on.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAudit(cmd, v, &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: KUBECONFIG, ~/.kube/config, else in-cluster)")
	f.StringVar(&o.context, "context", "", "kubeconfig context (default: the current one)")
	f.StringVarP(&o.namespace, "namespace", "n", "", "audit one namespace (default: all)")
	f.StringVarP(&o.selector, "selector", "l", "", "audit only pods matching this label selector")
	f.StringVarP(&o.output, "output", "o", "table", "table, json, sarif or policyreport")
	f.StringSliceVar(&o.failOn, "fail-on", nil, "exit 3 if a workload has one of these statuses: would-change, conflict, exempt, hardened (comma list)")
	f.Int64Var(&o.pageSize, "page-size", audit.DefaultPageSize, "objects per list request")
	f.Float32Var(&o.qps, "qps", 50, "requests per second to the API server")
	f.IntVar(&o.burst, "burst", 100, "burst of requests to the API server")
	f.BoolVar(&o.apply, "apply", false, "with -o policyreport: write the PolicyReports to the cluster (create or replace pod-hardener-audit in each namespace) instead of printing them")
	return cmd
}

func runAudit(cmd *cobra.Command, v *viper.Viper, o *auditFlags) error {
	var write func(io.Writer, *audit.Report) error
	switch o.output {
	case "table":
		colour := isTerminal(cmd.OutOrStdout()) && os.Getenv("NO_COLOR") == ""
		write = func(w io.Writer, r *audit.Report) error { return audit.WriteTable(w, r, colour) }
	case "json":
		write = audit.WriteJSON
	case "sarif":
		write = audit.WriteSARIF
	case "policyreport":
		write = audit.WritePolicyReports
	default:
		return &exitError{ExitInvalid, fmt.Errorf("-o %q: want table, json, sarif or policyreport", o.output)}
	}
	failOn := map[audit.Status]bool{}
	for _, s := range o.failOn {
		st, ok := audit.ParseStatus(strings.TrimSpace(s))
		if !ok {
			return &exitError{ExitInvalid, fmt.Errorf("--fail-on %q: want would-change, conflict, exempt or hardened", s)}
		}
		failOn[st] = true
	}
	if o.apply && o.output != "policyreport" {
		return &exitError{ExitInvalid, fmt.Errorf("--apply writes PolicyReports: use it with -o policyreport")}
	}
	if o.pageSize <= 0 {
		return &exitError{ExitInvalid, fmt.Errorf("--page-size %d: want a positive number", o.pageSize)}
	}
	cfg, _, err := loadConfig(v)
	if err != nil {
		return err
	}
	client, dyn, err := auditClient(o.kubeconfig, o.context, o.qps, o.burst)
	if err != nil {
		return &exitError{ExitInvalid, err}
	}
	opts := audit.Options{Namespace: o.namespace, LabelSelector: o.selector, PageSize: o.pageSize}
	stderr := cmd.ErrOrStderr()
	progress := isTerminal(stderr)
	if progress {
		opts.Progress = func(pods, workloads int) {
			fmt.Fprintf(stderr, "\raudit: %d pods read, %d workloads", pods, workloads)
		}
	}
	r, err := audit.Run(cmd.Context(), client, cfg, opts)
	if progress {
		fmt.Fprint(stderr, "\r\x1b[K")
	}
	if err != nil {
		return &exitError{ExitInvalid, fmt.Errorf("audit: %w", err)}
	}
	if o.apply {
		write = func(w io.Writer, r *audit.Report) error {
			return audit.ApplyPolicyReports(cmd.Context(), dyn, r, func(ns, verb string) {
				fmt.Fprintf(w, "policyreport.wgpolicyk8s.io/pod-hardener-audit %s in %s\n", verb, ns)
			})
		}
	}
	if err := write(cmd.OutOrStdout(), r); err != nil {
		return &exitError{ExitInvalid, err}
	}
	var failed []string
	for _, s := range audit.Statuses {
		if n := r.Totals.Workloads[s]; failOn[s] && n > 0 {
			failed = append(failed, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(failed) > 0 {
		return &exitError{ExitFindings, fmt.Errorf("--fail-on: %s workload(s)", strings.Join(failed, ", "))}
	}
	return nil
}

// isTerminal reports whether w is a terminal: colour and progress are for
// people, never for a pipe or a file.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
