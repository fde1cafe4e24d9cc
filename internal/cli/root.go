// Package cli holds the cobra commands of pod-hardener.
package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// Exit codes, documented in `pod-hardener harden --help`.
const (
	ExitOK      = 0
	ExitInvalid = 1
	ExitDenied  = 2
)

// exitError carries an exit code up to main with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode returns the process exit code for an error from Execute.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return ExitInvalid
}

// New builds the root command. Streams are parameters so tests run the
// real commands in process.
func New(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	v := viper.New()
	root := &cobra.Command{
		Use:           "pod-hardener",
		Short:         "Harden Kubernetes pods: safe security defaults from profiles, as RFC 6902 patches",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().String("config", "", "config.yaml to load (default ./config.yaml if present, else built-in defaults; env POD_HARDENER_CONFIG)")
	_ = v.BindPFlag("config", root.PersistentFlags().Lookup("config"))
	_ = v.BindEnv("config", profiles.EnvPrefix+"_CONFIG")
	_ = v.BindEnv("defaultProfile", profiles.EnvPrefix+"_DEFAULTPROFILE")
	_ = v.BindEnv("exemptions.onUnauthorized", profiles.EnvPrefix+"_EXEMPTIONS_ONUNAUTHORIZED")
	root.AddCommand(newServeCmd(v), newHardenCmd(v), newCheckCmd(v), newProfilesCmd(v), newAuditCmd(v))
	return root
}

// loadConfig loads config.yaml as the --config flag or environment say,
// with the flags and environment variables on top, validating it whole:
// every command refuses a bad key, serve's settings included.
func loadConfig(v *viper.Viper) (*profiles.Config, profiles.Overrides, error) {
	o := overrides(v)
	c, err := profiles.Load(v.GetString("config"), o)
	if err != nil {
		return nil, o, &exitError{ExitInvalid, err}
	}
	return c, o, nil
}

// overrides collects what flags and environment variables set; a flag
// left at its default sets nothing, so config.yaml's value stands.
func overrides(v *viper.Viper) profiles.Overrides {
	o := profiles.Overrides{
		DefaultProfile: v.GetString("defaultProfile"),
		OnUnauthorized: profiles.Action(v.GetString("exemptions.onUnauthorized")),
	}
	for _, k := range profiles.ServerKeyNames() {
		if v.IsSet("server." + k) {
			if o.Server == nil {
				o.Server = map[string]any{}
			}
			o.Server[k] = v.Get("server." + k)
		}
	}
	return o
}

// Main runs the CLI and returns the exit code.
func Main(args []string) int {
	root := New(os.Stdin, os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
	}
	return ExitCode(err)
}
