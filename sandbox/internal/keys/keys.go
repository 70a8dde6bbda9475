// Package keys issues and checks sandbox API keys.
//
// The sandbox keeps no accounts: anyone may ask for a key, and a key is the
// whole identity. Only a SHA-256 digest of each key is stored, so the plain
// key exists in one place, the response that issued it, and a memory dump or
// a log line cannot leak it.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Prefix starts every sandbox key, so that a key pasted in the wrong place
// (a log, a chat) is recognisable and secret scanners can match it.
const Prefix = "sk_sandbox_"

var (
	// ErrUnknown means the key was never issued here (or the sandbox restarted).
	ErrUnknown = errors.New("unknown API key")
	// ErrFull means the sandbox holds as many keys as it is configured to.
	ErrFull = errors.New("too many API keys issued")
)

// Key is what the sandbox knows about an issued key.
type Key struct {
	// ID names the key in job ownership and logs; it is derived from the key
	// digest and reveals nothing usable.
	ID        string
	CreatedAt time.Time
}

// Registry holds issued keys in memory.
type Registry struct {
	mu   sync.RWMutex
	max  int
	keys map[[32]byte]Key
	now  func() time.Time
}

// NewRegistry returns a registry that holds at most max keys.
func NewRegistry(max int, now func() time.Time) *Registry {
	return &Registry{max: max, keys: map[[32]byte]Key{}, now: now}
}

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Issue creates a new key and returns it in plain text with its record.
func (r *Registry) Issue() (string, Key, error) {
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Key{}, fmt.Errorf("reading random bytes: %w", err)
	}
	plain := Prefix + strings.ToLower(encoding.EncodeToString(raw[:]))
	sum := sha256.Sum256([]byte(plain))
	k := Key{ID: "key_" + hex.EncodeToString(sum[:8]), CreatedAt: r.now()}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.keys) >= r.max {
		return "", Key{}, ErrFull
	}
	r.keys[sum] = k
	return plain, k, nil
}

// Lookup returns the record of a plain key.
func (r *Registry) Lookup(plain string) (Key, error) {
	if !strings.HasPrefix(plain, Prefix) || len(plain) > 128 {
		return Key{}, ErrUnknown
	}
	sum := sha256.Sum256([]byte(plain))
	r.mu.RLock()
	k, ok := r.keys[sum]
	r.mu.RUnlock()
	if !ok {
		return Key{}, ErrUnknown
	}
	return k, nil
}
