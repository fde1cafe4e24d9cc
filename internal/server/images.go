package server

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pod-hardener/pod-hardener/internal/imagefacts"
	"github.com/pod-hardener/pod-hardener/mutate"
)

// ImageLookup reads the facts of the images a review is about to harden
// (image-aware hardening, docs/image-lookup.md).
type ImageLookup struct {
	Resolver *imagefacts.Resolver
	// Client reads the pod's pull secrets and its service account's
	// (RBAC: get secrets and serviceaccounts); nil looks up anonymously.
	Client kubernetes.Interface
	// Platform is the node platform when the pod selects none.
	Platform v1.Platform
}

// maxPullSecrets caps the secrets read for one pod (its own and its
// service account's), each a request to the API server.
const maxPullSecrets = 8

// secretsTimeout bounds reading a pod's pull secrets; it runs only when an
// image must be fetched, inside the fetch's own timeout.
const secretsTimeout = 2 * time.Second

// hook is the engine's Options.LookupImages for one review: the engine
// calls it with the pod it decoded, once exemptions are authorized (a pod
// exempt as a whole is not looked up), so the pod is read once.
func (l *ImageLookup) hook(r *Request, only map[string]bool) func(context.Context, *mutate.Pod) mutate.ImageSet {
	return func(ctx context.Context, pod *mutate.Pod) mutate.ImageSet {
		var q imagefacts.Request
		if l.Client != nil {
			sa, secrets := pod.PullCredentials()
			q.Keychain = &podKeychain{client: l.Client, namespace: r.Namespace, serviceAccount: sa, secrets: secrets}
			q.KeychainID = r.Namespace + "/" + sa + "/" + strings.Join(secrets, ",")
		}
		return l.Resolver.LookupPod(ctx, pod, only, l.Platform, q)
	}
}

// podKeychain reads a pod's pull credentials the first time a fetch
// resolves them, so a lookup answered from the cache costs the API server
// nothing: the pod's imagePullSecrets, then its service account's, as the
// kubelet uses them. A secret that cannot be read is skipped, as the
// kubelet skips it; the registry's 401 then says what is missing.
type podKeychain struct {
	client                    kubernetes.Interface
	namespace, serviceAccount string
	secrets                   []string

	once sync.Once
	kc   authn.Keychain
}

func (k *podKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), target)
}

func (k *podKeychain) ResolveContext(ctx context.Context, target authn.Resource) (authn.Authenticator, error) {
	k.once.Do(func() { k.kc = k.load(ctx) })
	return k.kc.Resolve(target)
}

func (k *podKeychain) load(ctx context.Context) authn.Keychain {
	ctx, cancel := context.WithTimeout(ctx, secretsTimeout)
	defer cancel()
	names := slices.Clone(k.secrets)
	if sa, err := k.client.CoreV1().ServiceAccounts(k.namespace).Get(ctx, k.serviceAccount, metav1.GetOptions{}); err == nil {
		for _, s := range sa.ImagePullSecrets {
			if s.Name != "" && !slices.Contains(names, s.Name) {
				names = append(names, s.Name)
			}
		}
	}
	var kcs []authn.Keychain
	for _, n := range names[:min(len(names), maxPullSecrets)] {
		s, err := k.client.CoreV1().Secrets(k.namespace).Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			continue
		}
		if kc, err := imagefacts.NewSecretKeychain([]*corev1.Secret{s}); err == nil {
			kcs = append(kcs, kc)
		}
	}
	return authn.NewMultiKeychain(kcs...)
}
