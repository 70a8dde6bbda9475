package inbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// Fair shares of the inboxes. Receiving needs no key, so what an inbox
// stores is bounded three ways besides its count of deliveries: a global
// byte budget, met by dropping the oldest deliveries of the inbox holding
// the most; a global count of inboxes, met by dropping the least recently
// active inbox of the network holding the most; and an idle expiry. (The
// rate of deliveries is limited per inbox and per source network by the
// API.)

// heaviestNetworksOldest answers up to n inboxes to drop when the store
// is full: of the network whose keys hold the most inboxes (owner's own
// aside: the per-owner bound handles those), the least recently active.
// An owner without a key record counts in network "".
func (s *Store) heaviestNetworksOldest(ctx context.Context, tx sqldb.Tx, owner string, n int) ([]string, error) {
	return ids(ctx, tx, `SELECT i.id FROM inboxes i LEFT JOIN api_keys k ON k.id = i.owner
		WHERE i.owner <> ? AND COALESCE(k.network, '') = (
			SELECT COALESCE(k2.network, '') FROM inboxes i2 LEFT JOIN api_keys k2 ON k2.id = i2.owner
			WHERE i2.owner <> ? GROUP BY COALESCE(k2.network, '') ORDER BY COUNT(*) DESC, COALESCE(k2.network, '') LIMIT 1)
		ORDER BY i.last_active_at, i.id LIMIT ?`, owner, owner, n)
}

// evictBatch bounds the deliveries one step of keepBudget drops.
const evictBatch = 100

// keepBudget brings the stored deliveries of all inboxes within MaxBytes,
// in tx, by dropping the oldest deliveries of the inbox that holds the
// most bytes (and still has some to drop), again and again; delivery seq
// of inbox id, just stored, is kept.
func (s *Store) keepBudget(ctx context.Context, tx sqldb.Tx, id string, seq int) error {
	var total int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(stored_bytes), 0) FROM inboxes`).Scan(&total); err != nil {
		return fmt.Errorf("inbox: summing stored bytes: %w", err)
	}
	for total > s.cfg.MaxBytes {
		var victim string
		err := tx.QueryRow(ctx, `SELECT i.id FROM inboxes i WHERE EXISTS (
				SELECT 1 FROM inbox_deliveries d WHERE d.inbox_id = i.id AND NOT (d.inbox_id = ? AND d.seq = ?))
			ORDER BY i.stored_bytes DESC, i.id LIMIT 1`, id, seq).Scan(&victim)
		if errors.Is(err, sqldb.ErrNoRows) {
			return nil // only the new delivery is left
		}
		if err != nil {
			return fmt.Errorf("inbox: finding deliveries to drop: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT seq, stored_bytes FROM inbox_deliveries WHERE inbox_id = ? AND NOT (inbox_id = ? AND seq = ?)
			ORDER BY seq LIMIT ?`, victim, id, seq, evictBatch)
		if err != nil {
			return fmt.Errorf("inbox: finding deliveries to drop: %w", err)
		}
		var upTo int
		var freed int64
		for rows.Next() && total-freed > s.cfg.MaxBytes {
			var n int
			var b int64
			if err := rows.Scan(&n, &b); err != nil {
				_ = rows.Close()
				return err
			}
			upTo, freed = n, freed+b
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("inbox: finding deliveries to drop: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM inbox_deliveries WHERE inbox_id = ? AND seq <= ? AND NOT (inbox_id = ? AND seq = ?)`, victim, upTo, id, seq); err != nil {
			return fmt.Errorf("inbox: dropping deliveries: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE inboxes SET stored_bytes = stored_bytes - ? WHERE id = ?`, freed, victim); err != nil {
			return fmt.Errorf("inbox: dropping deliveries: %w", err)
		}
		if victim != id {
			s.cfg.Logger.InfoContext(ctx, "inbox: over the byte budget; dropped the oldest deliveries of the largest inbox",
				"inbox", victim[:min(len(victim), 8)]+"…", "bytes", freed)
		}
		total -= freed
	}
	return nil
}

// Usage answers the bytes the stored deliveries of all inboxes take.
func (s *Store) Usage(ctx context.Context) (int64, error) {
	var n int64
	if err := s.cfg.DB.Read().QueryRow(ctx, `SELECT COALESCE(SUM(stored_bytes), 0) FROM inboxes`).Scan(&n); err != nil {
		return 0, fmt.Errorf("inbox: summing stored bytes: %w", err)
	}
	return n, nil
}

// dropInboxes deletes inboxes list (their deliveries go with them) and ends their
// subscriptions on every replica once tx commits.
func dropInboxes(ctx context.Context, tx sqldb.Tx, list []string, cond string, args ...any) (int, error) {
	n := 0
	for _, id := range list {
		gone, err := tx.Exec(ctx, `DELETE FROM inboxes WHERE id = ?`+cond, append([]any{id}, args...)...)
		if err != nil {
			return n, err
		}
		if gone == 0 {
			continue
		}
		n++
		if err := tx.Notify(Channel, id+" -"); err != nil {
			return n, err
		}
	}
	return n, nil
}

// DropOwner deletes every inbox of owner, in tx: the key's own deletion
// (keys.Config.OnDelete).
func (s *Store) DropOwner(ctx context.Context, tx sqldb.Tx, owner string) error {
	list, err := ids(ctx, tx, `SELECT id FROM inboxes WHERE owner = ?`, owner)
	if err != nil {
		return fmt.Errorf("inbox: listing %s's inboxes: %w", owner, err)
	}
	if _, err := dropInboxes(ctx, tx, list, ""); err != nil {
		return fmt.Errorf("inbox: dropping %s's inboxes: %w", owner, err)
	}
	return nil
}

// sweepBatch bounds one transaction of Sweep.
const sweepBatch = 500

// Sweep deletes inboxes idle for TTL (no delivery, behaviour change or
// creation since), with their deliveries, and answers how many. The
// housekeeping job runs it every minute.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	cutoff := sqldb.Nanos(s.cfg.Clock.Now().Add(-s.cfg.TTL))
	total := 0
	for {
		n := 0
		err := s.cfg.DB.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
			list, err := ids(ctx, tx, `SELECT id FROM inboxes WHERE last_active_at < ? ORDER BY last_active_at LIMIT ?`, cutoff, sweepBatch)
			if err != nil {
				return err
			}
			// Guarded again: a delivery may have arrived since the listing
			// (on PostgreSQL, from another replica).
			n, err = dropInboxes(ctx, tx, list, ` AND last_active_at < ?`, cutoff)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("inbox: deleting idle inboxes: %w", err)
		}
		total += n
		if n < sweepBatch {
			if total > 0 {
				s.cfg.Logger.InfoContext(ctx, "idle inboxes deleted", "count", total, "idle_for", s.cfg.TTL.String())
			}
			return total, nil
		}
	}
}
