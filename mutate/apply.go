package mutate

import (
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

// Apply applies operations to a JSON document with evanphx/json-patch, an
// RFC 6902 implementation independent of the engine that wrote them: what
// it returns is the document the API server would store. With no
// operations it returns doc itself.
func Apply(doc []byte, ops []Operation) ([]byte, error) {
	if len(ops) == 0 {
		return doc, nil
	}
	pb, err := Patch(ops)
	if err != nil {
		return nil, fmt.Errorf("encoding the patch: %w", err)
	}
	p, err := jsonpatch.DecodePatch(pb)
	if err != nil {
		return nil, fmt.Errorf("decoding the patch: %w", err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		return nil, fmt.Errorf("applying the patch: %w", err)
	}
	return out, nil
}
