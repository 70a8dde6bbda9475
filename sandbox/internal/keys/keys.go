// Package keys issues and checks sandbox API keys.
//
// The sandbox keeps no accounts: anyone may ask for a key, and a key is the
// whole identity. Only a SHA-256 digest of each key is stored, so the plain
// key exists in one place, the response that issued it, and a database
// dump or a log line cannot leak it.
package keys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// Prefix starts every sandbox key, so that a key pasted in the wrong place
// (a log, a chat) is recognisable and secret scanners can match it.
const Prefix = "sk_sandbox_"

var (
	// ErrUnknown means the key was never issued here.
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

// Store keeps issued keys in the database.
type Store struct {
	db  sqldb.DB
	max int
	now func() time.Time
}

// New returns a store that holds at most max keys.
func New(db sqldb.DB, max int, now func() time.Time) *Store {
	return &Store{db: db, max: max, now: now}
}

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Issue creates a new key and returns it in plain text with its record.
func (s *Store) Issue(ctx context.Context) (string, Key, error) {
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Key{}, fmt.Errorf("reading random bytes: %w", err)
	}
	plain := Prefix + strings.ToLower(encoding.EncodeToString(raw[:]))
	sum := sha256.Sum256([]byte(plain))
	k := Key{ID: "key_" + hex.EncodeToString(sum[:8]), CreatedAt: s.now()}
	err := s.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM api_keys`).Scan(&n); err != nil {
			return err
		}
		if n >= s.max {
			return ErrFull
		}
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (digest, id, created_at, last_used_at) VALUES (?, ?, ?, ?)`,
			sum[:], k.ID, sqldb.Nanos(k.CreatedAt), sqldb.Nanos(k.CreatedAt))
		return err
	})
	if errors.Is(err, ErrFull) {
		return "", Key{}, err
	}
	if err != nil {
		return "", Key{}, fmt.Errorf("keys: issuing: %w", err)
	}
	return plain, k, nil
}

// Lookup returns the record of a plain key.
func (s *Store) Lookup(ctx context.Context, plain string) (Key, error) {
	if !strings.HasPrefix(plain, Prefix) || len(plain) > 128 {
		return Key{}, ErrUnknown
	}
	sum := sha256.Sum256([]byte(plain))
	var k Key
	var created int64
	err := s.db.Read().QueryRow(ctx, `SELECT id, created_at FROM api_keys WHERE digest = ?`, sum[:]).Scan(&k.ID, &created)
	if errors.Is(err, sqldb.ErrNoRows) {
		return Key{}, ErrUnknown
	}
	if err != nil {
		return Key{}, fmt.Errorf("keys: looking up a key: %w", err)
	}
	k.CreatedAt = sqldb.Time(created)
	return k, nil
}
