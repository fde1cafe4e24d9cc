package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	kjson "sigs.k8s.io/json"

	"github.com/pod-hardener/pod-hardener/internal/imagefacts"
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
	imageLookup     bool
	// images reads image facts when imageLookup is on; made by each.
	images *imagefacts.Resolver
}

func (o *hardenOptions) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "manifest file to read, or - for standard input (required)")
	f.StringVar(&o.profile, "profile", "", "profile for every workload (default: chosen as the webhook would, from namespace labels and config)")
	f.StringVar(&o.namespace, "namespace", "", "namespace of workloads that name none (default \"default\")")
	f.StringToStringVar(&o.namespaceLabels, "namespace-labels", nil, "labels of the workloads' namespace, e.g. pod-hardener.io/profile=baseline")
	f.BoolVar(&o.allowExemptions, "allow-exemptions", false, "honour exemption annotations whatever the config says")
	f.BoolVar(&o.imageLookup, "image-lookup", false, "read each image's config (USER, ports, volumes) from its registry, with the local docker credentials, and harden for it")
	_ = cmd.MarkFlagRequired("file")
}

// hardened is one document after hardening.
type hardened struct {
	doc     manifest.Document
	ops     []mutate.Operation // the engine's patch of the whole document
	results []workloadResult
	err     error
	out     []byte // the hardened document as JSON, once out() computed it
}

// json is the hardened document as JSON, computed when first asked for:
// YAML output is spliced from the patch and rarely needs it.
func (h *hardened) json() ([]byte, error) {
	if h.out != nil || h.err != nil {
		return h.out, h.err
	}
	if len(h.ops) == 0 {
		h.out = h.doc.JSON
		return h.out, nil
	}
	pb, err := mutate.Patch(h.ops)
	if err != nil {
		h.err = fmt.Errorf("encoding patch: %w", err)
		return nil, h.err
	}
	p, err := jsonpatch.DecodePatch(pb)
	if err == nil {
		h.out, err = p.Apply(h.doc.JSON)
	}
	if err != nil {
		// The engine's operations always apply to the document they were
		// computed from; failing here is a bug worth a loud message.
		h.err = fmt.Errorf("applying the engine's patch (please report this): %w", err)
		h.out = nil
	}
	return h.out, h.err
}

type workloadResult struct {
	w   manifest.Workload
	res *mutate.Result
	ops []mutate.Operation
}

// each hardens the documents of the input one at a time, in order, and
// hands each to fn: a large input is never held whole in memory.
func (o *hardenOptions) each(cfg *profiles.Config, in io.Reader, fn func(*hardened) error) error {
	tuneGCOffline()
	r := in
	if o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return &exitError{ExitInvalid, fmt.Errorf("opening manifest: %w", err)}
		}
		defer f.Close()
		r = f
	}
	if o.profile != "" {
		if _, ok := cfg.Profile(o.profile); !ok {
			return &exitError{ExitInvalid, fmt.Errorf("unknown profile %q (known: %s)", o.profile, strings.Join(cfg.ProfileNames(), ", "))}
		}
	}
	if o.imageLookup && o.images == nil {
		// Offline there is no admission deadline: a registry may take as
		// long as one fetch may.
		res, err := imagefacts.New(imagefacts.Config{Budget: cliLookupBudget, FetchTimeout: cliLookupBudget}, nil)
		if err != nil {
			return err
		}
		o.images = res
	}
	docs := manifest.NewReader(r)
	for {
		d, err := docs.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &exitError{ExitInvalid, err}
		}
		if err := fn(o.hardenDoc(cfg, *d)); err != nil {
			return err
		}
	}
}

func (o *hardenOptions) hardenDoc(cfg *profiles.Config, d manifest.Document) *hardened {
	h := &hardened{doc: d, err: d.Err}
	if d.Err != nil || d.CommentsOnly {
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
		// Offline, nothing cancels a run but an interrupt, which ends the
		// process.
		res, err := mutate.Review(context.Background(), cfg, w.Pod, facts, mutate.Options{Prefix: w.Pointer, ForceExemptions: o.allowExemptions,
			// The user asks for hardened manifests: a report mode is
			// noted, not obeyed.
			HardenReportMode: true, Images: o.lookupImages(cfg, w.Pod, facts)})
		if err != nil {
			h.err = fmt.Errorf("%s: %w", w.Header.ID(), err)
			return h
		}
		h.results = append(h.results, workloadResult{w: w, res: res, ops: res.Operations})
		all = append(all, res.Operations...)
	}
	h.ops = all
	return h
}

// cliLookupBudget bounds one workload's image lookup offline.
const cliLookupBudget = 20 * time.Second

// lookupImages reads the facts of a workload's images with the local
// docker config's credentials, as the webhook would with the pod's pull
// secrets; nil when lookup is off or the pod is exempt.
func (o *hardenOptions) lookupImages(cfg *profiles.Config, raw []byte, f profiles.Facts) mutate.ImageSet {
	if o.images == nil {
		return nil
	}
	var pod mutate.Pod
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, &pod); err != nil {
		return nil // the engine says what is wrong with the pod
	}
	if pod.ExemptRequested() && (o.allowExemptions || cfg.AuthorizeExemptions(f).Allowed) {
		return nil
	}
	return o.images.LookupPod(context.Background(), &pod, nil, imagefacts.DefaultPlatform, imagefacts.Request{Keychain: authn.DefaultKeychain})
}

// patchOps are the document's operations for the YAML renderer.
func (h *hardened) patchOps() ([]manifest.Op, error) {
	out := make([]manifest.Op, len(h.ops))
	for i, o := range h.ops {
		v, err := o.ValueJSON()
		if err != nil {
			return nil, fmt.Errorf("encoding patch: %w", err)
		}
		out[i] = manifest.Op{Op: o.Op, Path: o.Path, Value: v}
	}
	return out, nil
}

// yaml is the hardened document as YAML.
func (h *hardened) yaml(rd *manifest.Renderer) ([]byte, error) {
	ops, err := h.patchOps()
	if err != nil {
		return nil, err
	}
	return rd.Patched(&h.doc, ops, h.json)
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
			w := &hardenWriter{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), output: output, rd: manifest.NewRenderer()}
			err = o.each(cfg, cmd.InOrStdin(), w.write)
			return w.finish(err)
		},
	}
	o.bind(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "yaml, patch or diff")
	return cmd
}

// hardenWriter writes hardened documents as they come, and the errors
// and denials at the end.
type hardenWriter struct {
	stdout, stderr  io.Writer
	output          string
	rd              *manifest.Renderer
	invalid, denied []string
	wrote           bool
}

func (w *hardenWriter) write(h *hardened) error {
	for _, r := range h.results {
		if r.res.Mode == profiles.RolloutReport {
			fmt.Fprintf(w.stderr, "note: %s: mode report (%s): the webhook would admit it unchanged and only warn; shown hardened as mode harden would make it\n",
				r.w.Header.ID(), r.res.ModeSource)
		}
		for _, warning := range r.res.Warnings {
			fmt.Fprintf(w.stderr, "warning: %s: %s\n", r.w.Header.ID(), warning)
		}
		if r.res.Denied {
			w.denied = append(w.denied, r.w.Header.ID()+": "+r.res.Message)
		}
	}
	if h.err != nil {
		w.invalid = append(w.invalid, fmt.Sprintf("%s: %v", h.name(), h.err))
		return nil
	}
	switch w.output {
	case "yaml":
		rendered := w.rd.Rendered
		y, err := h.yaml(w.rd)
		if err != nil {
			w.invalid = append(w.invalid, fmt.Sprintf("%s: %v", h.name(), err))
			return nil
		}
		if w.rd.Rendered > rendered && manifest.HasComments(h.doc.Source) {
			// Say so rather than drop a user's comments silently.
			fmt.Fprintf(w.stderr, "note: %s: rewritten from its parsed form (flow style, YAML 1.1 values or a layout the changes cannot be spliced into): its comments are not kept\n", h.name())
		}
		if w.wrote {
			fmt.Fprintln(w.stdout, "---")
		}
		w.wrote = true
		_, _ = w.stdout.Write(y)
	case "patch":
		for _, r := range h.results {
			pb, err := mutate.Patch(r.ops)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			_ = json.Indent(&buf, pb, "", "  ")
			fmt.Fprintf(w.stdout, "# %s (%s)\n%s\n", r.w.Header.ID(), h.name(), buf.Bytes())
		}
	case "diff":
		before, err1 := w.rd.Original(&h.doc)
		after, err2 := h.yaml(w.rd)
		if err := errors.Join(err1, err2); err != nil {
			w.invalid = append(w.invalid, fmt.Sprintf("%s: rendering YAML: %v", h.name(), err))
			return nil
		}
		id := h.name()
		if len(h.results) > 0 {
			id = h.results[0].w.Header.ID()
		}
		fmt.Fprint(w.stdout, manifest.Diff(id+" (before)", id+" (hardened)", string(before), string(after)))
	}
	return nil
}

// finish reports what could not be hardened or was denied, after the
// error that ended reading, if any.
func (w *hardenWriter) finish(err error) error {
	for _, m := range w.invalid {
		fmt.Fprintln(w.stderr, "error:", m)
	}
	for _, m := range w.denied {
		fmt.Fprintln(w.stderr, "denied:", m)
	}
	switch {
	case err != nil:
		return err
	case len(w.invalid) > 0:
		return &exitError{ExitInvalid, fmt.Errorf("%d document(s) could not be hardened", len(w.invalid))}
	case len(w.denied) > 0:
		return &exitError{ExitDenied, fmt.Errorf("%d workload(s) denied by their profile", len(w.denied))}
	}
	return nil
}

// tuneGCOffline lets the collector run a quarter as often in harden and
// check unless GOGC is set: a run is short, and everything it reads stays
// live to the end, so the default spent about a fifth of the CPU of
// hardening 1,000 pods collecting garbage that was mostly still in use
// (docs/performance.md). Memory grows with the input, as it does anyway.
func tuneGCOffline() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
