package mutate

// ImageFacts is what an image's registry says about the image a container
// runs, read before the pod is hardened (internal/imagefacts looks it up).
// The engine reads only these values and never the network, so `harden`
// and the webhook decide the same way from the same facts.
type ImageFacts struct {
	// Ref is the image reference exactly as the container names it.
	Ref string
	// Digest is what Ref resolved to (sha256:...), "" when unknown.
	Digest string
	// User is the image config's User as written: "", "0", "1000",
	// "node", "1000:1000" or "app:app". "" means the image runs as root.
	User string
	// UID and GID are the numeric ids User resolves to: parsed when
	// numeric, read from the image's /etc/passwd and /etc/group when
	// named. Nil when unknown; UserErr then says why for a named User.
	UID, GID *int64
	UserErr  string
	// ExposedPorts are the config's exposed port numbers (any protocol).
	ExposedPorts []int32
	// Volumes are the config's VOLUME paths.
	Volumes []string
	// WorkingDir and Home (HOME from the config's Env) as the image says.
	WorkingDir string
	Home       string
	// Err says why the facts could not be read (registry down, 401, out of
	// time, ...). When set, every other field but Ref is empty and the
	// container is hardened as if no lookup had been made.
	Err string
}

// ImageSet holds the facts of the images a pod runs, by ImageFacts.Ref.
// A nil ImageSet means no lookup was made (image-aware hardening off).
type ImageSet map[string]*ImageFacts
