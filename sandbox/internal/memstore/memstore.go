// Package memstore is the in-memory jobs.Store the sandbox runs on: one
// process, no persistence, every job lost on restart. It copies jobs in and
// out, so nothing a caller holds aliases stored state, and it is safe for
// concurrent use.
//
// Expired jobs leave a tombstone (id, owner) so the status monitor can
// answer 410 Gone rather than 404. Tombstones are dropped TombstoneTTL after
// the job expired, during ListExpired (the janitor's pass), because an
// unbounded set of tombstones is a slow leak in a long-running sandbox;
// after that the id answers ErrNotFound.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
)

// TombstoneTTL is how long an expired job keeps answering ErrGone.
const TombstoneTTL = 7 * 24 * time.Hour

type tombstone struct {
	owner     string
	expiredAt time.Time // the job's ExpiresAt, so housekeeping needs no clock of its own
}

// Store is an in-memory jobs.Store. The zero value is not usable; call New.
type Store struct {
	mu    sync.RWMutex
	jobs  map[string]jobs.Job
	tombs map[string]tombstone
	// The sweeper lists stalled and expired jobs every second while holding
	// the lock; with 100,000 jobs in flight a scan of every job took ~60 ms,
	// stalling every write behind it. These index the only jobs those lists
	// can match (what an index on status and expires_at would do in SQL).
	processing map[string]struct{} // Status == processing
	expiring   map[string]struct{} // ExpiresAt set
}

var _ jobs.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		jobs: make(map[string]jobs.Job), tombs: make(map[string]tombstone),
		processing: make(map[string]struct{}), expiring: make(map[string]struct{}),
	}
}

// indexLocked files j under the sets it belongs to now.
func (s *Store) indexLocked(j jobs.Job) {
	if j.Status == jobs.StatusProcessing {
		s.processing[j.ID] = struct{}{}
	} else {
		delete(s.processing, j.ID)
	}
	if !j.ExpiresAt.IsZero() {
		s.expiring[j.ID] = struct{}{}
	} else {
		delete(s.expiring, j.ID)
	}
}

// Create implements jobs.Store.
func (s *Store) Create(ctx context.Context, j jobs.Job) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: create: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, live := s.jobs[j.ID]
	_, dead := s.tombs[j.ID]
	if live || dead {
		return fmt.Errorf("memstore: create %s: %w", j.ID, jobs.ErrExists)
	}
	s.jobs[j.ID] = j.Clone()
	s.indexLocked(j)
	return nil
}

// Get implements jobs.Store. For a tombstone it answers ErrGone with a Job
// holding only ID and Owner.
func (s *Store) Get(ctx context.Context, id string) (jobs.Job, error) {
	if err := ctx.Err(); err != nil {
		return jobs.Job{}, fmt.Errorf("memstore: get: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if j, ok := s.jobs[id]; ok {
		return j.Clone(), nil
	}
	if t, ok := s.tombs[id]; ok {
		return jobs.Job{ID: id, Owner: t.owner}, fmt.Errorf("memstore: get %s: %w", id, jobs.ErrGone)
	}
	return jobs.Job{}, fmt.Errorf("memstore: get %s: %w", id, jobs.ErrNotFound)
}

// Update implements jobs.Store with compare-and-swap on Version.
func (s *Store) Update(ctx context.Context, j jobs.Job) (jobs.Job, error) {
	if err := ctx.Err(); err != nil {
		return jobs.Job{}, fmt.Errorf("memstore: update: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.jobs[j.ID]
	if !ok {
		if _, dead := s.tombs[j.ID]; dead {
			return jobs.Job{}, fmt.Errorf("memstore: update %s: %w", j.ID, jobs.ErrGone)
		}
		return jobs.Job{}, fmt.Errorf("memstore: update %s: %w", j.ID, jobs.ErrNotFound)
	}
	if cur.Version != j.Version {
		return jobs.Job{}, fmt.Errorf("memstore: update %s at version %d, stored %d: %w", j.ID, j.Version, cur.Version, jobs.ErrVersionConflict)
	}
	j = j.Clone()
	j.Version++
	s.jobs[j.ID] = j
	s.indexLocked(j)
	return j.Clone(), nil
}

// ListStalled implements jobs.Store, oldest beat first.
func (s *Store) ListStalled(ctx context.Context, q jobs.StallQuery, limit int) ([]jobs.Job, error) {
	return s.list(ctx, limit, s.processing, q.Stalled, func(j jobs.Job) time.Time { return j.LastBeat })
}

// ListExpired implements jobs.Store, earliest expiry first. It also drops
// tombstones older than TombstoneTTL.
func (s *Store) ListExpired(ctx context.Context, now time.Time, limit int) ([]jobs.Job, error) {
	s.mu.Lock()
	for id, t := range s.tombs {
		if !t.expiredAt.Add(TombstoneTTL).After(now) {
			delete(s.tombs, id)
		}
	}
	s.mu.Unlock()
	expired := func(j jobs.Job) bool { return !j.ExpiresAt.IsZero() && !j.ExpiresAt.After(now) }
	return s.list(ctx, limit, s.expiring, expired, func(j jobs.Job) time.Time { return j.ExpiresAt })
}

// list answers the jobs of set (one of the indexes) that match.
func (s *Store) list(ctx context.Context, limit int, set map[string]struct{}, match func(jobs.Job) bool, order func(jobs.Job) time.Time) ([]jobs.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list: %w", err)
	}
	if limit <= 0 {
		return nil, nil
	}
	s.mu.RLock()
	var out []jobs.Job
	for id := range set {
		if j := s.jobs[id]; match(j) {
			out = append(out, j)
		}
	}
	s.mu.RUnlock()
	// Sorting the matches is O(m log m) per sweep; a database would use an index.
	slices.SortFunc(out, func(a, b jobs.Job) int { return cmp.Or(order(a).Compare(order(b)), cmp.Compare(a.ID, b.ID)) })
	if len(out) > limit {
		out = out[:limit]
	}
	for i := range out {
		out[i] = out[i].Clone()
	}
	return out, nil
}

// Expire implements jobs.Store.
func (s *Store) Expire(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: expire: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		if _, dead := s.tombs[id]; dead {
			return nil
		}
		return fmt.Errorf("memstore: expire %s: %w", id, jobs.ErrNotFound)
	}
	delete(s.jobs, id)
	delete(s.processing, id)
	delete(s.expiring, id)
	s.tombs[id] = tombstone{owner: j.Owner, expiredAt: j.ExpiresAt}
	return nil
}

// Count implements jobs.Store: live jobs, tombstones excluded.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: count: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.jobs), nil
}
