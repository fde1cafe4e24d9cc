package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

// ANSI colours of the statuses.
var statusColour = map[Status]string{
	Hardened:    "\x1b[32m",
	Exempt:      "\x1b[36m",
	WouldChange: "\x1b[33m",
	Conflict:    "\x1b[31m",
}

const (
	boldCode  = "\x1b[1m"
	resetCode = "\x1b[0m"
)

// WriteTable writes the report for a person: the namespaces, then each
// workload with what would change, its conflicts, exemptions and drift.
func WriteTable(w io.Writer, r *Report, colour bool) error {
	paint := func(code, s string) string {
		if !colour {
			return s
		}
		return code + s + resetCode
	}
	bold := func(hs ...string) []string {
		for i := range hs {
			hs[i] = paint(boldCode, hs[i])
		}
		return hs
	}
	ew := &errWriter{w: w}
	nsRows := [][]string{bold("NAMESPACE", "PROFILE", "PODS", "WORKLOADS", "HARDENED", "EXEMPT", "WOULD-CHANGE", "CONFLICT", "DRIFTED PODS", "UNREVIEWED PODS", "EXEMPTIONS")}
	for _, ns := range r.Namespaces {
		n := 0
		for _, c := range ns.Workloads {
			n += c
		}
		nsRows = append(nsRows, []string{ns.Name, ns.Profile, fmt.Sprint(ns.Pods), fmt.Sprint(n),
			count(paint, Hardened, ns.Workloads), count(paint, Exempt, ns.Workloads),
			count(paint, WouldChange, ns.Workloads), count(paint, Conflict, ns.Workloads),
			fmt.Sprint(ns.Drifted), fmt.Sprint(ns.Unreviewed), ns.Exemptions})
	}
	writeAligned(ew, nsRows, nil)
	fmt.Fprintf(ew, "\n%d pods in %d workloads; %d drifted, %d never reviewed by the webhook\n\n",
		r.Totals.Pods, len(r.Workloads), r.Totals.Drifted, r.Totals.Unreviewed)

	wlRows := [][]string{bold("NAMESPACE", "WORKLOAD", "STATUS", "PODS", "PROFILE", "PSS NOW", "PSS AFTER")}
	for _, wl := range r.Workloads {
		wlRows = append(wlRows, []string{wl.Namespace, wl.Kind + "/" + wl.Name,
			paint(statusColour[wl.Status], string(wl.Status)), fmt.Sprint(wl.Pods),
			strings.Join(wl.Profiles, ","), string(wl.PSSNow), string(wl.PSSAfter)})
	}
	writeAligned(ew, wlRows, func(i int) []string { return details(r.Workloads[i-1]) })
	if len(r.OwnerLookupErrors) > 0 {
		fmt.Fprintf(ew, "\nowners that could not be read (their pods are grouped under the owner named on the pod):\n")
		for _, e := range r.OwnerLookupErrors {
			fmt.Fprintf(ew, "  %s\n", e)
		}
	}
	if ew.err != nil {
		return fmt.Errorf("writing table: %w", ew.err)
	}
	return nil
}

// writeAligned writes rows in columns two spaces apart, and under row i
// the indented lines after(i) returns, which do not widen the columns.
// Widths count runes outside ANSI escapes, so coloured cells align.
func writeAligned(w io.Writer, rows [][]string, after func(i int) []string) {
	var widths []int
	for _, row := range rows {
		for j, c := range row {
			if j == len(widths) {
				widths = append(widths, 0)
			}
			widths[j] = max(widths[j], visibleLen(c))
		}
	}
	var b strings.Builder
	for i, row := range rows {
		b.Reset()
		for j, c := range row {
			b.WriteString(c)
			if j < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[j]-visibleLen(c)+2))
			}
		}
		b.WriteByte('\n')
		if after != nil && i > 0 {
			for _, d := range after(i) {
				b.WriteString("    " + d + "\n")
			}
		}
		io.WriteString(w, b.String())
	}
}

func visibleLen(s string) int {
	n, esc := 0, false
	for _, r := range s {
		switch {
		case esc:
			esc = r != 'm'
		case r == '\x1b':
			esc = true
		default:
			n++
		}
	}
	return n
}

// errWriter keeps the first write error, so a report is written without
// checking every line.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func count(paint func(string, string) string, s Status, m map[Status]int) string {
	if m[s] == 0 {
		return "0"
	}
	return paint(statusColour[s], fmt.Sprint(m[s]))
}

// details are the lines under a workload that is not simply hardened.
func details(wl *Workload) []string {
	var out []string
	of := func(n int) string {
		if n == wl.Pods {
			return ""
		}
		return fmt.Sprintf(" (%d of %d pods)", n, wl.Pods)
	}
	for _, c := range wl.Changes {
		out = append(out, fmt.Sprintf("would %s [%s]%s", c.Text, c.Control, of(c.Pods)))
	}
	for _, c := range wl.Conflicts {
		var what string
		switch c.Action {
		case "enforce":
			what = "would be replaced by a safe value"
		case "deny":
			what = "the pod would be rejected"
		default:
			what = "kept but unsafe"
		}
		out = append(out, fmt.Sprintf("conflict: %s: %s=%s, %s [%s; exempt with %s]%s", c.Where, c.Field, c.Value, what, c.Control, c.Hint, of(c.Pods)))
	}
	for _, c := range wl.Rejected {
		out = append(out, fmt.Sprintf("would be rejected: %s%s", c.Text, of(c.Pods)))
	}
	for _, c := range wl.Ignored {
		out = append(out, fmt.Sprintf("exemption annotations ignored: %s%s", c.Text, of(c.Pods)))
	}
	for _, e := range wl.Exemptions {
		out = append(out, fmt.Sprintf("exempt: %s, allowed by %s%s", e.Exempted, e.AllowedBy, of(e.Pods)))
	}
	for _, d := range wl.Drift {
		out = append(out, fmt.Sprintf("drift: %s (e.g. %s)%s", d.Detail, d.Example, of(d.Pods)))
	}
	if wl.Unreviewed > 0 && wl.Status != Hardened {
		out = append(out, fmt.Sprintf("never reviewed by the webhook%s", of(wl.Unreviewed)))
	}
	if wl.Omitted > 0 {
		out = append(out, fmt.Sprintf("%d more entries left out", wl.Omitted))
	}
	return out
}
