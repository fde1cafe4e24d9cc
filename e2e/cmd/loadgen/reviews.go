package main

// The reviews the load is made of. A user writes a pod (userPod); the API
// server defaults it and the ServiceAccount admission plugin adds the token
// volume before it calls a mutating webhook (served), and wraps it in an
// AdmissionReview v1 (reviewBody). The already-hardened pod is the small
// one after our engine's own patch, serialized again through corev1.Pod as
// the API server would on a reinvocation.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pod-hardener/pod-hardener/internal/admissiontest"
	"github.com/pod-hardener/pod-hardener/mutate"
	"github.com/pod-hardener/pod-hardener/profiles"
)

// reviewUID is the uid of every review; answers must carry it back.
const reviewUID = admissiontest.UID

// reviewNamespace is where the reviewed pods live: no config rule and no
// label selects it, so the default profile (restricted) applies.
const reviewNamespace = "apps"

// podKind is one kind of review in the load.
type podKind struct {
	Name string
	Desc string
	pod  []byte // request.object
	body []byte // the whole AdmissionReview
	// wantPatch: whether our webhook must answer with a patch.
	wantPatch bool
}

// podKinds lists the kinds in a fixed order.
var podKindNames = []string{"small", "50containers", "1000env", "hardened"}

// userContainer is a container as a user writes it in a Deployment.
func userContainer(name string, env int) corev1.Container {
	c := corev1.Container{
		Name:  name,
		Image: "registry.example.com/team/" + name + ":1.24.3",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
		Env: []corev1.EnvVar{
			{Name: "LOG_LEVEL", Value: "info"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
			PeriodSeconds: 10},
		VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/" + name}},
	}
	for i := 0; i < env; i++ {
		c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%04d", i), Value: fmt.Sprintf("value-%d", i)})
	}
	return c
}

// userPod is a pod as a ReplicaSet creates it from a user's template:
// containers (the first with env extra variables) and init containers.
func userPod(name string, containers, initContainers, env int) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web", "pod-template-hash": "7d9f8c6b5d"},
			Annotations: map[string]string{"kubectl.kubernetes.io/default-container": "app-0"}},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}}}},
		},
	}
	for i := 0; i < containers; i++ {
		e := 0
		if i == 0 {
			e = env
		}
		p.Spec.Containers = append(p.Spec.Containers, userContainer(fmt.Sprintf("app-%d", i), e))
	}
	for i := 0; i < initContainers; i++ {
		c := userContainer(fmt.Sprintf("init-%d", i), 0)
		c.Ports, c.ReadinessProbe = nil, nil
		c.Command = []string{"/bin/migrate", "--wait"}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
	return p
}

// served adds what the API server adds before it calls mutating webhooks:
// defaults, the ServiceAccount token volume and its mounts, ownership.
func served(in *corev1.Pod) *corev1.Pod {
	p := in.DeepCopy()
	p.Namespace = reviewNamespace
	p.GenerateName = "web-7d9f8c6b5d-"
	p.Name = ""
	ctrl := true
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f8c6b5d",
		UID: types.UID("0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"), Controller: &ctrl, BlockOwnerDeletion: &ctrl}}
	grace := int64(30)
	prio := int32(0)
	links := true
	preempt := corev1.PreemptLowerPriority
	expiry := int64(3607)
	mode := int32(0o644)
	p.Spec.RestartPolicy = corev1.RestartPolicyAlways
	p.Spec.TerminationGracePeriodSeconds = &grace
	p.Spec.DNSPolicy = corev1.DNSClusterFirst
	p.Spec.ServiceAccountName = "default"
	p.Spec.DeprecatedServiceAccount = "default"
	p.Spec.SecurityContext = &corev1.PodSecurityContext{}
	p.Spec.SchedulerName = corev1.DefaultSchedulerName
	p.Spec.Priority = &prio
	p.Spec.EnableServiceLinks = &links
	p.Spec.PreemptionPolicy = &preempt
	secs := int64(300)
	p.Spec.Tolerations = []corev1.Toleration{
		{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs},
		{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs},
	}
	token := "kube-api-access-x7k2p"
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: token, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: &mode,
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &expiry}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		}}}})
	for _, v := range p.Spec.Volumes {
		if v.ConfigMap != nil {
			v.ConfigMap.DefaultMode = &mode
		}
	}
	def := func(c *corev1.Container) {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
		c.ImagePullPolicy = corev1.PullIfNotPresent
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: token, ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"})
		if pr := c.ReadinessProbe; pr != nil {
			pr.TimeoutSeconds, pr.SuccessThreshold, pr.FailureThreshold = 1, 1, 3
			pr.HTTPGet.Scheme = corev1.URISchemeHTTP
		}
	}
	for i := range p.Spec.Containers {
		def(&p.Spec.Containers[i])
	}
	for i := range p.Spec.InitContainers {
		def(&p.Spec.InitContainers[i])
	}
	return p
}

// reviewBody wraps a pod in a v1 CREATE review as the API server sends it.
func reviewBody(pod []byte) []byte { return admissiontest.CreateReview(pod, "", reviewNamespace) }

// hardenRaw applies our engine's patch (the config's choice for the
// review namespace) to a raw pod and serializes the result through
// corev1.Pod, as the API server stores and re-sends it.
func hardenRaw(cfg *profiles.Config, raw []byte) ([]byte, error) {
	typed, err := hardenLikeWebhook(cfg, profiles.Facts{Namespace: reviewNamespace, NamespaceKnown: true,
		User: "system:serviceaccount:kube-system:replicaset-controller"}, raw, true)
	if err != nil {
		return nil, err
	}
	return json.Marshal(typed)
}

// hardenLikeWebhook returns the pod the webhook would have stored: the
// engine's patch applied to raw. With refuseDenied a pod the engine
// denies is an error; without, it comes back as it was.
func hardenLikeWebhook(cfg *profiles.Config, f profiles.Facts, raw []byte, refuseDenied bool) (*corev1.Pod, error) {
	res, err := mutate.Review(context.Background(), cfg, raw, f, mutate.Options{})
	if err != nil {
		return nil, err
	}
	if res.Denied && refuseDenied {
		return nil, fmt.Errorf("denied: %s", res.Message)
	}
	out, err := mutate.Apply(raw, res.Operations)
	if err != nil {
		return nil, err
	}
	var typed corev1.Pod
	if err := json.Unmarshal(out, &typed); err != nil {
		return nil, err
	}
	return &typed, nil
}

// loadConfig reads config.yaml as the webhook does.
func loadConfig(path string) (*profiles.Config, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return profiles.Load(path, profiles.Overrides{})
}

// buildPods makes the review bodies, in podKindNames order, restricted to
// the names in only (all when empty).
func buildPods(cfg *profiles.Config, only []string) ([]*podKind, error) {
	mk := func(p *corev1.Pod) []byte {
		b, err := json.Marshal(served(p))
		if err != nil {
			panic(err)
		}
		return b
	}
	small := mk(userPod("", 2, 1, 0))
	hardened, err := hardenRaw(cfg, small)
	if err != nil {
		return nil, fmt.Errorf("hardening the small pod: %w", err)
	}
	all := map[string]*podKind{
		"small":        {Desc: "2 containers + 1 init container", pod: small, wantPatch: true},
		"50containers": {Desc: "50 containers", pod: mk(userPod("", 50, 0, 0)), wantPatch: true},
		"1000env":      {Desc: "1 container with 1,000 env vars", pod: mk(userPod("", 1, 0, 1000)), wantPatch: true},
		"hardened":     {Desc: "small, already hardened by our patch", pod: hardened, wantPatch: false},
	}
	var out []*podKind
	for _, n := range podKindNames {
		if len(only) > 0 && !contains(only, n) {
			continue
		}
		k := all[n]
		k.Name = n
		k.body = reviewBody(k.pod)
		out = append(out, k)
	}
	for _, n := range only {
		if all[n] == nil {
			return nil, fmt.Errorf("unknown pod kind %q (known: %s)", n, strings.Join(podKindNames, ", "))
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func reviewsCmd(args []string) error {
	fs := flag.NewFlagSet("reviews", flag.ExitOnError)
	config := fs.String("config", "config.yaml", "config.yaml (for the hardened pod)")
	out := fs.String("out", ".", "directory to write <kind>.json into")
	_ = fs.Parse(args)
	cfg, err := loadConfig(*config)
	if err != nil {
		return err
	}
	kinds, err := buildPods(cfg, nil)
	if err != nil {
		return err
	}
	// docs/performance.md's example writes to a directory that need not exist.
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", *out, err)
	}
	for _, k := range kinds {
		path := filepath.Join(*out, k.Name+".json")
		if err := os.WriteFile(path, k.body, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %s (%d B)\n", path, k.Desc, len(k.body))
	}
	return nil
}
