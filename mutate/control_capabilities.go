package mutate

import "github.com/pod-hardener/pod-hardener/profiles"

/*
capabilities: drop what the profile drops (restricted: ALL) and allow adds
only from the profile's allowedCapabilities (restricted: NET_BIND_SERVICE,
as PSS restricted; baseline: the PSS baseline set).

Fields: containers[*].securityContext.capabilities.{drop,add}.
Sets: appends each missing dropCapabilities entry to drop; never rewrites
the user's list.
Conflict: an add outside allowedCapabilities. Enforce removes that entry.
*/

func init() {
	register(&control{
		name:      profiles.Capabilities,
		linuxOnly: true,
		container: capabilities,
	})
}

func capabilities(h *hctx, t *target) {
	var add, drop []string
	dropExists := false
	if sc := t.c.SecurityContext; sc != nil && sc.Capabilities != nil {
		add, drop = sc.Capabilities.Add, sc.Capabilities.Drop
		dropExists = drop != nil
	}
	var removed []int
	for i, c := range add {
		if h.prof.CapabilityAllowed(c) {
			continue
		}
		if h.conflict(profiles.Capabilities, t, "securityContext.capabilities.add", c).enforce() {
			removed = append(removed, i)
		}
	}
	if len(removed) > 0 {
		removeEntries(h, t.caps(), "add", &t.securityContext().Capabilities.Add, removed)
	}
	for _, want := range h.prof.DropCapabilities {
		if hasCapability(drop, want) {
			continue
		}
		appendTo(h, t.caps(), "drop", dropExists, t.drop(), want, want,
			change{control: profiles.Capabilities, t: t, field: dropChange(want)})
	}
}

// hasCapability matches names exactly: PSS requires the literal "ALL" in
// drop, so "all" or "CAP_ALL" does not count and "ALL" is still added.
func hasCapability(list []string, c string) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

// addsSysAdmin: the API server rejects allowPrivilegeEscalation: false
// together with an added CAP_SYS_ADMIN, spelt exactly so: its validation
// (ValidateSecurityContext in k8s.io/kubernetes pkg/apis/core/validation)
// compares each entry with the string "CAP_SYS_ADMIN". "SYS_ADMIN", the
// usual spelling, passes with false, so the field is set there as on any
// container; leaving it unset would leave escalation allowed for nothing.
func addsSysAdmin(t *target) bool {
	sc := t.c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		return false
	}
	for _, c := range sc.Capabilities.Add {
		if c == "CAP_SYS_ADMIN" {
			return true
		}
	}
	return false
}

// dropChange names the change; "ALL", nearly always the one dropped, is
// not built again for every container.
func dropChange(c string) string {
	if c == "ALL" {
		return "capabilities.drop=ALL"
	}
	return "capabilities.drop=" + c
}
