package server

// Reading a review's body with bounded memory, and answering a review that
// cannot be read (too large, or no room) so that it cannot admit the pod
// unhardened.
//
// Memory grows with the bytes that actually arrive, never with what
// Content-Length announces: a client can announce 20 MiB and send one
// byte. Every body being read or reviewed holds a share of one budget
// (Limits.InFlight), taken in bodyChunk pieces as its buffer grows and
// returned once its answer is written; a request that finds no room within
// Limits.Wait is refused.
//
// A refusal is a 200 AdmissionReview with allowed: false and the request's
// uid, never an HTTP error: the API server treats any non-200, like a
// timeout, per the webhook's failurePolicy, and under Ignore that admits
// the pod unhardened. The uid must match the request's, or the API server
// discards the answer as invalid and, again, applies failurePolicy
// (k8s.io/apiserver admission/plugin/webhook/request.VerifyAdmissionResponse
// and the mutating dispatcher's ErrCallingWebhook handling). The API server
// encodes the review with encoding/json, in struct order: kind, apiVersion,
// then request, whose first field is uid, all within the first ~120 bytes.
// So the uid is read from the first headBytes of the body, without reading
// the rest.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// MaxBodyBytes is the largest AdmissionReview read; a larger one is
// refused with allowed: false. The API server accepts request bodies of up
// to 3 MiB, and encodes the review with encoding/json, which writes <, >
// and & as \u003c (6 bytes for 1): a pod CREATE review is at most 18 MiB
// plus the envelope. An ephemeral-container UPDATE carries the pod twice
// (object and oldObject), each at most what etcd stores (1.5 MiB by
// default, 9 MiB escaped). 20 MiB covers both.
const MaxBodyBytes = 20 << 20

// Limits bound the memory that request bodies take.
type Limits struct {
	// MaxBody is the largest review read, in bytes.
	MaxBody int
	// InFlight bounds the bytes that all bodies being read or reviewed hold
	// together. It must be at least MaxBody. Decoding a review takes about
	// as much again, so 48 MiB keeps the worst case near 150 MiB, well under
	// deploy/'s 256Mi limit, and still leaves room for two reviews of the
	// largest size or some 700 ordinary ones at once.
	InFlight int
	// Wait is how long a request may wait, in total, for room in InFlight
	// before it is refused as busy.
	Wait time.Duration
}

// DefaultLimits are the limits `serve` uses.
var DefaultLimits = Limits{MaxBody: MaxBodyBytes, InFlight: 48 << 20, Wait: time.Second}

const (
	// bodyChunk is the unit of the in-flight budget and the first buffer.
	bodyChunk = 64 << 10
	// headBytes of a refused body are read to find its uid.
	headBytes = 4 << 10
	// maxPooledBody keeps large buffers out of the pool.
	maxPooledBody = 256 << 10
)

var (
	errTooLarge = errors.New("review larger than the limit")
	errBusy     = errors.New("no room for another review")
)

// budget holds one token per bodyChunk bytes held by bodies in flight.
type budget chan struct{}

func newBudget(total int) budget { return make(budget, max(total/bodyChunk, 1)) }

// held reports the bytes currently reserved.
func (b budget) held() int { return len(b) * bodyChunk }

// reservation is one request's share of the budget.
type reservation struct {
	b      budget
	ctx    context.Context
	chunks int
	wait   time.Duration // left to wait for room, in total
}

// cover makes the reservation at least n bytes, waiting for room for at
// most what is left of the request's wait. False: no room in time.
func (r *reservation) cover(n int) bool {
	for r.chunks*bodyChunk < n {
		select {
		case r.b <- struct{}{}:
			r.chunks++
			continue
		default:
		}
		if r.wait <= 0 {
			return false
		}
		t0 := time.Now()
		t := time.NewTimer(r.wait)
		select {
		case r.b <- struct{}{}:
			r.chunks++
		case <-t.C:
		case <-r.ctx.Done():
		}
		t.Stop()
		r.wait -= time.Since(t0)
		if r.ctx.Err() != nil {
			return false
		}
	}
	return true
}

func (r *reservation) release() {
	for ; r.chunks > 0; r.chunks-- {
		<-r.b
	}
}

// bodies recycles small request buffers: a review is decoded into fresh
// values (strings and raw objects are copied out), so its body is not
// needed once the review is decoded.
var bodies = sync.Pool{New: func() any { return new([]byte) }}

// readBody reads at most limit+1 bytes of rd. The buffer starts at one
// chunk (or a pooled buffer) and doubles as bytes arrive, each size
// reserved before it is allocated. It returns errTooLarge after limit+1
// bytes, errBusy when the reservation cannot grow, with what was read so
// far either way.
func readBody(rd io.Reader, res *reservation, limit int, pooled []byte) ([]byte, error) {
	b := pooled[:0]
	if !res.cover(max(cap(b), 1)) {
		return b, errBusy
	}
	for {
		if len(b) > limit {
			return b, errTooLarge
		}
		if len(b) == cap(b) {
			n := min(max(2*cap(b), bodyChunk), limit+1)
			if !res.cover(n) {
				return b, errBusy
			}
			nb := make([]byte, len(b), n)
			copy(nb, b)
			b = nb
		}
		m, err := rd.Read(b[len(b):min(cap(b), limit+1)])
		b = b[:len(b)+m]
		if err == io.EOF {
			if len(b) > limit {
				return b, errTooLarge
			}
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// reviewHead finds the apiVersion and the request's uid in the first bytes
// of a review, which may end anywhere. What it cannot find stays empty.
func reviewHead(head []byte) (apiVersion, uid string) {
	dec := json.NewDecoder(bytes.NewReader(head))
	str := func() (string, bool) {
		t, err := dec.Token()
		s, ok := t.(string)
		return s, err == nil && ok
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", ""
	}
	for dec.More() {
		key, ok := str()
		if !ok {
			return apiVersion, uid
		}
		switch {
		case key == "apiVersion" && apiVersion == "":
			apiVersion, _ = str()
		case key == "request" && uid == "":
			if t, err := dec.Token(); err != nil || t != json.Delim('{') {
				return apiVersion, uid
			}
			for dec.More() {
				k, ok := str()
				if !ok {
					return apiVersion, uid
				}
				if k == "uid" {
					uid, _ = str()
					break
				}
				if !skipValue(dec) {
					return apiVersion, uid
				}
			}
			if uid != "" && apiVersion != "" {
				return apiVersion, uid
			}
			if !skipRest(dec) {
				return apiVersion, uid
			}
		default:
			if !skipValue(dec) {
				return apiVersion, uid
			}
		}
	}
	return apiVersion, uid
}

// skipValue reads one value, however nested.
func skipValue(dec *json.Decoder) bool {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return true
		}
	}
}

// skipRest reads to the end of the object being read.
func skipRest(dec *json.Decoder) bool {
	for dec.More() {
		if _, err := dec.Token(); err != nil || !skipValue(dec) {
			return false
		}
	}
	_, err := dec.Token()
	return err == nil
}

// refusal is the answer to a review that was not reviewed: allowed: false
// with the uid and apiVersion found in its first bytes.
func refusal(head []byte, code int32, reason metav1.StatusReason, msg string) []byte {
	apiVersion, uid := reviewHead(head)
	tm := metav1.TypeMeta{Kind: "AdmissionReview", APIVersion: admissionv1.SchemeGroupVersion.String()}
	if apiVersion == admissionv1beta1.SchemeGroupVersion.String() {
		tm.APIVersion = apiVersion
	}
	return encodeResponse(tm, &admissionv1.AdmissionResponse{
		UID:     types.UID(uid),
		Allowed: false,
		Result:  &metav1.Status{Status: metav1.StatusFailure, Message: msg, Reason: reason, Code: code},
	})
}

// readHead tops got up to headBytes from rd, for reviewHead.
func readHead(got []byte, rd io.Reader) []byte {
	if len(got) >= headBytes {
		return got[:headBytes]
	}
	head := make([]byte, headBytes)
	n := copy(head, got)
	m, _ := io.ReadFull(rd, head[n:])
	return head[:n+m]
}
