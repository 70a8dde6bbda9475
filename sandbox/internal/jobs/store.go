package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// The jobs table, written once for both backends (see sqldb).

const jobColumns = `id, owner, kind, status, percent, message, input, output, failure_code, failure_detail,
	created_at, updated_at, started_at, finished_at, expires_at, expected, last_beat, version,
	plan, step, next_at, river_id, tombstone, network, trace_parent`

// scanJob reads one row of jobColumns. tomb reports an expired job, of
// which only ID, Owner and Kind are kept.
func scanJob(r sqldb.Row) (j Job, riverID int64, tomb bool, err error) {
	var (
		created, updated, started, finished, expires, expected, beat, next int64
		code, detail, status, kind                                         string
		plan                                                               []byte
		tombstone                                                          int
	)
	err = r.Scan(&j.ID, &j.Owner, &kind, &status, &j.Percent, &j.Message, &j.Input, &j.Output, &code, &detail,
		&created, &updated, &started, &finished, &expires, &expected, &beat, &j.Version,
		&plan, &j.Step, &next, &riverID, &tombstone, &j.Network, &j.Trace)
	if err != nil {
		return Job{}, 0, false, err
	}
	j.Kind, j.Status = Kind(kind), Status(status)
	j.CreatedAt, j.UpdatedAt, j.StartedAt, j.FinishedAt = sqldb.Time(created), sqldb.Time(updated), sqldb.Time(started), sqldb.Time(finished)
	j.ExpiresAt, j.LastBeat, j.NextAt = sqldb.Time(expires), sqldb.Time(beat), sqldb.Time(next)
	j.Expected = time.Duration(expected)
	if code != "" {
		j.Failure = &Failure{Code: code, Detail: detail}
	}
	if len(plan) > 0 {
		if err := json.Unmarshal(plan, &j.Plan); err != nil {
			return Job{}, 0, false, fmt.Errorf("job %s: reading its plan: %w", j.ID, err)
		}
	}
	return j, riverID, tombstone == 1, nil
}

// load reads a job inside tx, or outside any (tx nil). On PostgreSQL a
// read in a transaction locks the row, so concurrent changes to one job
// take turns; SQLite has one writer anyway.
func (e *Engine) load(ctx context.Context, tx sqldb.Tx, id string) (j Job, riverID int64, tomb bool, err error) {
	q := `SELECT ` + jobColumns + ` FROM jobs WHERE id = ?`
	var r sqldb.Row
	if tx == nil {
		r = e.db.Read().QueryRow(ctx, q, id)
	} else {
		if e.db.Dialect() == sqldb.Postgres {
			q += ` FOR UPDATE`
		}
		r = tx.QueryRow(ctx, q, id)
	}
	j, riverID, tomb, err = scanJob(r)
	if errors.Is(err, sqldb.ErrNoRows) {
		return Job{}, 0, false, ErrNotFound
	}
	if err != nil {
		return Job{}, 0, false, fmt.Errorf("jobs: reading %s: %w", id, err)
	}
	return j, riverID, tomb, nil
}

// insert writes a new job.
func insert(ctx context.Context, tx sqldb.Tx, j Job, riverID int64) error {
	plan, err := json.Marshal(j.Plan)
	if err != nil {
		return fmt.Errorf("jobs: encoding the plan: %w", err)
	}
	n, err := tx.Exec(ctx, `INSERT INTO jobs (id, owner, network, kind, status, input, created_at, updated_at, expected, version, plan, river_id, trace_parent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		j.ID, j.Owner, j.Network, string(j.Kind), string(j.Status), j.Input, sqldb.Nanos(j.CreatedAt), sqldb.Nanos(j.UpdatedAt),
		int64(j.Expected), j.Version, plan, riverID, j.Trace)
	if err != nil {
		return fmt.Errorf("jobs: inserting %s: %w", j.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("jobs: inserting %s: %w", j.ID, ErrExists)
	}
	return nil
}

// save writes what a change did to j (its version already raised).
// driven says whether a River job still drives it.
func save(ctx context.Context, tx sqldb.Tx, j Job, driven bool) error {
	code, detail := "", ""
	if j.Failure != nil {
		code, detail = j.Failure.Code, j.Failure.Detail
	}
	_, err := tx.Exec(ctx, `UPDATE jobs SET status = ?, percent = ?, message = ?, output = ?, failure_code = ?, failure_detail = ?,
		updated_at = ?, started_at = ?, finished_at = ?, expires_at = ?, last_beat = ?, version = ?, step = ?, next_at = ?, driven = ?
		WHERE id = ?`,
		string(j.Status), j.Percent, j.Message, j.Output, code, detail,
		sqldb.Nanos(j.UpdatedAt), sqldb.Nanos(j.StartedAt), sqldb.Nanos(j.FinishedAt), sqldb.Nanos(j.ExpiresAt), sqldb.Nanos(j.LastBeat),
		j.Version, j.Step, sqldb.Nanos(j.NextAt), sqldb.Bool(driven), j.ID)
	if err != nil {
		return fmt.Errorf("jobs: writing %s: %w", j.ID, err)
	}
	return nil
}
