package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"k8s.io/pod-security-admission/api"

	"github.com/pod-hardener/pod-hardener/internal/manifest"
	"github.com/pod-hardener/pod-hardener/internal/pss"
)

func newCheckCmd(v *viper.Viper) *cobra.Command {
	var o hardenOptions
	cmd := &cobra.Command{
		Use:   "check -f FILE|-",
		Short: "Show the Pod Security Standards level of each workload, before and after hardening",
		Long: `For each workload, the strictest Pod Security Standards level its pod
meets (privileged, baseline, restricted) as judged by the official evaluator
k8s.io/pod-security-admission, before and after hardening, and what still
fails restricted afterwards. Exit 1 on invalid input, else 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig(v)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WORKLOAD\tPROFILE\tBEFORE\tAFTER\tSTILL FAILING RESTRICTED")
			var invalid int
			err = o.each(cfg, cmd.InOrStdin(), func(h *hardened) error {
				if h.err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "error: %s: %v\n", h.name(), h.err)
					invalid++
					return nil
				}
				for _, r := range h.results {
					before, _, err1 := judge(r.w.Pod)
					out, err2 := h.json()
					var pod []byte
					if err2 == nil {
						pod, err2 = manifest.Extract(out, r.w.Pointer)
					}
					after, fails, err3 := judge(pod)
					if err := firstErr(err1, err2, err3); err != nil {
						fmt.Fprintf(tw, "%s\t%s\t-\t-\tcannot judge: %v\n", r.w.Header.ID(), r.res.Profile, err)
						invalid++
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.w.Header.ID(), r.res.Profile, before, after, fails)
				}
				return nil
			})
			tw.Flush()
			if err != nil {
				return err
			}
			if invalid > 0 {
				return &exitError{ExitInvalid, fmt.Errorf("%d workload(s) could not be judged", invalid)}
			}
			return nil
		},
	}
	o.bind(cmd)
	return cmd
}

// judge returns the level a pod meets and what fails restricted.
func judge(raw []byte) (api.Level, string, error) {
	p, note, err := pss.DecodePodLenient(raw)
	if err != nil {
		return "", "", err
	}
	var fails []string
	if note != "" {
		fails = append(fails, note)
	}
	for _, f := range pss.Evaluate(p, api.LevelRestricted) {
		fails = append(fails, f.String())
	}
	return pss.Level(p), strings.Join(fails, "; "), nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
