package audit

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/pod-hardener/pod-hardener/profiles"
)

// Rules besides the controls.
const (
	RuleDrift     = "drift"
	RuleExemption = "exemption"
)

// ruleText describes each rule for code-scanning UIs: the controls as in
// PRODUCT.md, then drift and exemptions.
var ruleText = map[string]string{
	profiles.Capabilities:                 "Every container drops ALL capabilities; adds outside the profile's allowedCapabilities are a conflict.",
	profiles.AllowPrivilegeEscalation:     "Every container sets allowPrivilegeEscalation: false.",
	profiles.Privileged:                   "privileged: true is a conflict.",
	profiles.ReadOnlyRootFilesystem:       "Every container sets readOnlyRootFilesystem: true, with emptyDir volumes at its writable paths.",
	profiles.RunAsNonRoot:                 "The pod sets runAsNonRoot: true; runAsUser: 0 anywhere is a conflict.",
	profiles.RunAsUser:                    "The pod gets the profile's default UID, GID and fsGroup where none is set.",
	profiles.SeccompProfile:               "The pod sets seccompProfile RuntimeDefault unless it or every container sets one; Unconfined is a conflict.",
	profiles.HostNamespaces:               "hostNetwork, hostPID and hostIPC: true are conflicts.",
	profiles.AutomountServiceAccountToken: "automountServiceAccountToken: false where unset.",
	profiles.AppArmorProfile:              "AppArmor Unconfined (field or deprecated annotation) is a conflict; enforce sets RuntimeDefault.",
	profiles.ProcMount:                    "procMount Unmasked is a conflict; enforce sets Default.",
	profiles.SELinuxOptions:               "An SELinux type outside the allowed set, or a user or role, is a conflict; enforce removes it.",
	profiles.Sysctls:                      "Sysctls outside the safe set are conflicts; enforce removes them.",
	profiles.HostPorts:                    "hostPort is a conflict; enforce removes it unless the pod keeps the host network.",
	profiles.HostProbesAndHostLifecycle:   "A probe or lifecycle handler with a host is a conflict; enforce removes the host.",
	profiles.HostPathVolumes:              "A hostPath volume is a conflict with no safe value: named under warn and enforce, refused under deny.",
	profiles.RestrictedVolumes:            "A volume type outside the restricted set is a conflict with no safe value.",
	profiles.WindowsHostProcess:           "windowsOptions.hostProcess is a conflict with no safe value.",
	RuleDrift:                             "A pod hardened under a profile other than the one selected now, annotated hardened yet still changed by the engine, or exempted at admission differently from today.",
	RuleExemption:                         "Exemptions in force, and the rule that allowed them.",
}

// SARIF 2.1.0, the parts this report uses.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string       `json:"id"`
	ShortDescription     sarifMessage `json:"shortDescription"`
	DefaultConfiguration struct {
		Level string `json:"level"`
	} `json:"defaultConfiguration"`
}

type sarifInvocation struct {
	ExecutionSuccessful bool   `json:"executionSuccessful"`
	EndTimeUTC          string `json:"endTimeUtc"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID     string            `json:"ruleId"`
	RuleIndex  int               `json:"ruleIndex"`
	Level      string            `json:"level"`
	Message    sarifMessage      `json:"message"`
	Locations  []sarifLocation   `json:"locations"`
	Properties map[string]any    `json:"properties,omitempty"`
	Finger     map[string]string `json:"partialFingerprints,omitempty"`
}

type sarifLocation struct {
	LogicalLocations []sarifLogical `json:"logicalLocations"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

// sarifRules lists the rules in a fixed order: the controls, drift,
// exemption.
func sarifRules() ([]sarifRule, map[string]int) {
	ids := append(append([]string(nil), profiles.ControlNames...), RuleDrift, RuleExemption)
	rules := make([]sarifRule, len(ids))
	index := make(map[string]int, len(ids))
	for i, id := range ids {
		rules[i] = sarifRule{ID: id, ShortDescription: sarifMessage{Text: ruleText[id]}}
		rules[i].DefaultConfiguration.Level = "warning"
		index[id] = i
	}
	rules[index[RuleExemption]].DefaultConfiguration.Level = "note"
	return rules, index
}

// WriteSARIF writes one SARIF result per workload finding (Findings);
// hardened workloads have none.
// Locations are logical (namespace/Kind/name): a pod has no source file.
func WriteSARIF(w io.Writer, r *Report) error {
	rules, index := sarifRules()
	run := sarifRun{
		Tool:        sarifTool{Driver: sarifDriver{Name: "pod-hardener", InformationURI: "https://github.com/pod-hardener/pod-hardener", Rules: rules}},
		Invocations: []sarifInvocation{{ExecutionSuccessful: true, EndTimeUTC: r.GeneratedAt.Format("2006-01-02T15:04:05Z")}},
		Results:     []sarifResult{},
	}
	level := map[string]string{FindingChange: "warning", FindingConflict: "error", FindingRejected: "error", FindingExemption: "note", FindingDrift: "warning"}
	for _, wl := range r.Workloads {
		loc := []sarifLocation{{LogicalLocations: []sarifLogical{{Name: wl.Name, FullyQualifiedName: wl.String(), Kind: "resource"}}}}
		for _, f := range wl.Findings() {
			run.Results = append(run.Results, sarifResult{
				RuleID: f.Rule, RuleIndex: index[f.Rule], Level: level[f.Kind],
				Message:   sarifMessage{Text: fmt.Sprintf("%s %s in namespace %s: %s", wl.Kind, wl.Name, wl.Namespace, f.Text)},
				Locations: loc,
				Properties: map[string]any{"finding": f.Kind, "pods": f.Pods, "status": wl.Status, "profiles": wl.Profiles,
					"pssNow": wl.PSSNow, "pssAfter": wl.PSSAfter},
				Finger: map[string]string{"workload/v1": wl.String() + "/" + f.Rule + "/" + f.Text},
			})
		}
	}
	log := sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(log); err != nil {
		return fmt.Errorf("writing SARIF: %w", err)
	}
	return nil
}
