package mutate

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"

	"github.com/pod-hardener/pod-hardener/internal/pss"
)

// The controls named after PSS checks ask the official evaluator whether a
// single value is allowed, by judging a pod that holds only that value:
// the policy package exports its checks but not their sets of allowed
// values (sysctls, SELinux types, AppArmor annotation values), and a copy
// would drift from the evaluator the API server runs. These run only for
// pods that set such a field.

func podWithSC(sc *corev1.PodSecurityContext) *corev1.PodSpec {
	return &corev1.PodSpec{SecurityContext: sc}
}

func appArmorTypeAllowed(t string) bool {
	return pss.Allows("appArmorProfile", api.LevelRestricted, nil,
		podWithSC(&corev1.PodSecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileType(t)}}))
}

func appArmorAnnotationAllowed(key, value string) bool {
	return pss.Allows("appArmorProfile", api.LevelRestricted, &metav1.ObjectMeta{Annotations: map[string]string{key: value}}, &corev1.PodSpec{})
}

func seLinuxTypeAllowed(t string) bool {
	return pss.Allows("seLinuxOptions", api.LevelRestricted, nil,
		podWithSC(&corev1.PodSecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Type: t}}))
}

func sysctlAllowed(name string) bool {
	return pss.Allows("sysctls", api.LevelRestricted, nil,
		podWithSC(&corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: name}}}))
}

// procMountAllowed judges at the profile's level: baseline allows any
// procMount in a user namespace (hostUsers: false), restricted does not.
func procMountAllowed(v string, hostUsers *bool, level string) bool {
	id, lv := "procMount", api.LevelBaseline
	if level == pssRestricted {
		id, lv = "procMount_restricted", api.LevelRestricted
	}
	pm := corev1.ProcMountType(v)
	return pss.Allows(id, lv, nil, &corev1.PodSpec{HostUsers: hostUsers,
		Containers: []corev1.Container{{Name: "c", SecurityContext: &corev1.SecurityContext{ProcMount: &pm}}}})
}

// verdict remembers the last value judged: a pod's containers mostly
// repeat one value (RuntimeDefault everywhere), and each verdict runs the
// evaluator. It lives on the caller's stack, for one pod.
type verdict struct {
	value   string
	allowed bool
	set     bool
}

func (m *verdict) of(v string, judge func(string) bool) bool {
	if !m.set || m.value != v {
		m.value, m.allowed, m.set = v, judge(v), true
	}
	return m.allowed
}
