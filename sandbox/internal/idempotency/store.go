package idempotency

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// Clock is the time source Store needs; the sandbox's clock package
// satisfies it, tests pass a fake.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Config configures a Store. Zero values take the documented defaults.
type Config struct {
	// TTL is how long a key is remembered after Begin; default 24 h, the
	// documented minimum of R20 (tests may set less).
	TTL time.Duration
	// InFlightTimeout is how long a Begin without Complete, Abandon or Link
	// blocks the key (a handler that panicked, a process that died) before
	// a retry may take it over; default 5 minutes. A claim that made its
	// job is never taken over: the record names the job.
	InFlightTimeout time.Duration
	// MaxKeysPerOwner bounds the keys one owner holds at once; default 1 000.
	MaxKeysPerOwner int
	// MaxResponseBytes bounds one stored response; default 64 KiB. A larger
	// answer is not stored, and a replay answers from the job.
	MaxResponseBytes int
	// Clock defaults to the system clock.
	Clock Clock
	// Logger defaults to one that discards.
	Logger *slog.Logger
}

// Store keeps idempotency records in the database.
type Store struct {
	db  sqldb.DB
	cfg Config
}

// New returns a Store on db (migrated: the idempotency table).
func New(db sqldb.DB, cfg Config) *Store {
	if cfg.TTL <= 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.InFlightTimeout <= 0 {
		cfg.InFlightTimeout = 5 * time.Minute
	}
	if cfg.MaxKeysPerOwner <= 0 {
		cfg.MaxKeysPerOwner = 1_000
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
	return &Store{db: db, cfg: cfg}
}

// Begin claims key for owner, or reports what became of an earlier claim.
// Errors: ErrKeyInvalid, ErrInFlight, ErrMismatch, ErrOwnerFull.
func (s *Store) Begin(ctx context.Context, owner, key string, fp [32]byte) (Outcome, error) {
	if err := ValidateKey(key); err != nil {
		return Outcome{}, err
	}
	now := s.cfg.Clock.Now()
	var out Outcome
	err := s.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		q := `SELECT fingerprint, started_at, expires_at, job_id, status, header, body FROM idempotency WHERE owner = ? AND key = ?`
		if s.db.Dialect() == sqldb.Postgres {
			q += ` FOR UPDATE`
		}
		var (
			storedFP       []byte
			started, until int64
			jobID          string
			status         int
			header, body   []byte
		)
		err := tx.QueryRow(ctx, q, owner, key).Scan(&storedFP, &started, &until, &jobID, &status, &header, &body)
		switch {
		case errors.Is(err, sqldb.ErrNoRows):
		case err != nil:
			return fmt.Errorf("idempotency: reading %s: %w", key, err)
		case !now.Before(sqldb.Time(until)):
			// Expired: forget it, and claim anew below.
			if _, err := tx.Exec(ctx, `DELETE FROM idempotency WHERE owner = ? AND key = ?`, owner, key); err != nil {
				return fmt.Errorf("idempotency: dropping an expired record: %w", err)
			}
		case !bytes.Equal(storedFP, fp[:]):
			return ErrMismatch
		case status != 0:
			out = Outcome{Replayed: true, JobID: jobID, Response: Response{Status: status, Header: http.Header{}, Body: body}}
			if len(header) > 0 {
				if err := json.Unmarshal(header, &out.Response.Header); err != nil {
					return fmt.Errorf("idempotency: reading a stored answer: %w", err)
				}
			}
			return nil
		case jobID != "":
			out = Outcome{Replayed: true, JobID: jobID}
			return nil
		case now.Sub(sqldb.Time(started)) < s.cfg.InFlightTimeout:
			return ErrInFlight
		default:
			// The first request never made its job: let this one run.
			s.cfg.Logger.Warn("idempotency key in flight too long; handing it to a retry", "owner", owner, "age", now.Sub(sqldb.Time(started)))
			_, err := tx.Exec(ctx, `UPDATE idempotency SET started_at = ? WHERE owner = ? AND key = ?`, sqldb.Nanos(now), owner, key)
			return err
		}
		var held int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM idempotency WHERE owner = ? AND expires_at > ?`, owner, sqldb.Nanos(now)).Scan(&held); err != nil {
			return fmt.Errorf("idempotency: counting keys: %w", err)
		}
		if held >= s.cfg.MaxKeysPerOwner {
			return fmt.Errorf("%w: %d keys in the last %v", ErrOwnerFull, held, s.cfg.TTL)
		}
		n, err := tx.Exec(ctx, `INSERT INTO idempotency (owner, key, fingerprint, started_at, expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner, key) DO NOTHING`,
			owner, key, fp[:], sqldb.Nanos(now), sqldb.Nanos(now.Add(s.cfg.TTL)))
		if err != nil {
			return fmt.Errorf("idempotency: claiming %s: %w", key, err)
		}
		if n == 0 { // another request claimed it between our read and our write
			return ErrInFlight
		}
		return nil
	})
	return out, err
}

// Link records, in tx (the transaction that creates the job), that the
// claim of owner and key made job jobID. It fails when the claim is no
// longer in flight (taken over by a retry, or already linked), which rolls
// the job back: a key makes one job.
func (s *Store) Link(ctx context.Context, tx sqldb.Tx, owner, key, jobID string) error {
	n, err := tx.Exec(ctx, `UPDATE idempotency SET job_id = ? WHERE owner = ? AND key = ? AND job_id = '' AND status = 0`, jobID, owner, key)
	if err != nil {
		return fmt.Errorf("idempotency: linking %s to %s: %w", key, jobID, err)
	}
	if n == 0 {
		return fmt.Errorf("idempotency: linking %s to %s: %w", key, jobID, ErrNotInFlight)
	}
	return nil
}

// Complete stores resp for replay. A response over MaxResponseBytes is not
// stored (ErrResponseTooLarge): a replay then answers from the job.
func (s *Store) Complete(ctx context.Context, owner, key string, resp Response) error {
	if resp.size() > s.cfg.MaxResponseBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrResponseTooLarge, resp.size(), s.cfg.MaxResponseBytes)
	}
	header, err := json.Marshal(resp.Header)
	if err != nil {
		return fmt.Errorf("idempotency: storing an answer: %w", err)
	}
	var n int64
	err = s.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		n, err = tx.Exec(ctx, `UPDATE idempotency SET status = ?, header = ?, body = ? WHERE owner = ? AND key = ? AND status = 0`,
			resp.Status, header, resp.Body, owner, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("idempotency: storing an answer: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("idempotency complete: %w", ErrNotInFlight)
	}
	return nil
}

// Abandon forgets a claim that made no job, so a retry runs again.
func (s *Store) Abandon(ctx context.Context, owner, key string) error {
	var n int64
	err := s.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) (err error) {
		n, err = tx.Exec(ctx, `DELETE FROM idempotency WHERE owner = ? AND key = ? AND job_id = '' AND status = 0`, owner, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("idempotency: abandoning %s: %w", key, err)
	}
	if n == 0 {
		return fmt.Errorf("idempotency abandon: %w", ErrNotInFlight)
	}
	return nil
}

// Sweep forgets expired records, a bounded batch per call.
func (s *Store) Sweep(ctx context.Context) error {
	return s.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM idempotency WHERE (owner, key) IN
			(SELECT owner, key FROM idempotency WHERE expires_at <= ? ORDER BY expires_at LIMIT 1000)`, sqldb.Nanos(s.cfg.Clock.Now()))
		if err != nil {
			return fmt.Errorf("idempotency: sweeping: %w", err)
		}
		return nil
	})
}

// Len reports how many records are held (for tests and metrics).
func (s *Store) Len(ctx context.Context) (int, error) {
	var n int
	err := s.db.Read().QueryRow(ctx, `SELECT COUNT(*) FROM idempotency`).Scan(&n)
	return n, err
}
