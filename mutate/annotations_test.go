package mutate

import (
	"testing"

	"github.com/pod-hardener/pod-hardener/profiles"
)

func TestExemptions(t *testing.T) {
	const c0 = "spec.containers.0.securityContext"
	const c1 = "spec.containers.1.securityContext"
	notAuth := profiles.Authorization{Why: `namespace "apps" does not allow exemptions (label pod-hardener.io/allow-exemptions=true or config exemptions.namespaces)`}
	restrictedAuth := func(a profiles.Action, auth profiles.Authorization) Input {
		return Input{Profile: profile(t, "restricted", onConflict(a)), Auth: auth}
	}
	twoControls := `{"metadata":{"annotations":{"pod-hardener.io/exempt-controls":"readOnlyRootFilesystem,capabilities"}},"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["NET_ADMIN"]}}}]}}`
	ctlRun(t, []ctlCase{
		{
			name: "exempt-controls authorized: those controls skipped, audit annotation",
			pod:  twoControls,
			in:   restrictedAuth(denyA, authorized),
			want: map[string]any{
				c0 + ".capabilities":                map[string]any{"add": []string{"NET_ADMIN"}},
				c0 + ".readOnlyRootFilesystem":      absent,
				c0 + ".allowPrivilegeEscalation":    false,
				"spec.volumes":                      absent,
				"spec.securityContext.runAsNonRoot": true,
			},
			ann:        map[string]any{AnnotationExempted: "capabilities@app,readOnlyRootFilesystem@app", AnnotationHardened: "restricted"},
			exempted:   []string{"capabilities@app", "readOnlyRootFilesystem@app"},
			noWarnings: []string{"ignored"},
			noPSS:      "capabilities are exempt",
		},
		{
			name:      "exempt-controls not authorized: ignored, hardened, warned",
			pod:       twoControls,
			in:        restrictedAuth(warnA, notAuth),
			conflicts: []cf{{"capabilities", "containers[app]", warnA}},
			want: map[string]any{
				c0 + ".capabilities":           map[string]any{"add": []string{"NET_ADMIN"}, "drop": []string{"ALL"}},
				c0 + ".readOnlyRootFilesystem": true,
			},
			ann:      map[string]any{AnnotationExempted: absent, AnnotationHardened: "restricted"},
			warnings: []string{"exemption annotations ignored: " + notAuth.Why},
			check: func(t *testing.T, r *Result, out []byte) {
				if !r.Refused {
					t.Error("Refused not set")
				}
				if len(r.Exempted) != 0 {
					t.Errorf("Exempted = %q", r.Exempted)
				}
			},
		},
		{
			name:      "not authorized, conflicts deny: the ignored exemption does not save the pod",
			pod:       twoControls,
			in:        restrictedAuth(denyA, notAuth),
			conflicts: []cf{{"capabilities", "containers[app]", denyA}},
			denied:    true,
			message:   []string{"securityContext.capabilities.add=NET_ADMIN"},
		},
		{
			name: "not authorized, OnUnauthorized deny: rejected, saying why",
			pod:  `{"metadata":{"name":"web","annotations":{"pod-hardener.io/exempt-controls":"capabilities"}},"spec":{"containers":[{"name":"app"}]}}`,
			in: Input{Profile: profile(t, "restricted"), Auth: notAuth,
				OnUnauthorized: denyA},
			denied:  true,
			message: []string{`pod "web"`, "exemption annotations are not allowed here", notAuth.Why},
		},
		{
			name: "authorized, OnUnauthorized deny: honoured",
			pod:  `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"capabilities"}},"spec":{"containers":[{"name":"app"}]}}`,
			in: Input{Profile: profile(t, "restricted"), Auth: authorized,
				OnUnauthorized: denyA},
			want:     map[string]any{c0 + ".capabilities": absent, c0 + ".readOnlyRootFilesystem": true},
			ann:      map[string]any{AnnotationExempted: "capabilities@app"},
			exempted: []string{"capabilities@app"},
			noPSS:    "capabilities are exempt",
		},
		{
			name: "no exemption annotation, OnUnauthorized deny, not authorized: hardened",
			pod:  `{"metadata":{"annotations":{"team":"a"}},"spec":{"containers":[{"name":"app"}]}}`,
			in: Input{Profile: profile(t, "restricted"), Auth: notAuth,
				OnUnauthorized: denyA},
			ann:        map[string]any{AnnotationHardened: "restricted", AnnotationExempted: absent, "team": "a"},
			noWarnings: []string{"exemption"},
		},
		{
			name:     "whole pod exempt authorized: only the audit annotation",
			pod:      `{"metadata":{"annotations":{"pod-hardener.io/exempt":"true"}},"spec":{"hostNetwork":true,"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`,
			in:       restrictedAuth(denyA, authorized),
			ann:      map[string]any{AnnotationExempted: "*", AnnotationHardened: absent},
			exempted: []string{"*"},
			onlyOps:  []string{"/metadata/annotations"},
			want:     map[string]any{c0: map[string]any{"privileged": true}},
			warnings: []string{"is exempt (pod-hardener.io/exempt=true): not hardened"},
			noPSS:    "the pod is exempt",
		},
		{
			name:      "whole pod exempt not authorized: hardened",
			pod:       `{"metadata":{"annotations":{"pod-hardener.io/exempt":"true"}},"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}}`,
			in:        restrictedAuth(enforceA, notAuth),
			conflicts: []cf{{"privileged", "containers[app]", enforceA}},
			lost:      []string{"/spec/containers/0/securityContext/privileged"},
			want:      map[string]any{c0 + ".privileged": false, c0 + ".readOnlyRootFilesystem": true},
			ann:       map[string]any{AnnotationExempted: absent, AnnotationHardened: "restricted"},
			warnings:  []string{"exemption annotations ignored"},
		},
		{
			name: "whole pod exempt false: hardened",
			pod:  `{"metadata":{"annotations":{"pod-hardener.io/exempt":"false"}},"spec":{"containers":[{"name":"app"}]}}`,
			in:   restrictedAuth(warnA, authorized),
			want: map[string]any{c0 + ".readOnlyRootFilesystem": true},
			ann:  map[string]any{AnnotationExempted: absent, AnnotationHardened: "restricted"},
		},
		{
			name:     "whole pod exempt with a bad value: reported, hardened",
			pod:      `{"metadata":{"annotations":{"pod-hardener.io/exempt":"yes"}},"spec":{"containers":[{"name":"app"}]}}`,
			in:       restrictedAuth(warnA, authorized),
			want:     map[string]any{c0 + ".readOnlyRootFilesystem": true},
			ann:      map[string]any{AnnotationExempted: absent},
			warnings: []string{`annotation pod-hardener.io/exempt="yes": want "true" or "false"`},
		},
		{
			name:     "whole pod exempt in EphemeralOnly: no annotation, nothing touched",
			pod:      `{"metadata":{"annotations":{"pod-hardener.io/exempt":"true"}},"spec":{"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:       Input{Profile: profile(t, "restricted"), Auth: authorized, EphemeralOnly: map[string]bool{"dbg": true}},
			exempted: []string{"*"},
			onlyOps:  []string{},
			ann:      map[string]any{AnnotationExempted: absent},
		},
		{
			name: "per-container exemption: only that container",
			pod:  `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"capabilities, readOnlyRootFilesystem"}},"spec":{"containers":[{"name":"app"},{"name":"side"}]}}`,
			in:   restrictedAuth(warnA, authorized),
			want: map[string]any{
				c0 + ".capabilities":                         absent,
				c0 + ".readOnlyRootFilesystem":               absent,
				c0 + ".allowPrivilegeEscalation":             false,
				"spec.containers.0.volumeMounts":             absent,
				c1 + ".capabilities.drop":                    []string{"ALL"},
				c1 + ".readOnlyRootFilesystem":               true,
				"spec.containers.1.volumeMounts.0.mountPath": "/tmp",
			},
			ann:      map[string]any{AnnotationExempted: "capabilities@app,readOnlyRootFilesystem@app"},
			exempted: []string{"capabilities@app", "readOnlyRootFilesystem@app"},
			noPSS:    "capabilities are exempt",
		},
		{
			name:      "per-container exemption of a conflict in a deny profile",
			pod:       `{"metadata":{"annotations":{"exempt.pod-hardener.io/agent":"privileged"}},"spec":{"containers":[{"name":"agent","securityContext":{"privileged":true}}]}}`,
			in:        restrictedAuth(denyA, authorized),
			conflicts: nil,
			want:      map[string]any{c0 + ".privileged": true, c0 + ".allowPrivilegeEscalation": absent, c0 + ".capabilities.drop": []string{"ALL"}},
			ann:       map[string]any{AnnotationExempted: "privileged@agent"},
			warnings:  []string{"allowPrivilegeEscalation left unset: the container is privileged"},
			noPSS:     "privileged is exempt",
		},
		{
			name:     "capabilities exempt, SYS_ADMIN kept: escalation still never false",
			pod:      `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"capabilities"}},"spec":{"containers":[{"name":"app","securityContext":{"capabilities":{"add":["CAP_SYS_ADMIN"]}}}]}}`,
			in:       restrictedAuth(enforceA, authorized),
			want:     map[string]any{c0 + ".capabilities": map[string]any{"add": []string{"CAP_SYS_ADMIN"}}, c0 + ".allowPrivilegeEscalation": absent},
			ann:      map[string]any{AnnotationExempted: "capabilities@app"},
			warnings: []string{"allowPrivilegeEscalation left unset: the container adds CAP_SYS_ADMIN"},
			noPSS:    "capabilities are exempt",
		},
		{
			name:     "pod-level control exempted: runAsNonRoot@pod",
			pod:      `{"metadata":{"annotations":{"pod-hardener.io/exempt-controls":"runAsNonRoot"}},"spec":{"securityContext":{"runAsUser":0},"containers":[{"name":"app"}]}}`,
			in:       restrictedAuth(denyA, authorized),
			want:     map[string]any{"spec.securityContext.runAsNonRoot": absent, "spec.securityContext.runAsUser": 0, c0 + ".readOnlyRootFilesystem": true},
			ann:      map[string]any{AnnotationExempted: "runAsNonRoot@pod"},
			exempted: []string{"runAsNonRoot@pod"},
			noPSS:    "runAsNonRoot is exempt",
		},
		{
			name:     "pod-level and container controls together",
			pod:      `{"metadata":{"annotations":{"pod-hardener.io/exempt-controls":"hostNamespaces,seccompProfile","exempt.pod-hardener.io/b":"allowPrivilegeEscalation"}},"spec":{"hostPID":true,"containers":[{"name":"a"},{"name":"b"}]}}`,
			in:       restrictedAuth(denyA, authorized),
			want:     map[string]any{"spec.hostPID": true, "spec.securityContext.seccompProfile": absent, c0 + ".allowPrivilegeEscalation": false, c1 + ".allowPrivilegeEscalation": absent},
			ann:      map[string]any{AnnotationExempted: "allowPrivilegeEscalation@b,seccompProfile@pod,hostNamespaces@pod"},
			exempted: []string{"allowPrivilegeEscalation@b", "seccompProfile@pod", "hostNamespaces@pod"},
			noPSS:    "host namespaces are exempt",
		},
		{
			name:     "container control in exempt-controls: every container listed",
			pod:      `{"metadata":{"annotations":{"pod-hardener.io/exempt-controls":"capabilities"}},"spec":{"initContainers":[{"name":"i"}],"containers":[{"name":"a"}]}}`,
			in:       restrictedAuth(warnA, authorized),
			want:     map[string]any{c0 + ".capabilities": absent, "spec.initContainers.0.securityContext.capabilities": absent},
			ann:      map[string]any{AnnotationExempted: "capabilities@i,capabilities@a"},
			exempted: []string{"capabilities@i", "capabilities@a"},
			noPSS:    "capabilities are exempt",
		},
		{
			name:     "pod-level control in a per-container annotation: reported, not exempt",
			pod:      `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"automountServiceAccountToken"}},"spec":{"containers":[{"name":"app"}]}}`,
			in:       restrictedAuth(warnA, authorized),
			ann:      map[string]any{AnnotationExempted: absent},
			warnings: []string{`annotation exempt.pod-hardener.io/app: automountServiceAccountToken is a pod-level control; exempt it with pod-hardener.io/exempt-controls`},
		},
		{
			name:     "unknown control name: reported, known names still honoured",
			pod:      `{"metadata":{"annotations":{"pod-hardener.io/exempt-controls":"readOnlyRootFS,capabilities","exempt.pod-hardener.io/app":"nosuch"}},"spec":{"containers":[{"name":"app"}]}}`,
			in:       restrictedAuth(warnA, authorized),
			want:     map[string]any{c0 + ".readOnlyRootFilesystem": true, c0 + ".capabilities": absent},
			ann:      map[string]any{AnnotationExempted: "capabilities@app"},
			warnings: []string{`annotation pod-hardener.io/exempt-controls: unknown control "readOnlyRootFS"`, `annotation exempt.pod-hardener.io/app: unknown control "nosuch"`},
			noPSS:    "capabilities are exempt",
		},
		{
			name:     "unknown control name reported even when not authorized",
			pod:      `{"metadata":{"annotations":{"pod-hardener.io/exempt-controls":"bogus"}},"spec":{"containers":[{"name":"app"}]}}`,
			in:       restrictedAuth(warnA, notAuth),
			warnings: []string{`unknown control "bogus"`, "exemption annotations ignored"},
		},
		{
			name:     "unknown container: reported",
			pod:      `{"metadata":{"annotations":{"exempt.pod-hardener.io/ghost":"capabilities"}},"spec":{"containers":[{"name":"app"}]}}`,
			in:       restrictedAuth(warnA, authorized),
			want:     map[string]any{c0 + ".capabilities.drop": []string{"ALL"}},
			ann:      map[string]any{AnnotationExempted: absent},
			warnings: []string{"annotation exempt.pod-hardener.io/ghost names no container of this pod"},
		},
		{
			name:  "control names in any letter case",
			pod:   `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"CAPABILITIES"}},"spec":{"containers":[{"name":"app"}]}}`,
			in:    restrictedAuth(warnA, authorized),
			want:  map[string]any{c0 + ".capabilities": absent},
			ann:   map[string]any{AnnotationExempted: "capabilities@app"},
			noPSS: "capabilities are exempt",
		},
		{
			name: "exempting a control the profile has off: nothing to audit",
			pod:  `{"metadata":{"annotations":{"pod-hardener.io/exempt-controls":"automountServiceAccountToken"}},"spec":{"containers":[{"name":"app"}]}}`,
			in:   restrictedAuth(warnA, authorized),
			ann:  map[string]any{AnnotationExempted: absent, AnnotationHardened: "restricted"},
		},
		{
			name:  "a stale audit annotation is corrected",
			pod:   `{"metadata":{"annotations":{"exempt.pod-hardener.io/app":"capabilities","pod-hardener.io/exempted":"*","pod-hardener.io/hardened":"baseline"}},"spec":{"containers":[{"name":"app"}]}}`,
			in:    restrictedAuth(warnA, authorized),
			ann:   map[string]any{AnnotationExempted: "capabilities@app", AnnotationHardened: "restricted"},
			ops:   []string{"replace /metadata/annotations/pod-hardener.io~1exempted", "replace /metadata/annotations/pod-hardener.io~1hardened"},
			noPSS: "capabilities are exempt",
			lost:  []string{"/metadata/annotations/pod-hardener.io/exempted", "/metadata/annotations/pod-hardener.io/hardened"},
		},
		{
			name:     "EphemeralOnly: exemption of the new container honoured, no annotation",
			pod:      `{"metadata":{"annotations":{"exempt.pod-hardener.io/dbg":"capabilities"}},"spec":{"containers":[{"name":"app"}],"ephemeralContainers":[{"name":"dbg"}]}}`,
			in:       Input{Profile: profile(t, "restricted"), Auth: authorized, EphemeralOnly: map[string]bool{"dbg": true}},
			want:     map[string]any{"spec.ephemeralContainers.0.securityContext.capabilities": absent, "spec.ephemeralContainers.0.securityContext.readOnlyRootFilesystem": true},
			ann:      map[string]any{AnnotationExempted: absent},
			exempted: []string{"capabilities@dbg"},
		},
	})
}
