package imagefacts

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
)

// maxSecretBytes caps the docker config read from one pull secret.
const maxSecretBytes = 1 << 20

// dockerAuth is one entry of a docker config's "auths".
type dockerAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

type secretEntry struct {
	host, path string // key: host (may start with "*.") and optional path prefix
	auth       authn.AuthConfig
}

// SecretKeychain holds the credentials of image pull secrets, as the
// kubelet reads them: kubernetes.io/dockerconfigjson and
// kubernetes.io/dockercfg, tried in order, first match wins. Only the
// "auths" entries are read: a secret's credential helpers (credsStore,
// credHelpers) are programs of the machine that wrote it and are never run.
type SecretKeychain struct {
	entries []secretEntry
}

// NewSecretKeychain reads the pull secrets; secrets of other types are
// skipped, a malformed one is an error naming it.
func NewSecretKeychain(secrets []*corev1.Secret) (*SecretKeychain, error) {
	k := &SecretKeychain{}
	for _, s := range secrets {
		var data []byte
		var auths map[string]dockerAuth
		switch s.Type {
		case corev1.SecretTypeDockerConfigJson:
			data = s.Data[corev1.DockerConfigJsonKey]
			var cfg struct {
				Auths map[string]dockerAuth `json:"auths"`
			}
			if len(data) > maxSecretBytes {
				return nil, fmt.Errorf("pull secret %s/%s is over %d bytes", s.Namespace, s.Name, maxSecretBytes)
			}
			if err := json.Unmarshal(data, &cfg); err != nil {
				return nil, fmt.Errorf("pull secret %s/%s: %w", s.Namespace, s.Name, err)
			}
			auths = cfg.Auths
		case corev1.SecretTypeDockercfg:
			data = s.Data[corev1.DockerConfigKey]
			if len(data) > maxSecretBytes {
				return nil, fmt.Errorf("pull secret %s/%s is over %d bytes", s.Namespace, s.Name, maxSecretBytes)
			}
			if err := json.Unmarshal(data, &auths); err != nil {
				return nil, fmt.Errorf("pull secret %s/%s: %w", s.Namespace, s.Name, err)
			}
		default:
			continue
		}
		for key, a := range auths {
			e, err := entryOf(key, a)
			if err != nil {
				return nil, fmt.Errorf("pull secret %s/%s, registry %q: %w", s.Namespace, s.Name, key, err)
			}
			k.entries = append(k.entries, e)
		}
	}
	return k, nil
}

func entryOf(key string, a dockerAuth) (secretEntry, error) {
	e := secretEntry{auth: authn.AuthConfig{Username: a.Username, Password: a.Password,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}}
	if a.Auth != "" {
		b, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return e, fmt.Errorf("auth is not base64: %w", err)
		}
		u, p, ok := strings.Cut(string(b), ":")
		if !ok {
			return e, fmt.Errorf("auth is not user:password")
		}
		e.auth.Username, e.auth.Password = u, p
	}
	if !strings.Contains(key, "://") {
		key = "https://" + key
	}
	u, err := url.Parse(key)
	if err != nil {
		return e, err
	}
	e.host = u.Host
	if p := strings.Trim(path.Clean("/"+u.Path), "/"); p != "" && p != "v1" && p != "v2" {
		e.path = p
	}
	if e.host == "docker.io" || e.host == "registry-1.docker.io" {
		e.host = dockerHub
	}
	return e, nil
}

// dockerHub is Docker Hub's registry as go-containerregistry
// names it; a secret may say docker.io or the legacy index URL.
const dockerHub = "index.docker.io"

// Resolve returns the credentials of the first entry matching the
// registry (and repository, for an entry with a path), else anonymous.
func (k *SecretKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	host := target.RegistryStr()
	repo := strings.TrimPrefix(target.String(), host+"/")
	for _, e := range k.entries {
		if !hostMatches(e.host, host) {
			continue
		}
		if e.path != "" && repo != e.path && !strings.HasPrefix(repo, e.path+"/") {
			continue
		}
		return authn.FromConfig(e.auth), nil
	}
	return authn.Anonymous, nil
}

// hostMatches: exact, or "*.example.com" matching one more label, as the
// kubelet matches.
func hostMatches(pattern, host string) bool {
	if pattern == host {
		return true
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		label, domain, found := strings.Cut(host, ".")
		return found && label != "" && domain == rest
	}
	return false
}
