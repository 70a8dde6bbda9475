// Package secrets keeps each API key's webhook signing secret, and lets it
// be rotated without breaking receivers: after a rotation the previous
// secret stays active for a grace window, so deliveries carry a signature
// under each and a receiver can switch over at its own pace.
//
// Secrets live in the database, so every replica signs with the same ones
// and a restart changes none. There is one row per API key that asked, so
// the table is bounded by the keys the sandbox issues.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// Clock is what the store needs of the sandbox clock.
type Clock interface{ Now() time.Time }

// DefaultGrace is how long a rotated-out secret keeps signing deliveries.
const DefaultGrace = 24 * time.Hour

// ErrNoOwner is returned for an empty owner.
var ErrNoOwner = errors.New("secrets: no owner")

// Secret is one signing secret.
type Secret struct {
	Value string
	// CreatedAt is when the current secret was made (not kept for a
	// previous one).
	CreatedAt time.Time
	// ExpiresAt is when a previous secret stops being used; zero for the
	// current one.
	ExpiresAt time.Time
}

// Set is an owner's active secrets.
type Set struct {
	Current Secret
	// Previous is the secret replaced by the last rotation, while its grace
	// window lasts; nil otherwise.
	Previous *Secret
}

// Active lists the secret values to sign with, current first.
func (s Set) Active() []string {
	if s.Previous == nil {
		return []string{s.Current.Value}
	}
	return []string{s.Current.Value, s.Previous.Value}
}

// Store keeps secrets in the webhook_secrets table.
type Store struct {
	db    sqldb.DB
	clk   Clock
	grace time.Duration
}

// New returns a store on db. grace ≤ 0 means DefaultGrace.
func New(db sqldb.DB, clk Clock, grace time.Duration) *Store {
	if grace <= 0 {
		grace = DefaultGrace
	}
	return &Store{db: db, clk: clk, grace: grace}
}

// Grace is the store's grace window.
func (s *Store) Grace() time.Duration { return s.grace }

// row is one owner's row.
type row struct {
	current, previous string
	created, expires  int64
}

const selectRow = `SELECT current, current_created, previous, previous_expires FROM webhook_secrets WHERE owner = ?`

func scan(r sqldb.Row) (row, error) {
	var x row
	err := r.Scan(&x.current, &x.created, &x.previous, &x.expires)
	return x, err
}

// Get returns owner's active secrets, creating the first on first use.
func (s *Store) Get(ctx context.Context, owner string) (Set, error) {
	if owner == "" {
		return Set{}, ErrNoOwner
	}
	x, err := scan(s.db.Read().QueryRow(ctx, selectRow, owner))
	if err == nil {
		return s.set(x), nil
	}
	if !errors.Is(err, sqldb.ErrNoRows) {
		return Set{}, fmt.Errorf("secrets: reading %s's: %w", owner, err)
	}
	err = s.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		var err error
		x, err = s.ensure(ctx, tx, owner, false)
		return err
	})
	if err != nil {
		return Set{}, fmt.Errorf("secrets: creating %s's: %w", owner, err)
	}
	return s.set(x), nil
}

// Active lists owner's secrets to sign with, current first.
func (s *Store) Active(ctx context.Context, owner string) ([]string, error) {
	set, err := s.Get(ctx, owner)
	if err != nil {
		return nil, err
	}
	return set.Active(), nil
}

// Rotate makes a new current secret; the old one stays active for the
// grace window. Only one previous secret is kept: rotating again ends the
// older one's grace at once. Rotations of one owner take turns, on every
// replica.
func (s *Store) Rotate(ctx context.Context, owner string) (Set, error) {
	if owner == "" {
		return Set{}, ErrNoOwner
	}
	var x row
	err := s.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		cur, err := s.ensure(ctx, tx, owner, true)
		if err != nil {
			return err
		}
		v, err := webhooks.NewSecret()
		if err != nil {
			return err
		}
		now := s.clk.Now()
		x = row{current: v, created: sqldb.Nanos(now), previous: cur.current, expires: sqldb.Nanos(now.Add(s.grace))}
		_, err = tx.Exec(ctx, `UPDATE webhook_secrets SET current = ?, current_created = ?, previous = ?, previous_expires = ? WHERE owner = ?`,
			x.current, x.created, x.previous, x.expires, owner)
		return err
	})
	if err != nil {
		return Set{}, fmt.Errorf("secrets: rotating %s's: %w", owner, err)
	}
	return s.set(x), nil
}

// ensure answers owner's row in tx, creating it with a fresh secret when
// there is none; lock holds it until tx ends (PostgreSQL; SQLite has one
// writer anyway).
func (s *Store) ensure(ctx context.Context, tx sqldb.Tx, owner string, lock bool) (row, error) {
	v, err := webhooks.NewSecret()
	if err != nil {
		return row{}, err
	}
	// Two replicas creating at once: one insert wins, both read it.
	if _, err := tx.Exec(ctx, `INSERT INTO webhook_secrets (owner, current, current_created) VALUES (?, ?, ?) ON CONFLICT (owner) DO NOTHING`,
		owner, v, sqldb.Nanos(s.clk.Now())); err != nil {
		return row{}, err
	}
	q := selectRow
	if lock && s.db.Dialect() == sqldb.Postgres {
		q += ` FOR UPDATE`
	}
	return scan(tx.QueryRow(ctx, q, owner))
}

// set is the active part of a row: the previous secret only while its
// grace window lasts.
func (s *Store) set(x row) Set {
	set := Set{Current: Secret{Value: x.current, CreatedAt: sqldb.Time(x.created)}}
	if exp := sqldb.Time(x.expires); x.previous != "" && s.clk.Now().Before(exp) {
		set.Previous = &Secret{Value: x.previous, ExpiresAt: exp}
	}
	return set
}
