// Package keys issues and checks sandbox API keys.
//
// The sandbox keeps no accounts: anyone may ask for a key, and a key is the
// whole identity. Only a SHA-256 digest of each key is stored, so the plain
// key exists in one place, the response that issued it, and a database
// dump or a log line cannot leak it.
//
// Keys are a store anyone can fill, so it is shared fairly: each key
// records the network it was minted from (see ratelimit.Network), a
// network holds at most MaxPerNetwork keys and the sandbox Max; a key
// idle for TTL is deleted by Sweep, with what belongs only to it; and a
// full store makes room by evicting the least recently used key that has
// no unfinished work, so a newcomer is refused only when every key is busy.
package keys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// Prefix starts every sandbox key, so that a key pasted in the wrong place
// (a log, a chat) is recognisable and secret scanners can match it.
const Prefix = "sk_sandbox_"

var (
	// ErrUnknown means the key was never issued here, or expired.
	ErrUnknown = errors.New("unknown API key")
	// ErrFull means the sandbox holds as many keys as it is configured to
	// and every one of them has unfinished work.
	ErrFull = errors.New("too many API keys issued")
	// ErrNetworkFull means the client's network holds as many keys as one
	// network may and every one of them has unfinished work.
	ErrNetworkFull = errors.New("too many API keys issued to this network")
)

// FullError is a refusal to issue a key: Err is ErrFull or
// ErrNetworkFull, Limit the share that is used up, and RetryAfter the
// soonest a key may have finished its work (and so may be evicted).
type FullError struct {
	Err        error
	Limit      int
	RetryAfter time.Duration
}

func (e *FullError) Error() string {
	return fmt.Sprintf("%v (%d keys, all with unfinished work)", e.Err, e.Limit)
}

func (e *FullError) Unwrap() error { return e.Err }

// Key is what the sandbox knows about an issued key.
type Key struct {
	// ID names the key in job ownership and logs; it is derived from the key
	// digest and reveals nothing usable.
	ID string
	// Network is the network the key was minted from ("" for keys minted
	// before networks were recorded): shares of jobs, webhooks and streams
	// are counted per network as well as per key.
	Network   string
	CreatedAt time.Time
}

// Defaults of Config.
const (
	DefaultMax           = 100_000
	DefaultMaxPerNetwork = 1_000
	DefaultTTL           = 7 * 24 * time.Hour
	// DefaultTouchEvery is how often a key in use has its last use
	// written: the hot path (a poll) writes at most once a minute per key.
	DefaultTouchEvery = time.Minute
	// DefaultCacheTTL is how long a replica trusts a key it looked up
	// without asking the database again; a key deleted on another replica
	// may be honoured here that long.
	DefaultCacheTTL = 5 * time.Second
	// DefaultCacheSize bounds the lookup cache.
	DefaultCacheSize = 10_000
)

// Config configures a Store. Zero values take the defaults.
type Config struct {
	DB     sqldb.DB // required
	Now    func() time.Time
	Logger *slog.Logger
	// Max bounds all keys, MaxPerNetwork the keys of one network. At
	// either, Issue evicts the least recently used key (of all, or of the
	// network) that has no unfinished work.
	Max, MaxPerNetwork int
	// TTL is how long a key may go unused before Sweep deletes it (when
	// it has no unfinished work).
	TTL time.Duration
	// TouchEvery is how often a key's last use is written at most.
	TouchEvery time.Duration
	// CacheTTL and CacheSize shape the lookup cache (digest → key).
	CacheTTL  time.Duration
	CacheSize int
	// OnDelete runs in the transaction that deletes a key, to delete what
	// belongs only to it in other stores (the inboxes). Jobs stay until
	// their own retention.
	OnDelete []func(ctx context.Context, tx sqldb.Tx, id string) error
}

// Store keeps issued keys in the database, with a small cache in front.
type Store struct {
	cfg Config

	mu    sync.Mutex
	cache map[[sha256.Size]byte]*entry
	// touches are the uses Lookup noted and FlushTouches has not written
	// yet; armed says a flush is due.
	touches map[[sha256.Size]byte]touch
	timer   *time.Timer // the flush due, nil when none is
	closed  bool
}

// touch is a use of a key, to be written.
type touch struct {
	id string
	at time.Time
}

// touchDelay is how long a noted use waits to be written with the others
// noted meanwhile: a request never waits for the write, and a busy replica
// writes the uses of all its keys in one transaction a second.
const touchDelay = time.Second

// entry is a cached key: trusted until until, its last use written at
// touched.
type entry struct {
	key     Key
	until   time.Time
	touched time.Time
}

// New returns a store that holds at most max keys, with the other
// defaults.
func New(db sqldb.DB, max int, now func() time.Time) *Store {
	s, err := NewStore(Config{DB: db, Max: max, Now: now})
	if err != nil {
		panic(err) // only a nil DB or a negative bound fails
	}
	return s
}

// NewStore checks cfg and returns a store.
func NewStore(cfg Config) (*Store, error) {
	if cfg.DB == nil {
		return nil, errors.New("keys: Config.DB is nil")
	}
	if cfg.Max < 0 || cfg.MaxPerNetwork < 0 || cfg.TTL < 0 || cfg.TouchEvery < 0 || cfg.CacheTTL < 0 || cfg.CacheSize < 0 {
		return nil, errors.New("keys: negative bound in Config")
	}
	cfg.Max = or(cfg.Max, DefaultMax)
	cfg.MaxPerNetwork = or(cfg.MaxPerNetwork, DefaultMaxPerNetwork)
	cfg.TTL = or(cfg.TTL, DefaultTTL)
	cfg.TouchEvery = or(cfg.TouchEvery, DefaultTouchEvery)
	cfg.CacheTTL = or(cfg.CacheTTL, DefaultCacheTTL)
	cfg.CacheSize = or(cfg.CacheSize, DefaultCacheSize)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Store{cfg: cfg, cache: map[[sha256.Size]byte]*entry{}}, nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// TTL is how long an unused key lives.
func (s *Store) TTL() time.Duration { return s.cfg.TTL }

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// idle is the condition, on api_keys k, of a key without unfinished work:
// no queued or processing job, no webhook still being delivered.
const idle = `NOT EXISTS (SELECT 1 FROM job_owners o WHERE o.owner = k.id AND o.unfinished > 0)
	AND NOT EXISTS (SELECT 1 FROM webhook_messages m WHERE m.owner = k.id AND m.state = 'sending')`

// Issue creates a new key for a client of network and returns it in plain
// text with its record. When the network, or the sandbox, holds as many
// keys as it may, the least recently used of them with no unfinished work
// is deleted first; when none can be, the answer is a *FullError.
func (s *Store) Issue(ctx context.Context, network string) (string, Key, error) {
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Key{}, fmt.Errorf("reading random bytes: %w", err)
	}
	plain := Prefix + strings.ToLower(encoding.EncodeToString(raw[:]))
	sum := sha256.Sum256([]byte(plain))
	k := Key{ID: "key_" + hex.EncodeToString(sum[:8]), Network: network, CreatedAt: s.cfg.Now()}
	s.FlushTouches(ctx)
	var evicted []evictee
	err := s.cfg.DB.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		evicted = evicted[:0]
		// Issues take turns, on every replica, so that the counts below
		// hold until the insert: SQLite has one writer anyway; PostgreSQL
		// takes a lock for the transaction.
		if s.cfg.DB.Dialect() == sqldb.Postgres {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(?)`, issueLock); err != nil {
				return err
			}
		}
		if network != "" {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM api_keys WHERE network = ? LIMIT ?) AS n`, network, s.cfg.MaxPerNetwork).Scan(&n); err != nil {
				return err
			}
			if n >= s.cfg.MaxPerNetwork {
				e, err := s.evict(ctx, tx, network)
				if err != nil {
					return err
				}
				if e.id == "" {
					return &FullError{Err: ErrNetworkFull, Limit: s.cfg.MaxPerNetwork, RetryAfter: s.retryAfter(ctx, tx, network)}
				}
				evicted = append(evicted, e)
			}
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM api_keys`).Scan(&n); err != nil {
			return err
		}
		if n >= s.cfg.Max {
			e, err := s.evict(ctx, tx, "")
			if err != nil {
				return err
			}
			if e.id == "" {
				return &FullError{Err: ErrFull, Limit: s.cfg.Max, RetryAfter: s.retryAfter(ctx, tx, "")}
			}
			evicted = append(evicted, e)
		}
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (digest, id, network, created_at, last_used_at) VALUES (?, ?, ?, ?, ?)`,
			sum[:], k.ID, network, sqldb.Nanos(k.CreatedAt), sqldb.Nanos(k.CreatedAt))
		return err
	})
	var full *FullError
	if errors.As(err, &full) {
		return "", Key{}, full
	}
	if err != nil {
		return "", Key{}, fmt.Errorf("keys: issuing: %w", err)
	}
	for _, e := range evicted {
		s.uncache(e.digest)
		s.cfg.Logger.InfoContext(ctx, "sandbox key evicted to make room", "key_id", e.id, "network_full", network != "" && e.network == network)
	}
	return plain, k, nil
}

// issueLock is the PostgreSQL advisory lock that Issue takes.
const issueLock int64 = 0x6b657973 // "keys"

// evictee is a key deleted to make room.
type evictee struct {
	id, network string
	digest      []byte
}

// evict deletes the least recently used key without unfinished work, of
// network (or of all, for ""), in tx; it answers a zero evictee when no
// key can be evicted.
func (s *Store) evict(ctx context.Context, tx sqldb.Tx, network string) (evictee, error) {
	q := `SELECT k.digest, k.id, k.network FROM api_keys k WHERE ` + idle + ` ORDER BY k.last_used_at, k.id LIMIT 1`
	args := []any{}
	if network != "" {
		q = `SELECT k.digest, k.id, k.network FROM api_keys k WHERE k.network = ? AND ` + idle + ` ORDER BY k.last_used_at, k.id LIMIT 1`
		args = append(args, network)
	}
	var e evictee
	err := tx.QueryRow(ctx, q, args...).Scan(&e.digest, &e.id, &e.network)
	if errors.Is(err, sqldb.ErrNoRows) {
		return evictee{}, nil
	}
	if err != nil {
		return evictee{}, fmt.Errorf("finding a key to evict: %w", err)
	}
	gone, err := s.forget(ctx, tx, e.digest, e.id, 0)
	if err != nil || !gone {
		return evictee{}, err
	}
	return e, nil
}

// forget deletes key id and what belongs only to it, in tx, unless it has
// unfinished work or (with usedBefore > 0) was used since usedBefore. It
// answers whether it did.
func (s *Store) forget(ctx context.Context, tx sqldb.Tx, digest []byte, id string, usedBefore int64) (bool, error) {
	q := `DELETE FROM api_keys WHERE digest = ? AND id IN (SELECT k.id FROM api_keys k WHERE k.digest = ? AND ` + idle + `)`
	args := []any{digest, digest}
	if usedBefore > 0 {
		q += ` AND last_used_at < ?`
		args = append(args, usedBefore)
	}
	n, err := tx.Exec(ctx, q, args...)
	if err != nil || n == 0 {
		return false, err
	}
	for _, stmt := range []string{
		`DELETE FROM webhook_secrets WHERE owner = ?`,
		`DELETE FROM webhook_endpoints WHERE owner = ?`,
		`DELETE FROM job_owners WHERE owner = ? AND unfinished = 0`,
		`DELETE FROM inbox_owners WHERE owner = ?`,
	} {
		if _, err := tx.Exec(ctx, stmt, id); err != nil {
			return false, fmt.Errorf("deleting what belonged to %s: %w", id, err)
		}
	}
	for _, f := range s.cfg.OnDelete {
		if err := f(ctx, tx, id); err != nil {
			return false, fmt.Errorf("deleting what belonged to %s: %w", id, err)
		}
	}
	return true, nil
}

// retryAfter is the soonest moment some key's work may end, so a key may
// be evicted: the expected end of the unfinished job due to end first, or
// the next attempt of a webhook being delivered (of network's keys, or of
// all for ""), from 1 s to 1 h.
func (s *Store) retryAfter(ctx context.Context, tx sqldb.Tx, network string) time.Duration {
	filter, args := "", []any{}
	if network != "" {
		filter, args = ` AND network = ?`, []any{network, network}
	}
	var jobEnd, hookNext *int64
	err := tx.QueryRow(ctx, `SELECT
		(SELECT MIN(CASE WHEN started_at > 0 THEN started_at ELSE created_at END + expected) FROM jobs WHERE status IN ('queued', 'processing')`+filter+`),
		(SELECT MIN(next_at) FROM webhook_messages WHERE state = 'sending'`+filter+`)`, args...).Scan(&jobEnd, &hookNext)
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "keys: estimating when a key frees up", "err", err)
		return time.Minute
	}
	now := sqldb.Nanos(s.cfg.Now())
	soonest := int64(-1)
	for _, t := range []*int64{jobEnd, hookNext} {
		if t != nil && (soonest < 0 || *t < soonest) {
			soonest = *t
		}
	}
	if soonest < 0 {
		return time.Second // nothing holds a key: a race with an end; retry at once
	}
	return min(max(time.Duration(soonest-now), time.Second), time.Hour)
}

// Lookup returns the record of a plain key. A key looked up recently is
// answered from the cache; a key's last use is written at most every
// TouchEvery.
func (s *Store) Lookup(ctx context.Context, plain string) (Key, error) {
	if !strings.HasPrefix(plain, Prefix) || len(plain) > 128 {
		return Key{}, ErrUnknown
	}
	sum := sha256.Sum256([]byte(plain))
	now := s.cfg.Now()
	s.mu.Lock()
	if e, ok := s.cache[sum]; ok && now.Before(e.until) {
		k, touch := e.key, now.Sub(e.touched) >= s.cfg.TouchEvery
		if touch {
			e.touched = now
		}
		if touch {
			s.noteUse(sum, k.ID, now)
		}
		s.mu.Unlock()
		return k, nil
	}
	s.mu.Unlock()

	var k Key
	var created, used int64
	err := s.cfg.DB.Read().QueryRow(ctx, `SELECT id, network, created_at, last_used_at FROM api_keys WHERE digest = ?`, sum[:]).
		Scan(&k.ID, &k.Network, &created, &used)
	if errors.Is(err, sqldb.ErrNoRows) {
		return Key{}, ErrUnknown
	}
	if err != nil {
		return Key{}, fmt.Errorf("keys: looking up a key: %w", err)
	}
	k.CreatedAt = sqldb.Time(created)
	e := &entry{key: k, until: now.Add(s.cfg.CacheTTL), touched: sqldb.Time(used)}
	touch := now.Sub(e.touched) >= s.cfg.TouchEvery
	if touch {
		e.touched = now
	}
	s.remember(sum, e, now)
	if touch {
		s.mu.Lock()
		s.noteUse(sum, k.ID, now)
		s.mu.Unlock()
	}
	return k, nil
}

// noteUse notes that key id was used at now, for FlushTouches to write
// within touchDelay; s.mu is held.
func (s *Store) noteUse(sum [sha256.Size]byte, id string, now time.Time) {
	if s.touches == nil {
		s.touches = map[[sha256.Size]byte]touch{}
	}
	s.touches[sum] = touch{id, now}
	if s.timer == nil && !s.closed {
		s.timer = time.AfterFunc(touchDelay, func() { s.FlushTouches(context.Background()) })
	}
}

// Close writes the uses noted and not yet written; uses noted after it are
// written only by an explicit FlushTouches (or Issue, or Sweep).
func (s *Store) Close(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	s.FlushTouches(ctx)
}

// FlushTouches writes the uses noted since the last flush, in one
// transaction: each key's last use, unless another request (on any
// replica) wrote a use within TouchEvery. Issue and Sweep flush first, so
// that they choose by every use this replica has seen. A failure is
// logged, not returned: those uses are lost, and the key's next use a
// TouchEvery later is noted again.
func (s *Store) FlushTouches(ctx context.Context) {
	s.mu.Lock()
	touches := s.touches
	s.touches = nil
	if s.timer != nil {
		s.timer.Stop() // a flush that is not this one finds nothing to write
		s.timer = nil
	}
	s.mu.Unlock()
	if len(touches) == 0 {
		return
	}
	err := s.cfg.DB.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		for sum, t := range touches {
			if _, err := tx.Exec(ctx, `UPDATE api_keys SET last_used_at = ? WHERE digest = ? AND last_used_at < ?`,
				sqldb.Nanos(t.at), sum[:], sqldb.Nanos(t.at.Add(-s.cfg.TouchEvery))); err != nil {
				return fmt.Errorf("key %s: %w", t.id, err)
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.cfg.Logger.WarnContext(ctx, "keys: recording keys' use", "keys", len(touches), "err", err)
	}
}

// remember caches e, keeping the cache within CacheSize: expired entries
// go first, then whichever the map yields.
func (s *Store) remember(sum [sha256.Size]byte, e *entry, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cache[sum]; !ok && len(s.cache) >= s.cfg.CacheSize {
		for d, old := range s.cache {
			if !now.Before(old.until) {
				delete(s.cache, d)
			}
		}
		for d := range s.cache {
			if len(s.cache) < s.cfg.CacheSize {
				break
			}
			delete(s.cache, d)
		}
	}
	s.cache[sum] = e
}

func (s *Store) uncache(digest []byte) {
	var sum [sha256.Size]byte
	copy(sum[:], digest)
	s.mu.Lock()
	delete(s.cache, sum)
	s.mu.Unlock()
}

// Cached is how many keys the lookup cache holds (for tests).
func (s *Store) Cached() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cache)
}

// sweepBatch bounds one transaction of Sweep.
const sweepBatch = 500

// Sweep deletes keys unused for TTL that have no unfinished work, with
// what belongs only to them (signing secrets, disabled endpoints, inboxes
// through OnDelete); their jobs stay until their own retention. It answers
// how many it deleted. The housekeeping job runs it every minute.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	s.FlushTouches(ctx)
	cutoff := sqldb.Nanos(s.cfg.Now().Add(-s.cfg.TTL))
	total := 0
	for {
		var gone [][]byte
		err := s.cfg.DB.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
			gone = gone[:0]
			rows, err := tx.Query(ctx, `SELECT k.digest, k.id FROM api_keys k WHERE k.last_used_at < ? AND `+idle+` ORDER BY k.last_used_at LIMIT ?`, cutoff, sweepBatch)
			if err != nil {
				return err
			}
			type cand struct {
				digest []byte
				id     string
			}
			var cands []cand
			for rows.Next() {
				var c cand
				if err := rows.Scan(&c.digest, &c.id); err != nil {
					_ = rows.Close()
					return err
				}
				cands = append(cands, c)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			for _, c := range cands {
				ok, err := s.forget(ctx, tx, c.digest, c.id, cutoff)
				if err != nil {
					return err
				}
				if ok {
					gone = append(gone, c.digest)
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("keys: deleting expired keys: %w", err)
		}
		for _, d := range gone {
			s.uncache(d)
		}
		total += len(gone)
		if len(gone) < sweepBatch {
			if total > 0 {
				s.cfg.Logger.InfoContext(ctx, "expired sandbox keys deleted", "count", total, "idle_for", s.cfg.TTL.String())
			}
			return total, nil
		}
	}
}

// Count answers how many keys there are, of network (or of all for "").
func (s *Store) Count(ctx context.Context, network string) (int, error) {
	q, args := `SELECT COUNT(*) FROM api_keys`, []any{}
	if network != "" {
		q, args = q+` WHERE network = ?`, []any{network}
	}
	var n int
	if err := s.cfg.DB.Read().QueryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("keys: counting: %w", err)
	}
	return n, nil
}
