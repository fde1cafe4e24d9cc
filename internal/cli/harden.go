package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/pod-hardener/pod-hardener/internal/manifest"
	"github.com/pod-hardener/pod-hardener/mutate"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// hardenOptions are the flags shared by harden and check.
type hardenOptions struct {
	file            string
	profile         string
	namespace       string
	namespaceLabels map[string]string
	allowExemptions bool
}

func (o *hardenOptions) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "manifest file to read, or - for standard input (required)")
	f.StringVar(&o.profile, "profile", "", "profile for every workload (default: chosen as the webhook would, from namespace labels and config)")
	f.StringVar(&o.namespace, "namespace", "", "namespace of workloads that name none (default \"default\")")
	f.StringToStringVar(&o.namespaceLabels, "namespace-labels", nil, "labels of the workloads' namespace, e.g. pod-hardener.io/profile=baseline")
	f.BoolVar(&o.allowExemptions, "allow-exemptions", false, "honour exemption annotations whatever the config says")
	_ = cmd.MarkFlagRequired("file")
}

// hardened is one document after hardening.
type hardened struct {
	doc     manifest.Document
	out     []byte // the hardened document (JSON); nil when unreadable
	results []workloadResult
	err     error
}

type workloadResult struct {
	w   manifest.Workload
	res *mutate.Result
	ops []mutate.Operation
}

// run hardens every document of the input.
func (o *hardenOptions) run(cfg *profiles.Config, in io.Reader) ([]hardened, error) {
	r := in
	if o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return nil, &exitError{ExitInvalid, fmt.Errorf("opening manifest: %w", err)}
		}
		defer f.Close()
		r = f
	}
	docs, err := manifest.Read(r)
	if err != nil {
		return nil, &exitError{ExitInvalid, err}
	}
	if o.profile != "" {
		if _, ok := cfg.Profile(o.profile); !ok {
			return nil, &exitError{ExitInvalid, fmt.Errorf("unknown profile %q (known: %s)", o.profile, strings.Join(cfg.ProfileNames(), ", "))}
		}
	}
	out := make([]hardened, 0, len(docs))
	for _, d := range docs {
		out = append(out, o.hardenDoc(cfg, d))
	}
	return out, nil
}

func (o *hardenOptions) hardenDoc(cfg *profiles.Config, d manifest.Document) hardened {
	h := hardened{doc: d, err: d.Err}
	if d.Err != nil {
		return h
	}
	ws, err := manifest.Workloads(d.JSON)
	if err != nil {
		h.err = err
		return h
	}
	var all []mutate.Operation
	for _, w := range ws {
		ns := w.Header.Metadata.Namespace
		if ns == "" {
			ns = o.namespace
		}
		if ns == "" {
			ns = "default"
		}
		facts := profiles.Facts{Namespace: ns, NamespaceLabels: o.namespaceLabels, NamespaceKnown: true}
		if o.profile != "" {
			facts.NamespaceLabels = withLabel(o.namespaceLabels, profiles.LabelProfile, o.profile)
		}
		res, err := mutate.Review(cfg, w.Pod, facts, mutate.Options{Prefix: w.Pointer, ForceExemptions: o.allowExemptions})
		if err != nil {
			h.err = fmt.Errorf("%s: %w", w.Header.ID(), err)
			return h
		}
		h.results = append(h.results, workloadResult{w: w, res: res, ops: res.Operations})
		all = append(all, res.Operations...)
	}
	h.out = d.JSON
	if len(all) > 0 {
		pb, err := mutate.Patch(all)
		if err != nil {
			h.err = fmt.Errorf("encoding patch: %w", err)
			return h
		}
		p, err := jsonpatch.DecodePatch(pb)
		if err == nil {
			h.out, err = p.Apply(d.JSON)
		}
		if err != nil {
			// The engine's operations always apply to the document they were
			// computed from; failing here is a bug worth a loud message.
			h.err = fmt.Errorf("applying the engine's patch (please report this): %w", err)
			h.out = nil
		}
	}
	return h
}

func withLabel(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

func (h *hardened) name() string {
	return fmt.Sprintf("document %d", h.doc.Index)
}

func newHardenCmd(v *viper.Viper) *cobra.Command {
	var o hardenOptions
	var output string
	cmd := &cobra.Command{
		Use:   "harden -f FILE|-",
		Short: "Harden the pods of workload manifests offline, with the webhook's engine",
		Long: `Harden Pods and the pod templates of Deployment, StatefulSet, DaemonSet,
ReplicaSet, Job, CronJob, ReplicationController (any apiVersion) and Lists of
them. Input: multi-document YAML or JSON. Other kinds pass through unchanged.

Output (-o): yaml (hardened manifests), patch (the RFC 6902 patch of each
workload, against its document), diff (unified diff, before and after).
Warnings go to standard error.

Exit codes: 0 hardened; 1 invalid input or config (what could be read is
still written); 2 a conflict was denied by the profile (onConflict: deny).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "yaml", "patch", "diff":
			default:
				return &exitError{ExitInvalid, fmt.Errorf("-o %q: want yaml, patch or diff", output)}
			}
			cfg, err := loadConfig(v)
			if err != nil {
				return err
			}
			docs, err := o.run(cfg, cmd.InOrStdin())
			if err != nil {
				return err
			}
			return writeHardened(cmd.OutOrStdout(), cmd.ErrOrStderr(), docs, output)
		},
	}
	o.bind(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "yaml, patch or diff")
	return cmd
}

func writeHardened(stdout, stderr io.Writer, docs []hardened, output string) error {
	var invalid, denied []string
	first := true
	for _, h := range docs {
		for _, r := range h.results {
			for _, w := range r.res.Warnings {
				fmt.Fprintf(stderr, "warning: %s: %s\n", r.w.Header.ID(), w)
			}
			if r.res.Denied {
				denied = append(denied, r.w.Header.ID()+": "+r.res.Message)
			}
		}
		if h.err != nil {
			invalid = append(invalid, fmt.Sprintf("%s: %v", h.name(), h.err))
			continue
		}
		switch output {
		case "yaml":
			y, err := manifest.ToYAML(h.out, h.doc.Source)
			if err != nil {
				invalid = append(invalid, fmt.Sprintf("%s: %v", h.name(), err))
				continue
			}
			if !first {
				fmt.Fprintln(stdout, "---")
			}
			first = false
			stdout.Write(y)
		case "patch":
			for _, r := range h.results {
				pb, err := mutate.Patch(r.ops)
				if err != nil {
					return err
				}
				var buf bytes.Buffer
				_ = json.Indent(&buf, pb, "", "  ")
				fmt.Fprintf(stdout, "# %s (%s)\n%s\n", r.w.Header.ID(), h.name(), buf.Bytes())
			}
		case "diff":
			before, err1 := manifest.ToYAML(h.doc.JSON, h.doc.Source)
			after, err2 := manifest.ToYAML(h.out, h.doc.Source)
			if err1 != nil || err2 != nil {
				invalid = append(invalid, fmt.Sprintf("%s: rendering YAML failed", h.name()))
				continue
			}
			id := h.name()
			if len(h.results) > 0 {
				id = h.results[0].w.Header.ID()
			}
			fmt.Fprint(stdout, manifest.Diff(id+" (before)", id+" (hardened)", string(before), string(after)))
		}
	}
	for _, m := range invalid {
		fmt.Fprintln(stderr, "error:", m)
	}
	for _, m := range denied {
		fmt.Fprintln(stderr, "denied:", m)
	}
	switch {
	case len(invalid) > 0:
		return &exitError{ExitInvalid, fmt.Errorf("%d document(s) could not be hardened", len(invalid))}
	case len(denied) > 0:
		return &exitError{ExitDenied, fmt.Errorf("%d workload(s) denied by their profile", len(denied))}
	}
	return nil
}
