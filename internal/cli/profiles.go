package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

func newProfilesCmd(v *viper.Viper) *cobra.Command {
	return &cobra.Command{
		Use:   "profiles",
		Short: "List the profiles of a config (built-ins and config.yaml), validating it",
		Long: `List every profile with its controls and settings. The config is
validated first: an invalid config.yaml prints each error with the exact key
(profiles[2].extends: ...) and exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig(v)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "defaultProfile: %s\n\n", cfg.DefaultProfile)
			for _, n := range cfg.ProfileNames() {
				p, _ := cfg.Profile(n)
				fmt.Fprintln(out, p.String())
			}
			for i, r := range cfg.Namespaces {
				fmt.Fprintf(out, "namespaces[%d]: names=%v selector=%v -> %s\n", i, r.Names, r.Selector, r.Profile)
			}
			fmt.Fprintf(out, "exemptions: namespaces=%v users=%v groups=%v onUnauthorized=%s\n",
				cfg.Exemptions.Namespaces, cfg.Exemptions.Subjects.Users, cfg.Exemptions.Subjects.Groups, cfg.Exemptions.OnUnauthorized)
			return nil
		},
	}
}
