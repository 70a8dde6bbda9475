package idempotency

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Clock is the time source Memory needs; the sandbox's clock package
// satisfies it, tests pass a fake.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Config configures Memory. Zero values take the documented defaults.
type Config struct {
	// TTL is how long a key is remembered after Begin; default 24 h, the
	// documented minimum of R20 (tests may set less).
	TTL time.Duration
	// InFlightTimeout is how long a Begin without Complete or Abandon blocks
	// the key (a handler that panicked, say) before a retry may take it over;
	// default 5 minutes. Keep it well above the slowest handler: a late
	// Complete from the first request would otherwise store its response
	// under the retry's claim.
	InFlightTimeout time.Duration
	// MaxKeysPerOwner bounds the keys one owner holds at once; default 1 000.
	MaxKeysPerOwner int
	// MaxKeys bounds the keys held overall; default 100 000.
	MaxKeys int
	// MaxBytes bounds the bytes of stored responses overall; default 64 MiB.
	MaxBytes int
	// MaxResponseBytes bounds one stored response; default 64 KiB.
	MaxResponseBytes int
	// Clock defaults to the system clock.
	Clock Clock
	// Logger defaults to one that discards.
	Logger *slog.Logger
}

// Memory is an in-process Store. Entries are lost on restart, which is fine
// for the sandbox: its jobs are in memory too.
type Memory struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	owners map[string]map[string]*entry
	byAge  []*entry // in Begin order, which is expiry order since TTL is fixed
	keys   int
	bytes  int
}

type entry struct {
	owner, key string
	fp         [32]byte
	started    time.Time
	expires    time.Time
	done       bool
	resp       Response
	size       int
	removed    bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory(cfg Config) *Memory {
	if cfg.TTL <= 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.InFlightTimeout <= 0 {
		cfg.InFlightTimeout = 5 * time.Minute
	}
	if cfg.MaxKeysPerOwner <= 0 {
		cfg.MaxKeysPerOwner = 1_000
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 100_000
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 64 << 10
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Memory{cfg: cfg, log: cfg.Logger, owners: make(map[string]map[string]*entry)}
}

// Begin implements Store.
func (m *Memory) Begin(ctx context.Context, owner, key string, fp [32]byte) (Outcome, error) {
	if err := ValidateKey(key); err != nil {
		return Outcome{}, err
	}
	if err := ctx.Err(); err != nil {
		return Outcome{}, fmt.Errorf("idempotency begin: %w", err)
	}
	now := m.cfg.Clock.Now()

	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)

	if e := m.owners[owner][key]; e != nil {
		switch {
		case e.fp != fp:
			return Outcome{}, ErrMismatch
		case e.done:
			return Outcome{Replayed: true, Response: e.resp.clone()}, nil
		case now.Sub(e.started) < m.cfg.InFlightTimeout:
			return Outcome{}, ErrInFlight
		}
		// The first request never finished; let this one run.
		m.log.Warn("idempotency key in flight too long; handing it to a retry",
			"owner", owner, "age", now.Sub(e.started))
		m.removeLocked(e)
	}

	if len(m.owners[owner]) >= m.cfg.MaxKeysPerOwner {
		return Outcome{}, fmt.Errorf("%w: %d keys in the last %v", ErrOwnerFull, len(m.owners[owner]), m.cfg.TTL)
	}
	if m.keys >= m.cfg.MaxKeys || m.bytes >= m.cfg.MaxBytes {
		return Outcome{}, fmt.Errorf("%w: %d keys, %d bytes", ErrStoreFull, m.keys, m.bytes)
	}
	e := &entry{owner: owner, key: key, fp: fp, started: now, expires: now.Add(m.cfg.TTL)}
	if m.owners[owner] == nil {
		m.owners[owner] = make(map[string]*entry)
	}
	m.owners[owner][key] = e
	m.byAge = append(m.byAge, e)
	m.keys++
	return Outcome{}, nil
}

// Complete implements Store. A response over Config.MaxResponseBytes is not
// kept: the key is forgotten and ErrResponseTooLarge returned.
func (m *Memory) Complete(ctx context.Context, owner, key string, resp Response) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.owners[owner][key]
	if e == nil || e.done {
		return fmt.Errorf("idempotency complete: %w", ErrNotInFlight)
	}
	size := resp.size() + len(owner) + len(key)
	if resp.size() > m.cfg.MaxResponseBytes {
		m.removeLocked(e)
		return fmt.Errorf("%w: %d bytes, limit %d", ErrResponseTooLarge, resp.size(), m.cfg.MaxResponseBytes)
	}
	e.done, e.resp, e.size = true, resp.clone(), size
	m.bytes += size
	return nil
}

// Abandon implements Store.
func (m *Memory) Abandon(ctx context.Context, owner, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.owners[owner][key]
	if e == nil || e.done {
		return fmt.Errorf("idempotency abandon: %w", ErrNotInFlight)
	}
	m.removeLocked(e)
	return nil
}

// Len reports how many keys are held (for tests and metrics).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keys
}

// Sweep drops expired entries. Begin already sweeps; call Sweep from a
// janitor to free memory when no requests arrive.
func (m *Memory) Sweep() {
	now := m.cfg.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
}

// sweepLocked pops expired entries off the front of byAge: amortized O(1)
// per Begin.
func (m *Memory) sweepLocked(now time.Time) {
	i := 0
	for ; i < len(m.byAge); i++ {
		e := m.byAge[i]
		if !e.removed && now.Before(e.expires) {
			break
		}
		if !e.removed {
			m.removeLocked(e)
		}
		m.byAge[i] = nil
	}
	m.byAge = m.byAge[i:]
	// Compact tombstones left by Abandon so the slice stays proportional to
	// the live keys.
	if len(m.byAge) > 64 && len(m.byAge) > 2*m.keys {
		live := make([]*entry, 0, m.keys)
		for _, e := range m.byAge {
			if !e.removed {
				live = append(live, e)
			}
		}
		m.byAge = live
	}
}

func (m *Memory) removeLocked(e *entry) {
	if e.removed {
		return
	}
	e.removed = true
	keys := m.owners[e.owner]
	delete(keys, e.key)
	if len(keys) == 0 {
		delete(m.owners, e.owner)
	}
	m.keys--
	m.bytes -= e.size
}
