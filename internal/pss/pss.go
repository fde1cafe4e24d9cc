// Package pss judges pods with the official Pod Security Standards
// evaluator, k8s.io/pod-security-admission. It reimplements nothing: it
// runs each check on its own so a failure can be traced to its check ID.
package pss

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// Failure is one check the pod fails.
type Failure struct {
	ID     string
	Level  api.Level
	Reason string
	Detail string
}

func (f Failure) String() string {
	if f.Detail == "" {
		return f.Reason
	}
	return f.Reason + " (" + f.Detail + ")"
}

type single struct {
	id        string
	level     api.Level
	evaluator policy.Evaluator
}

var (
	checks []single
	byID   = map[string]*single{}
)

func init() {
	for _, c := range policy.DefaultChecks() {
		e, err := policy.NewEvaluator([]policy.Check{c}, nil)
		if err != nil {
			panic(fmt.Sprintf("pss: building evaluator for %s: %v", c.ID, err))
		}
		checks = append(checks, single{id: string(c.ID), level: c.Level, evaluator: e})
	}
	sort.Slice(checks, func(i, j int) bool { return checks[i].id < checks[j].id })
	for i := range checks {
		byID[checks[i].id] = &checks[i]
	}
}

// CheckIDs lists every check with its level, sorted by ID.
func CheckIDs() map[string]api.Level {
	out := make(map[string]api.Level, len(checks))
	for _, c := range checks {
		out[c.id] = c.level
	}
	return out
}

// Allows reports whether a pod passes one check, by ID, at the latest
// policy version and the given level. The engine asks it about a single
// value (one sysctl, one SELinux type) in a pod built around that value,
// so the sets of allowed values stay the evaluator's own: the policy
// package exports its checks, not their sets.
func Allows(id string, level api.Level, meta *metav1.ObjectMeta, spec *corev1.PodSpec) bool {
	c, ok := byID[id]
	if !ok {
		panic("pss: no check " + id)
	}
	if meta == nil {
		meta = &metav1.ObjectMeta{}
	}
	for _, r := range c.evaluator.EvaluatePod(api.LevelVersion{Level: level, Version: api.LatestVersion()}, meta, spec) {
		if !r.Allowed {
			return false
		}
	}
	return true
}

// Evaluate returns the checks of level (and the levels below it) the pod
// fails, at the latest policy version.
func Evaluate(pod *corev1.Pod, level api.Level) []Failure {
	var out []Failure
	lv := api.LevelVersion{Level: level, Version: api.LatestVersion()}
	for _, c := range checks {
		if level == api.LevelBaseline && c.level != api.LevelBaseline {
			continue
		}
		for _, r := range c.evaluator.EvaluatePod(lv, &pod.ObjectMeta, &pod.Spec) {
			if !r.Allowed {
				out = append(out, Failure{ID: c.id, Level: c.level, Reason: r.ForbiddenReason, Detail: r.ForbiddenDetail})
			}
		}
	}
	return out
}

// Level returns the strictest level the pod meets.
func Level(pod *corev1.Pod) api.Level {
	if len(Evaluate(pod, api.LevelRestricted)) == 0 {
		return api.LevelRestricted
	}
	if len(Evaluate(pod, api.LevelBaseline)) == 0 {
		return api.LevelBaseline
	}
	return api.LevelPrivileged
}

// DecodePodLenient decodes like DecodePod, but a field of the wrong type
// (a template placeholder such as containerPort: PORT) is skipped and
// reported instead of failing: the evaluator judges the rest.
func DecodePodLenient(raw []byte) (*corev1.Pod, string, error) {
	var p corev1.Pod
	err := json.Unmarshal(raw, &p)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		defaultVolumes(&p)
		return &p, "", nil
	case errors.As(err, &te):
		defaultVolumes(&p)
		return &p, fmt.Sprintf("field %s of the wrong type ignored", te.Field), nil
	default:
		return nil, "", fmt.Errorf("decoding pod for the PSS evaluator: %w", err)
	}
}

// DecodePod decodes a pod's JSON into the typed pod the evaluator reads.
func DecodePod(raw []byte) (*corev1.Pod, error) {
	var p corev1.Pod
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decoding pod for the PSS evaluator: %w", err)
	}
	defaultVolumes(&p)
	return &p, nil
}

// defaultVolumes makes a volume with no source an emptyDir, as the API
// server's defaulting does before admission: a manifest judged offline is
// then judged as the cluster's PodSecurity admission would judge it,
// instead of failing restricted for an "unknown" volume type.
func defaultVolumes(p *corev1.Pod) {
	for i := range p.Spec.Volumes {
		if v := &p.Spec.Volumes[i]; reflect.ValueOf(v.VolumeSource).IsZero() {
			v.EmptyDir = &corev1.EmptyDirVolumeSource{}
		}
	}
}
