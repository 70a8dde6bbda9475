// Package idempotency makes retried job-starting POSTs safe: the first request
// with an Idempotency-Key runs, later ones with the same key get the stored
// response back instead of starting a second job.
//
// It follows draft-ietf-httpapi-idempotency-key-header and Stripe's practice:
//
//   - keys are scoped per owner (the API key), so two customers may use the
//     same Idempotency-Key without seeing each other's responses;
//   - the same key with a different request (method, path or body) is refused
//     with ErrMismatch (HTTP 422, its own problem type);
//   - the same key while the first request is still being handled is refused
//     with ErrInFlight (HTTP 409);
//   - a key is 1 to 255 printable ASCII characters (ValidateKey);
//   - completed entries are kept for Config.TTL, 24 hours by default, and swept
//     afterwards;
//   - a request that fails before it has a response to store is Abandoned, so
//     that a retry with the same key runs again instead of replaying a failure.
//
// There is no net/http middleware: the HTTP layer (Huma) calls Begin, then
// Complete or Abandon, itself, because only it knows which response to keep.
//
// Records live in the database (Store), and the record names its job in the
// job's own transaction (Link): a crash can neither leave a job without its
// record (a retry would start a second one) nor a record naming a job that
// does not exist. Each owner holds a bounded number of keys (ErrOwnerFull).
package idempotency

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dunglas/httpsfv"
)

// Header names.
const (
	// KeyHeader is the request field carrying the key.
	KeyHeader = "Idempotency-Key"
	// ReplayedHeader marks a replayed response; its value is "true".
	ReplayedHeader = "Idempotent-Replayed"
)

// MaxKeyLen is the longest key accepted, in bytes (all ASCII, so characters).
const MaxKeyLen = 255

// Sentinel errors. The HTTP layer maps each to one problem type.
var (
	// ErrKeyInvalid: the key is empty, too long or not printable ASCII (400).
	ErrKeyInvalid = errors.New("invalid Idempotency-Key")
	// ErrInFlight: a request with this key is still being handled (409).
	ErrInFlight = errors.New("a request with this Idempotency-Key is still being handled")
	// ErrMismatch: this key was used for a different request (422).
	ErrMismatch = errors.New("this Idempotency-Key was used with a different request")
	// ErrOwnerFull: this owner holds as many keys as it may (429).
	ErrOwnerFull = errors.New("too many Idempotency-Keys held for this API key")
	// ErrNotInFlight: Complete or Abandon without a matching Begin.
	ErrNotInFlight = errors.New("no request with this Idempotency-Key is in flight")
	// ErrResponseTooLarge: Complete was given a response over Config.MaxResponseBytes.
	ErrResponseTooLarge = errors.New("response too large to keep for replay")
)

// Response is what is stored and replayed: enough to write the same answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// size approximates the bytes r takes to store.
func (r Response) size() int {
	n := len(r.Body)
	for k, vs := range r.Header {
		n += len(k)
		for _, v := range vs {
			n += len(v)
		}
	}
	return n
}

// Outcome is the result of a successful Begin.
type Outcome struct {
	// Replayed is false for a new request: the caller handles it, links the
	// job it creates (Link, in the job's transaction), and then calls
	// Complete or Abandon. When true the earlier request made JobID, and
	// Response is its answer to send again with ReplayedHeader set, unless
	// Response.Status is 0: the process stopped between creating the job
	// and storing the answer, and the caller answers from the job.
	Replayed bool
	JobID    string
	Response Response
}

// ValidateKey checks the rules of R20: 1 to 255 printable ASCII characters
// (space to tilde, the characters a Structured Field String may hold).
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: the key is empty; send 1 to %d printable ASCII characters, for example a UUID", ErrKeyInvalid, MaxKeyLen)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: the key is %d bytes long; the limit is %d (a UUID is 36)", ErrKeyInvalid, len(key), MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: byte %d is 0x%02x; only printable ASCII (0x20 to 0x7e) is allowed", ErrKeyInvalid, i+1, c)
		}
	}
	return nil
}

// ParseKeyHeader extracts the key from an Idempotency-Key field value. The
// IETF draft makes the value a Structured Field String ("…", quoted); Stripe
// and most clients send the bare key. Both are accepted; the result is checked
// with ValidateKey.
func ParseKeyHeader(value string) (string, error) {
	key := strings.TrimSpace(value)
	if strings.HasPrefix(key, `"`) {
		item, err := httpsfv.UnmarshalItem([]string{key})
		if err != nil {
			return "", fmt.Errorf("%w: the value starts with a quote but is not a valid quoted string: %w", ErrKeyInvalid, err)
		}
		s, ok := item.Value.(string)
		if !ok {
			return "", fmt.Errorf("%w: the value is not a string", ErrKeyInvalid)
		}
		key = s
	}
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return key, nil
}

// Fingerprint identifies a request so that a reused key with a different
// request is detected. It is SHA-256 over the upper-cased method, the path
// and the canonical body, each prefixed with its length so no two
// different triples hash the same input.
//
// The canonical body is the JSON value re-encoded compactly with object keys
// sorted (numbers kept as written, strings re-escaped), when body is JSON;
// otherwise the raw bytes. Why: a client that retries often re-serializes its
// request (a JavaScript object rebuilt, another JSON library, pretty-printed
// by a proxy or a person with curl), and the server decodes both versions to
// the same request, so they must not be refused as a mismatch. Anything the
// decoder would see differently (a changed value, an added field, 1 versus
// 1.0) still changes the fingerprint. An empty body is the empty string.
//
// path is what identifies the resource: pass the routed path, and include the
// query string when the operation reads it.
func Fingerprint(method, path string, body []byte) [32]byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(strings.ToUpper(method)), []byte(path), canonicalBody(body)} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func canonicalBody(body []byte) []byte {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || !json.Valid(trimmed) {
		return body
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps are encoded with sorted keys
		return body
	}
	// A marker byte keeps canonical JSON apart from a raw body that happens
	// to be the same bytes.
	return append([]byte{'j'}, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}
