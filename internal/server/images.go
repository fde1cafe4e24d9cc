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
	kjson "sigs.k8s.io/json"

	"github.com/pod-hardener/pod-hardener/internal/imagefacts"
	"github.com/pod-hardener/pod-hardener/mutate"
	"github.com/pod-hardener/pod-hardener/profiles"
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

// lookupPod is the request's pod as the engine reads it: decoded with
// the review for a pod CREATE, else (ephemeral containers) from the object.
func (r *Request) lookupPod() (*mutate.Pod, error) {
	if r.Pod != nil {
		return r.Pod, nil
	}
	var p mutate.Pod
	if err := kjson.UnmarshalCaseSensitivePreserveInts(r.Object, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// lookup returns the facts of the images the review hardens, or nil when
// none are to be looked up: a pod that could not be read (the engine
// reports that), a pod exempt as a whole, a pod with no images.
func (l *ImageLookup) lookup(ctx context.Context, r *Request, cfg *profiles.Config, f profiles.Facts, only map[string]bool) mutate.ImageSet {
	pod, err := r.lookupPod()
	if err != nil {
		return nil
	}
	if pod.ExemptRequested() && cfg.AuthorizeExemptions(f).Allowed {
		return nil
	}
	var q imagefacts.Request
	if l.Client != nil {
		sa, secrets := pod.PullCredentials()
		q.Keychain = &podKeychain{client: l.Client, namespace: r.Namespace, serviceAccount: sa, secrets: secrets}
		q.KeychainID = r.Namespace + "/" + sa + "/" + strings.Join(secrets, ",")
	}
	return l.Resolver.LookupPod(ctx, pod, only, l.Platform, q)
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
