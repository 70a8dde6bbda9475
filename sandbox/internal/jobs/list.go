package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// MaxListLimit bounds one page of List.
const MaxListLimit = 100

// Cursor is a place in an owner's jobs, newest first: the last job of the
// previous page. Jobs are ordered by (CreatedAt, ID) descending, a key that
// never changes, and a page starts strictly after its cursor rather than at
// an offset: a job accepted while a client pages (newer than every job
// already listed) cannot make a job repeat or be skipped.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// IsZero reports whether c is the start, before the first page.
func (c Cursor) IsZero() bool { return c.ID == "" }

// CursorOf is the cursor just after j.
func CursorOf(j Job) Cursor { return Cursor{CreatedAt: j.CreatedAt, ID: j.ID} }

// ListQuery selects a page of one owner's jobs.
type ListQuery struct {
	Owner string
	// Statuses and Kinds keep the jobs with any of their values; empty
	// keeps them all. Both together keep the jobs that match each.
	Statuses []Status
	Kinds    []Kind
	// After is where the previous page ended; zero for the first page.
	After Cursor
	// Limit is the page size, 1 to MaxListLimit.
	Limit int
}

// List answers a page of q.Owner's jobs, newest first, and whether more
// follow it. Only jobs the owner can still read are listed: an expired
// job (past its retention, answered 410 Gone) is not.
func (e *Engine) List(ctx context.Context, q ListQuery) (page []Job, more bool, err error) {
	if q.Owner == "" {
		return nil, false, errors.New("jobs: List needs an owner")
	}
	if q.Limit < 1 || q.Limit > MaxListLimit {
		return nil, false, fmt.Errorf("jobs: List limit %d outside 1..%d", q.Limit, MaxListLimit)
	}
	var sb strings.Builder
	sb.WriteString(`SELECT ` + jobColumns + ` FROM jobs WHERE owner = ? AND tombstone = 0 AND (expires_at = 0 OR expires_at > ?)`)
	args := []any{q.Owner, sqldb.Nanos(e.clk.Now())}
	in := func(column string, values []string) {
		if len(values) == 0 {
			return
		}
		sb.WriteString(` AND ` + column + ` IN (?` + strings.Repeat(`, ?`, len(values)-1) + `)`)
		for _, v := range values {
			args = append(args, v)
		}
	}
	statuses := make([]string, len(q.Statuses))
	for i, s := range q.Statuses {
		if !s.Valid() {
			return nil, false, fmt.Errorf("jobs: List by unknown status %q", s)
		}
		statuses[i] = string(s)
	}
	kinds := make([]string, len(q.Kinds))
	for i, k := range q.Kinds {
		kinds[i] = string(k)
	}
	in("status", statuses)
	in("kind", kinds)
	if !q.After.IsZero() {
		// The jobs after the cursor in (created_at DESC, id DESC) order.
		at := sqldb.Nanos(q.After.CreatedAt)
		sb.WriteString(` AND (created_at < ? OR (created_at = ? AND id < ?))`)
		args = append(args, at, at, q.After.ID)
	}
	// The index jobs_owner (owner, created_at, id) serves this order,
	// read backwards; one row more than asked says whether more follow.
	sb.WriteString(` ORDER BY created_at DESC, id DESC LIMIT ?`)
	args = append(args, q.Limit+1)

	rows, err := e.db.Read().Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, false, fmt.Errorf("jobs: listing the jobs of %s: %w", q.Owner, err)
	}
	page = make([]Job, 0, q.Limit)
	for rows.Next() {
		j, _, _, err := scanJob(rows)
		if err != nil {
			_ = rows.Close()
			return nil, false, fmt.Errorf("jobs: listing the jobs of %s: %w", q.Owner, err)
		}
		page = append(page, j)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, false, fmt.Errorf("jobs: listing the jobs of %s: %w", q.Owner, err)
	}
	if len(page) > q.Limit {
		return page[:q.Limit], true, nil
	}
	return page, false, nil
}
