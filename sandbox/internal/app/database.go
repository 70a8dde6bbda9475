package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/accepted-dev/accepted/sandbox/internal/postgres"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/sqlite"
)

// OpenDatabase opens what -database names: "memory" (a database that ends
// with the process), a postgres:// or postgresql:// URL, or a SQLite file
// (a path, or sqlite:PATH or file:PATH). It does not migrate.
func OpenDatabase(ctx context.Context, name string, log *slog.Logger, now func() time.Time) (sqldb.DB, error) {
	switch {
	case name == "":
		return nil, fmt.Errorf("-database is empty: give a SQLite file path (default %s), memory, or a postgres:// URL", DefaultDatabase)
	case name == "memory":
		return sqlite.Memory(ctx, log, now)
	case strings.HasPrefix(name, "postgres://"), strings.HasPrefix(name, "postgresql://"):
		return postgres.Open(ctx, name, log, now)
	case strings.Contains(name, "://"):
		return nil, fmt.Errorf("-database %q: use a SQLite file path, memory, or a postgres:// URL", redactURL(name))
	}
	path := strings.TrimPrefix(strings.TrimPrefix(name, "sqlite:"), "file:")
	return sqlite.Open(ctx, path, log, now)
}

// redactURL drops what looks like a password from a URL for messages.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
			rest = user + ":xxxxx" + rest[at:]
		}
	}
	return scheme + "://" + rest
}

// housekeeping runs, on River's leader, the sweeps of the stores that
// are not the job engine's: expired Idempotency-Key records, API keys
// unused for -key-ttl, and inboxes idle for -inbox-ttl.
type housekeepingArgs struct{}

func (housekeepingArgs) Kind() string { return "accepted_housekeeping" }

type housekeepingWorker struct {
	river.WorkerDefaults[housekeepingArgs]
	s *Server
}

func (w *housekeepingWorker) Work(ctx context.Context, _ *river.Job[housekeepingArgs]) error {
	_, keysErr := w.s.keys.Sweep(ctx)
	_, inboxErr := w.s.hooks.inboxes.Sweep(ctx)
	return errors.Join(w.s.idem.Sweep(ctx), keysErr, inboxErr)
}

// HousekeepingEvery is how often expired records are swept.
const HousekeepingEvery = time.Minute

func housekeepingJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(HousekeepingEvery),
		func() (river.JobArgs, *river.InsertOpts) {
			return housekeepingArgs{}, &river.InsertOpts{Queue: "maintenance", MaxAttempts: 1}
		}, &river.PeriodicJobOpts{ID: "accepted_housekeeping"})
}
