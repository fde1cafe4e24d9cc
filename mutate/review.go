package mutate

import (
	"context"
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
	// Images are the facts of the images the pod's containers run, given
	// by the caller; nil when image-aware hardening is off.
	Images ImageSet
	// LookupImages, when set and Images is nil, is asked for the facts once
	// the pod is decoded and its exemptions authorized: the lookup reads
	// the pod the engine reads, and a pod exempt as a whole where
	// exemptions count is never looked up.
	LookupImages func(ctx context.Context, pod *Pod) ImageSet
}

// Review is the whole decision for one pod, shared by the webhook, the
// CLI and the audit: decode, authorize exemptions, select the profile,
// look the images up (Options.LookupImages), harden, and judge the result
// when it may still fail its level. It stops with the context's error
// when ctx is done.
func Review(ctx context.Context, cfg *profiles.Config, raw []byte, f profiles.Facts, o Options) (*Result, error) {
	pod, err := decodePod(raw)
	if err != nil {
		return nil, err
	}
	auth := cfg.AuthorizeExemptions(f)
	if o.ForceExemptions {
		auth = profiles.Authorization{Allowed: true, Why: "exemptions allowed by --allow-exemptions"}
	}
	if o.Images == nil && o.LookupImages != nil && !(auth.Allowed && pod.exemptRequested()) {
		o.Images = o.LookupImages(ctx, pod)
	}
	sel := cfg.Select(f, pod.requestedProfile(), auth)
	res, err := hardenPod(ctx, &pod.podView, Input{
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
	if res.MayFail {
		if err := Residual(raw, res); err != nil {
			// Judging is advice: a pod that cannot be judged is still
			// hardened as its profile says.
			res.Warnings = append(res.Warnings, "the hardened pod could not be judged by Pod Security Standards: "+err.Error())
		}
	}
	return res, nil
}
