package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// BuildPodHardener builds the webhook binary from the repository at root.
func BuildPodHardener(root, out string) error {
	return goBuild(root, "./cmd/pod-hardener", out, nil)
}

// BuildPodHardenerStatic builds the binary `make image` puts in the image:
// static, with the Makefile's flags.
func BuildPodHardenerStatic(root, out string) error {
	return goBuild(root, "./cmd/pod-hardener", out, []string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags", "-s -w")
}

// goBuild runs go build for a package of the repository at root, with
// extra environment variables and build flags.
func goBuild(root, pkg, out string, env []string, flags ...string) error {
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", out, pkg)...)
	cmd.Dir = root
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// AuditInterval is the webhook's --audit-interval in the e2e suite: short,
// so tests see a full pass soon after a restart.
const AuditInterval = 2 * time.Second

// Webhook is a running `pod-hardener serve`.
type Webhook struct {
	Name       string // its process's and log's name
	Proc       *Process
	Binary     string
	Dir        string
	ConfigPath string
	CertsDir   string
	URL        string // https://127.0.0.1:PORT/mutate
	MetricsURL string // http://127.0.0.1:PORT
	Port       int
	args       []string
	c          *Cluster
}

// StartWebhook runs the real binary on loopback with dev certificates, the
// given config.yaml, and its own identity (user pod-hardener) limited by
// RBAC to reading namespaces and listing and watching pods, as deploy/
// grants it. Its continuous audit evaluates every pod every AuditInterval.
func (c *Cluster) StartWebhook(ctx context.Context, binary, config string, port int) (*Webhook, error) {
	return c.StartWebhookNamed(ctx, "pod-hardener", binary, config, port)
}

// StartWebhookNamed starts one more webhook beside the first, with its own
// directory and log named after name, under the same identity.
func (c *Cluster) StartWebhookNamed(ctx context.Context, name, binary, config string, port int) (*Webhook, error) {
	dir := filepath.Join(c.Dir, "webhook")
	if name != "pod-hardener" {
		dir = filepath.Join(c.Dir, name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	w := &Webhook{Name: name, Binary: binary, Dir: dir, ConfigPath: filepath.Join(dir, "config.yaml"), CertsDir: filepath.Join(dir, "certs"), c: c}
	if err := os.WriteFile(w.ConfigPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	admin, err := Client(c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if err := grantNamespaceRead(ctx, admin, "pod-hardener"); err != nil {
		return nil, err
	}
	kc, err := c.WriteKubeconfig("pod-hardener", "pod-hardener", nil)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		port = freePort()
	}
	w.Port = port
	metrics := freePort()
	w.URL = fmt.Sprintf("https://127.0.0.1:%d/mutate", port)
	w.MetricsURL = fmt.Sprintf("http://127.0.0.1:%d", metrics)
	w.args = []string{"serve", "--dev-certs", w.CertsDir, "--config", w.ConfigPath, "--kubeconfig", kc,
		"--listen", "127.0.0.1:" + strconv.Itoa(port), "--metrics-listen", "127.0.0.1:" + strconv.Itoa(metrics),
		"--audit-interval", AuditInterval.String()}
	return w, w.Start(ctx)
}

// Start (re)starts the webhook process and waits for /readyz.
func (w *Webhook) Start(ctx context.Context) error {
	p, err := w.c.Run(w.Name, w.Binary, w.args...)
	if err != nil {
		return err
	}
	w.Proc = p
	if err := waitHTTP(ctx, w.MetricsURL+"/readyz", nil, 30*time.Second); err != nil {
		return fmt.Errorf("pod-hardener not ready: %w (log %s)", err, p.Log)
	}
	return nil
}

// Stop stops the webhook process (SIGTERM, graceful drain).
func (w *Webhook) Stop() { w.Proc.Stop(15 * time.Second) }

// CABundle is the dev CA the webhook's certificate is signed by.
func (w *Webhook) CABundle() ([]byte, error) { return os.ReadFile(filepath.Join(w.CertsDir, "ca.crt")) }

func grantNamespaceRead(ctx context.Context, cs kubernetes.Interface, user string) error {
	// Named apart from deploy/'s objects, which a test applies to the
	// same cluster.
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pod-hardener-e2e"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
		}}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ClusterRole: %w", err)
	}
	rb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pod-hardener-e2e"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "pod-hardener-e2e"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating ClusterRoleBinding: %w", err)
	}
	return nil
}

// Registration shapes the MutatingWebhookConfiguration.
type Registration struct {
	Name          string
	URL           string
	CABundle      []byte
	FailurePolicy admissionregistrationv1.FailurePolicyType
	// ExcludeNamespaces are left out by kubernetes.io/metadata.name.
	ExcludeNamespaces []string
	// Namespaces, when set, are the only namespaces the webhook sees.
	Namespaces []string
}

// Register creates or replaces the webhook configuration, rules as in
// deploy/: pods CREATE and pods/ephemeralcontainers UPDATE.
func Register(ctx context.Context, cs kubernetes.Interface, r Registration) error {
	if r.FailurePolicy == "" {
		r.FailurePolicy = admissionregistrationv1.Fail
	}
	none := admissionregistrationv1.SideEffectClassNone
	reinvoke := admissionregistrationv1.IfNeededReinvocationPolicy
	timeout := int32(5)
	scope := admissionregistrationv1.NamespacedScope
	fp := r.FailurePolicy
	url := r.URL
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: r.Name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    r.Name + ".pod-hardener.io",
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &none,
			ReinvocationPolicy:      &reinvoke,
			TimeoutSeconds:          &timeout,
			FailurePolicy:           &fp,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: r.CABundle},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: append([]string{"kube-system"}, r.ExcludeNamespaces...)}}},
			Rules: []admissionregistrationv1.RuleWithOperations{
				{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}, Scope: &scope}},
				{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods/ephemeralcontainers"}, Scope: &scope}},
			},
		}},
	}
	if len(r.Namespaces) > 0 {
		cfg.Webhooks[0].NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: r.Namespaces}}}
	}
	api := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	existing, err := api.Get(ctx, r.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, cfg, metav1.CreateOptions{})
	case err == nil:
		cfg.ResourceVersion = existing.ResourceVersion
		_, err = api.Update(ctx, cfg, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering webhook %s: %w", r.Name, err)
	}
	return nil
}

// Unregister deletes a webhook configuration.
func Unregister(ctx context.Context, cs kubernetes.Interface, name string) error {
	err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
