package profiles

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown extends", "profiles:\n- name: a\n- name: b\n- name: c\n  extends: strictt\n", []string{`profiles[2].extends: Invalid value: "strictt": unknown profile`}},
		{"unknown key", "defaultProfle: restricted\n", []string{`unknown field "defaultProfle"`}},
		{"unknown control", "profiles:\n- name: a\n  controls: {readOnlyRootFilesystm: off}\n", []string{`profiles[0].controls[readOnlyRootFilesystm]`}},
		{"bad mode", "profiles:\n- name: a\n  controls: {privileged: sometimes}\n", []string{`profiles[0].controls[privileged]: Unsupported value: "sometimes"`}},
		{"bad onConflict", "profiles:\n- name: a\n  onConflict: ignore\n", []string{`profiles[0].onConflict`}},
		{"bad rollout mode", "profiles:\n- name: a\n- name: b\n  mode: audit\n", []string{`profiles[1].mode: Unsupported value: "audit"`}},
		{"relative writable path", "profiles:\n- name: a\n  writablePaths: [/tmp, var/run]\n", []string{`profiles[0].writablePaths[1]`, "not absolute"}},
		{"dotdot writable path", "profiles:\n- name: a\n  writablePaths: [/a/../b]\n", []string{`profiles[0].writablePaths[0]`}},
		{"duplicate name", "profiles:\n- name: a\n- name: a\n", []string{`profiles[1].name: Duplicate value`}},
		{"shadows builtin", "profiles:\n- name: restricted\n", []string{`profiles[0].name: Duplicate value`}},
		{"cycle", "profiles:\n- name: a\n  extends: b\n- name: b\n  extends: a\n", []string{"extends cycle"}},
		{"bad default", "defaultProfile: nope\n", []string{`defaultProfile: Unsupported value: "nope"`}},
		{"rule without match", "namespaces:\n- profile: baseline\n", []string{`namespaces[0]: Required value`}},
		{"rule unknown profile", "namespaces:\n- names: [x]\n  profile: nope\n", []string{`namespaces[0].profile`}},
		{"bad selector", "namespaces:\n- selector: {matchExpressions: [{key: a, operator: Sometimes}]}\n  profile: baseline\n", []string{`namespaces[0].selector`}},
		{"bad sizeLimit", "profiles:\n- name: a\n  emptyDir: {sizeLimit: lots}\n", []string{`profiles[0].emptyDir.sizeLimit`}},
		{"bad medium", "profiles:\n- name: a\n  emptyDir: {medium: Disk}\n", []string{`profiles[0].emptyDir.medium`}},
		{"root uid", "profiles:\n- name: a\n  runAsUser: 0\n", []string{`profiles[0].runAsUser`}},
		{"bad rootImages", "profiles:\n- name: a\n- name: b\n  rootImages: enforce\n", []string{`profiles[1].rootImages: Unsupported value: "enforce": supported values: "assign", "warn", "deny"`}},
		{"bad onUnauthorized", "exemptions: {onUnauthorized: enforce}\n", []string{`exemptions.onUnauthorized`}},
		{"bad glob", "exemptions: {namespaces: ['[']}\n", []string{`exemptions.namespaces[0]`}},
		{"not yaml", "profiles: [\n", []string{"parsing config"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error for %q", tc.yaml)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestExtendsOverridesOnlyWhatIsSet(t *testing.T) {
	c, err := Parse([]byte(`
profiles:
- name: child
  extends: parent
  controls: {capabilities: off}
- name: parent
  onConflict: deny
  writablePaths: [/data]
  controls: {runAsUser: "on", automountServiceAccountToken: false}
  runAsUser: 1000
`))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := c.Profile("child")
	if p.OnConflict != ActionDeny || p.RunAsUser == nil || *p.RunAsUser != 1000 {
		t.Errorf("child did not inherit: %+v", p)
	}
	if p.Enabled(Capabilities) || !p.Enabled(RunAsUser) || p.Enabled(AutomountServiceAccountToken) || !p.Enabled(SeccompProfile) {
		t.Errorf("controls: %v", p.Controls)
	}
	if len(p.WritablePaths) != 1 || p.WritablePaths[0] != "/data" {
		t.Errorf("writablePaths %v", p.WritablePaths)
	}
	parent, _ := c.Profile("parent")
	if !parent.Enabled(Capabilities) {
		t.Errorf("child's override leaked into its parent")
	}
	r, _ := c.Profile("restricted")
	if len(r.WritablePaths) != 1 || r.WritablePaths[0] != "/tmp" {
		t.Errorf("built-in changed by a custom profile: %v", r.WritablePaths)
	}
}

// TestRootImagesInheritedAndDefaulted: every built-in assigns, a custom
// profile inherits its parent's choice through extends, and its own wins.
func TestRootImagesInheritedAndDefaulted(t *testing.T) {
	c, err := Parse([]byte(`
profiles:
- {name: strict, rootImages: deny}
- {name: child, extends: strict}
- {name: loud, extends: child, rootImages: warn}
- {name: plain, extends: baseline}
`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]RootImages{
		"restricted": RootImagesAssign, "baseline": RootImagesAssign, "privileged": RootImagesAssign,
		"strict": RootImagesDeny, "child": RootImagesDeny, "loud": RootImagesWarn, "plain": RootImagesAssign,
	} {
		if p, _ := c.Profile(name); p.RootImages != want {
			t.Errorf("profile %s: rootImages %q, want %q", name, p.RootImages, want)
		}
	}
}

func TestBuiltins(t *testing.T) {
	c := Default()
	r, _ := c.Profile("restricted")
	for _, ctl := range ControlNames {
		want := ctl != RunAsUser && ctl != AutomountServiceAccountToken
		if r.Enabled(ctl) != want {
			t.Errorf("restricted %s enabled=%v", ctl, r.Enabled(ctl))
		}
	}
	p, _ := c.Profile("privileged")
	for _, ctl := range ControlNames {
		if p.Enabled(ctl) {
			t.Errorf("privileged enables %s", ctl)
		}
	}
	b, _ := c.Profile("baseline")
	if b.Enabled(ReadOnlyRootFilesystem) || !b.Enabled(AllowPrivilegeEscalation) || !b.Enabled(SeccompProfile) || len(b.DropCapabilities) != 0 {
		t.Errorf("baseline: %+v", b)
	}
	for _, ctl := range []string{AppArmorProfile, ProcMount, SELinuxOptions, Sysctls, HostPorts, HostProbesAndHostLifecycle, HostPathVolumes, WindowsHostProcess} {
		if !b.Enabled(ctl) {
			t.Errorf("baseline does not enable %s, which owns a PSS baseline check", ctl)
		}
	}
	if b.Enabled(RestrictedVolumes) {
		t.Errorf("baseline enables restrictedVolumes, a restricted-only check")
	}
	if r.Level != "restricted" || b.Level != "baseline" || p.Level != "privileged" {
		t.Errorf("levels %q %q %q", r.Level, b.Level, p.Level)
	}
	ext, err := Parse([]byte("profiles:\n- {name: a, extends: baseline}\n- {name: b, extends: a}\n- {name: c}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a": "baseline", "b": "baseline", "c": "restricted"} {
		if p, _ := ext.Profile(name); p.Level != want {
			t.Errorf("profile %s judged at %q, want %q (from the built-in it extends)", name, p.Level, want)
		}
	}
	if c.DefaultProfile != "restricted" || c.Exemptions.OnUnauthorized != ActionWarn {
		t.Errorf("defaults: %q %q", c.DefaultProfile, c.Exemptions.OnUnauthorized)
	}
}

func TestSelectOrderAndFailSafe(t *testing.T) {
	c, err := Parse([]byte(`
profiles: [{name: data}]
namespaces:
- names: ["legacy-*"]
  profile: baseline
- selector: {matchLabels: {app.kubernetes.io/team: Data}}
  profile: data
exemptions:
  namespaces: [sandbox]
  subjects: {users: [alice], groups: [admins]}
`))
	if err != nil {
		t.Fatal(err)
	}
	allowed := Authorization{Allowed: true}
	denied := Authorization{Why: "no"}
	cases := []struct {
		name  string
		facts Facts
		ann   string
		auth  Authorization
		want  string
		warn  string
	}{
		{"annotation honoured", Facts{Namespace: "x", NamespaceKnown: true}, "baseline", allowed, "baseline", ""},
		{"annotation ignored", Facts{Namespace: "x", NamespaceKnown: true}, "privileged", denied, "restricted", "ignored"},
		{"unknown annotation falls back", Facts{Namespace: "x", NamespaceKnown: true}, "nope", allowed, "restricted", `unknown profile "nope"`},
		{"namespace label", Facts{Namespace: "legacy-a", NamespaceKnown: true, NamespaceLabels: map[string]string{LabelProfile: "data"}}, "", denied, "data", ""},
		{"unknown label falls to rules", Facts{Namespace: "legacy-a", NamespaceKnown: true, NamespaceLabels: map[string]string{LabelProfile: "nope"}}, "", denied, "baseline", "unknown profile"},
		{"name glob", Facts{Namespace: "legacy-a", NamespaceKnown: true}, "", denied, "baseline", ""},
		{"selector, dotted label key, case kept", Facts{Namespace: "y", NamespaceKnown: true, NamespaceLabels: map[string]string{"app.kubernetes.io/team": "Data"}}, "", denied, "data", ""},
		{"selector case-sensitive", Facts{Namespace: "y", NamespaceKnown: true, NamespaceLabels: map[string]string{"app.kubernetes.io/team": "data"}}, "", denied, "restricted", ""},
		{"default", Facts{Namespace: "y", NamespaceKnown: true}, "", denied, "restricted", ""},
		{"unknown namespace fails safe", Facts{Namespace: "legacy-a", NamespaceLabels: map[string]string{LabelProfile: "privileged"}}, "", denied, "restricted", "could not be read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := c.Select(tc.facts, tc.ann, tc.auth)
			if s.Profile.Name != tc.want {
				t.Errorf("profile %s, want %s (source %s)", s.Profile.Name, tc.want, s.Source)
			}
			w := strings.Join(s.Warnings, "\n")
			if (tc.warn == "") != (w == "") || !strings.Contains(w, tc.warn) {
				t.Errorf("warnings %q, want %q", w, tc.warn)
			}
		})
	}

	auth := []struct {
		name string
		f    Facts
		want bool
	}{
		{"listed namespace", Facts{Namespace: "sandbox", NamespaceKnown: true}, true},
		{"labelled namespace", Facts{Namespace: "n", NamespaceKnown: true, NamespaceLabels: map[string]string{LabelAllowExemptions: "true"}}, true},
		{"label other value", Facts{Namespace: "n", NamespaceKnown: true, NamespaceLabels: map[string]string{LabelAllowExemptions: "yes"}}, false},
		{"user", Facts{Namespace: "n", NamespaceKnown: true, User: "alice"}, true},
		{"group", Facts{Namespace: "n", NamespaceKnown: true, Groups: []string{"devs", "admins"}}, true},
		{"nobody", Facts{Namespace: "n", NamespaceKnown: true, User: "bob"}, false},
		{"unknown namespace, label unseen", Facts{Namespace: "sandbox", NamespaceLabels: map[string]string{LabelAllowExemptions: "true"}}, false},
		{"unknown namespace, listed user still counts", Facts{Namespace: "x", User: "alice"}, true},
	}
	for _, tc := range auth {
		t.Run(tc.name, func(t *testing.T) {
			a := c.AuthorizeExemptions(tc.f)
			if a.Allowed != tc.want || a.Why == "" {
				t.Errorf("got %+v, want allowed=%v", a, tc.want)
			}
		})
	}
}

func TestLoadFileAndOverrides(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte("profiles: [{name: mine, extends: baseline}]\nserver:\n  listen: :1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, Overrides{DefaultProfile: "mine", OnUnauthorized: ActionDeny, Server: map[string]any{"listen": ":2"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultProfile != "mine" || c.Exemptions.OnUnauthorized != ActionDeny || c.Server.Listen != ":2" || c.Path() != path {
		t.Errorf("overrides not applied: %q %q %q %q", c.DefaultProfile, c.Exemptions.OnUnauthorized, c.Server.Listen, c.Path())
	}
	if _, err := Load(path, Overrides{DefaultProfile: "missing"}); err == nil || !strings.Contains(err.Error(), "defaultProfile") {
		t.Errorf("bad override accepted: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "absent.yaml"), Overrides{}); err == nil {
		t.Error("missing explicit config file accepted")
	}
}

func TestShippedConfigIsValid(t *testing.T) {
	b, err := os.ReadFile("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b)
	if err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	if _, ok := c.Profile("data-team"); !ok {
		t.Error("config.yaml's example profile missing")
	}
}

func TestRolloutModeInheritedAndSwitchedByNamespaceLabel(t *testing.T) {
	c, err := Parse([]byte(`
defaultProfile: watch
profiles:
- name: watch
  mode: report
- name: watch-child
  extends: watch
  controls: {capabilities: off}
- name: strict
  extends: watch
  mode: harden
`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]RolloutMode{"watch": RolloutReport, "watch-child": RolloutReport, "strict": RolloutHarden, "restricted": RolloutHarden} {
		if p, _ := c.Profile(name); p.Mode != want {
			t.Errorf("profile %s: mode %q, want %q", name, p.Mode, want)
		}
	}
	cases := []struct {
		name   string
		facts  Facts
		mode   RolloutMode
		source string
		warn   string
	}{
		{"profile mode", Facts{Namespace: "a", NamespaceKnown: true}, RolloutReport, "profile watch", ""},
		{"label switches to harden", Facts{Namespace: "a", NamespaceKnown: true, NamespaceLabels: map[string]string{LabelMode: "harden"}}, RolloutHarden, "namespace label " + LabelMode, ""},
		{"label switches to report", Facts{Namespace: "a", NamespaceKnown: true, NamespaceLabels: map[string]string{LabelProfile: "strict", LabelMode: "report"}}, RolloutReport, "namespace label " + LabelMode, ""},
		{"bad label keeps the profile's mode", Facts{Namespace: "a", NamespaceKnown: true, NamespaceLabels: map[string]string{LabelProfile: "strict", LabelMode: "Report"}}, RolloutHarden, "profile strict", `pod-hardener.io/mode="Report" ignored`},
		{"namespace unknown: the default's mode", Facts{Namespace: "a", NamespaceLabels: map[string]string{LabelMode: "harden"}}, RolloutReport, "profile watch", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := c.Select(tc.facts, "", Authorization{})
			if s.Mode != tc.mode || s.ModeSource != tc.source {
				t.Errorf("mode %q from %q, want %q from %q", s.Mode, s.ModeSource, tc.mode, tc.source)
			}
			if got := strings.Join(s.Warnings, "\n"); tc.warn != "" && !strings.Contains(got, tc.warn) {
				t.Errorf("warnings %q lack %q", got, tc.warn)
			}
		})
	}
}

// TestServerSettingsTyped: every `server:` key is parsed to its type, from
// YAML, from a flag's typed value and from an environment string, and a
// flag or variable outranks the file.
func TestServerSettingsTyped(t *testing.T) {
	c, err := LoadData([]byte(`server:
  listen: 127.0.0.1:8443
  metricsListen: ":0"
  tlsCertFile: /c/tls.crt
  tlsKeyFile: /c/tls.key
  kubeconfig: /k
  devCerts: /d
  http2: true
  shutdownDelay: 5s
  logLevel: WARN
  auditInterval: 0
  auditNamespaceLabel: false
  imageLookup: true
  imageLookupBudget: 1500ms
  imageLookupCacheSize: 10
  imageLookupTagTtl: 1m
  imageLookupRegistryConcurrency: 2
  imageLookupMaxImages: 3
  imageLookupPlatform: linux/arm64/v8
  imageLookupInsecureRegistries: [r.local:5000, r2.local]
`), "", Overrides{Server: map[string]any{"imageLookupMaxImages": 7, "http2": "false", "imageLookupInsecureRegistries": "a.local, b.local:80"}})
	if err != nil {
		t.Fatal(err)
	}
	want := ServerSettings{
		Listen: "127.0.0.1:8443", MetricsListen: ":0", TLSCertFile: "/c/tls.crt", TLSKeyFile: "/c/tls.key", Kubeconfig: "/k", DevCerts: "/d",
		HTTP2: false, ShutdownDelay: 5 * time.Second, LogLevel: slog.LevelWarn, AuditInterval: 0, AuditNamespaceLabel: false,
		ImageLookup: true, ImageLookupBudget: 1500 * time.Millisecond, ImageLookupCacheSize: 10, ImageLookupTagTTL: time.Minute,
		ImageLookupRegistryConcurrency: 2, ImageLookupMaxImages: 7, ImageLookupPlatform: "linux/arm64/v8",
		ImageLookupInsecureRegistries: []string{"a.local", "b.local:80"},
	}
	if !reflect.DeepEqual(c.Server, want) {
		t.Errorf("got  %+v\nwant %+v", c.Server, want)
	}
	if ch := c.Server.Changed(DefaultServerSettings()); len(ch) != 17 {
		t.Errorf("changed from the defaults: %v", ch)
	}
	if d := Default().Server; !reflect.DeepEqual(d, DefaultServerSettings()) || len(d.Changed(DefaultServerSettings())) != 0 {
		t.Errorf("built-in config's server settings %+v", d)
	}
}

// TestShippedConfigDocumentsServerDefaults: config.yaml's commented
// server: block names every key with its default, so the file stays true
// to the code.
func TestShippedConfigDocumentsServerDefaults(t *testing.T) {
	b, err := os.ReadFile("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(b), "\n# server:\n")
	if start < 0 {
		t.Fatal("config.yaml has no commented server: block")
	}
	block := []string{"server:"}
	for _, l := range strings.Split(string(b)[start+1:], "\n")[1:] {
		if !strings.HasPrefix(l, "#   ") {
			break
		}
		block = append(block, strings.TrimPrefix(l, "#"))
	}
	c, err := Parse([]byte(strings.Join(block, "\n")))
	if err != nil {
		t.Fatalf("config.yaml's server: block: %v", err)
	}
	if len(c.ServerKeys) != len(ServerKeyNames()) {
		t.Errorf("config.yaml documents %d server keys, there are %d: %v", len(c.ServerKeys), len(ServerKeyNames()), ServerKeyNames())
	}
	if ch := c.Server.Changed(DefaultServerSettings()); len(ch) > 0 {
		t.Errorf("config.yaml's server: block differs from the defaults in %v", ch)
	}
}
