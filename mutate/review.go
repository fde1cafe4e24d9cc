package mutate

import (
	"context"
	"errors"
	"fmt"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// Options are the parts of Input that depend on where the pod comes from.
type Options struct {
	EphemeralOnly map[string]bool
	Prefix        string
	// ForceExemptions authorizes exemptions regardless of config (the CLI's
	// --allow-exemptions, for a user hardening their own manifests).
	ForceExemptions bool
	// HardenReportMode hardens even where the selected mode is report: the
	// CLI, whose user asks for hardened manifests or for what hardening
	// would change. Result.Mode still says which mode was selected.
	HardenReportMode bool
	// Raw gives the pod's JSON to ReviewPod (Review has it), read only
	// when the hardened pod must be judged (Result.MayFail).
	Raw RawPod
	// Images are the facts of the images the pod's containers run, looked
	// up by the caller; nil when image-aware hardening is off.
	Images ImageSet
}

// RawPod gives a pod's JSON on demand. An interface, not a func: a method
// value made per review would be one more allocation on the hot path.
type RawPod interface {
	RawPod() ([]byte, error)
}

type rawPod []byte

func (r rawPod) RawPod() ([]byte, error) { return r, nil }

// Review is the whole decision for one pod, shared by the webhook and the
// CLI: decode, authorize exemptions, select the profile, harden. It stops
// with the context's error when ctx is done.
func Review(ctx context.Context, cfg *profiles.Config, raw []byte, f profiles.Facts, o Options) (*Result, error) {
	pod, err := decodePod(raw)
	if err != nil {
		return nil, err
	}
	if o.Raw == nil {
		o.Raw = rawPod(raw)
	}
	return review(ctx, cfg, pod, f, o)
}

// ReviewPod is Review for a pod decoded as part of another document. A
// pass leaves the view saying what its operations set (later controls
// read what earlier ones set), so the view then describes the hardened
// pod, not the document: operations computed from it again would be
// against the wrong document. A second ReviewPod of the same Pod is
// therefore an error; decode the document again to review it again.
func ReviewPod(ctx context.Context, cfg *profiles.Config, pod *Pod, f profiles.Facts, o Options) (*Result, error) {
	if pod.reviewed {
		return nil, errors.New("this pod was reviewed already: its view holds the hardened pod; decode the document again")
	}
	if err := pod.check(); err != nil {
		return nil, err
	}
	pod.reviewed = true
	return review(ctx, cfg, &pod.podView, f, o)
}

func review(ctx context.Context, cfg *profiles.Config, pod *podView, f profiles.Facts, o Options) (*Result, error) {
	auth := cfg.AuthorizeExemptions(f)
	if o.ForceExemptions {
		auth = profiles.Authorization{Allowed: true, Why: "exemptions allowed by --allow-exemptions"}
	}
	sel := cfg.Select(f, pod.annotation(profiles.AnnotationProfile), auth)
	res, err := hardenPod(ctx, pod, Input{
		Profile:        sel.Profile,
		Auth:           auth,
		OnUnauthorized: cfg.Exemptions.OnUnauthorized,
		EphemeralOnly:  o.EphemeralOnly,
		Prefix:         o.Prefix,
		Report:         sel.Mode == profiles.RolloutReport && !o.HardenReportMode,
		Images:         o.Images,
	})
	if err != nil {
		return nil, err
	}
	res.Mode, res.ModeSource = sel.Mode, sel.ModeSource
	if res.Report && (len(res.Changes) > 0 || len(res.Conflicts) > 0 || res.WouldDeny) {
		sel.Warnings = append(sel.Warnings, fmt.Sprintf("report mode (%s): admitted unchanged; what profile %q would do follows", sel.ModeSource, res.Profile))
	}
	res.Warnings = append(sel.Warnings, res.Warnings...)
	if res.MayFail && o.Raw != nil {
		raw, err := o.Raw.RawPod()
		if err == nil {
			err = Residual(raw, res)
		}
		if err != nil {
			// Judging is advice: a pod that cannot be judged is still
			// hardened as its profile says.
			res.Warnings = append(res.Warnings, "the hardened pod could not be judged by Pod Security Standards: "+err.Error())
		}
	}
	return res, nil
}
