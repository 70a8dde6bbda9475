package sqldb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrTooNew means the database was migrated by a newer binary: this one
// does not know its schema and must not run on it.
var ErrTooNew = errors.New("the database schema is newer than this binary")

// ErrNotMigrated means migrations are left to apply (Migrate with apply
// false).
var ErrNotMigrated = errors.New("the database is not migrated to this binary's version")

// MigrateResult says what Migrate applied.
type MigrateResult struct {
	River, App []int // versions applied now, in order
	// RiverVersion and AppVersion are the versions the database is at now.
	RiverVersion, AppVersion int
}

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads the migrations in dir of fsys: files named
// NNN_what.sql, numbered from 1 without gaps.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: the name must start with its number, as in 001_init.sql", name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must run 1, 2, 3 … without gaps", m.Name)
		}
	}
	return out, nil
}

// ApplyMigrations applies, each in a transaction of its own, the
// migrations not yet recorded in the schema_migrations table (which it
// creates), and answers their versions and the version the database is at.
// A database recording a version beyond the last migration is refused with
// ErrTooNew. Concurrent runs must be serialised by the caller (PostgreSQL:
// an advisory lock).
func ApplyMigrations(ctx context.Context, db DB, ms []Migration, now func() time.Time, apply bool) (applied []int, version int, err error) {
	if !apply {
		var current int
		err := db.Read().QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current)
		switch {
		case err != nil:
			return nil, 0, fmt.Errorf("%w: no sandbox schema yet (%v); run `sandbox migrate`", ErrNotMigrated, err)
		case current > len(ms):
			return nil, current, fmt.Errorf("%w: the database is at sandbox schema version %d, this binary knows versions up to %d", ErrTooNew, current, len(ms))
		case current < len(ms):
			return nil, current, fmt.Errorf("%w: sandbox schema version %d of %d; run `sandbox migrate`", ErrNotMigrated, current, len(ms))
		}
		return nil, current, nil
	}
	err = db.Tx(ctx, func(ctx context.Context, tx Tx) error {
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version BIGINT PRIMARY KEY,
			name TEXT NOT NULL,
			applied_at BIGINT NOT NULL)`)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("creating schema_migrations: %w", err)
	}
	var current int
	if err := db.Read().QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return nil, 0, fmt.Errorf("reading the schema version: %w", err)
	}
	if current > len(ms) {
		return nil, current, fmt.Errorf("%w: the database is at sandbox schema version %d, this binary knows versions up to %d; run a newer sandbox, or point -database at another database", ErrTooNew, current, len(ms))
	}
	for _, m := range ms[current:] {
		err := db.Tx(ctx, func(ctx context.Context, tx Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.Version, m.Name, Nanos(now()))
			return err
		})
		if err != nil {
			return applied, current, fmt.Errorf("applying migration %s: %w", m.Name, err)
		}
		applied = append(applied, m.Version)
		current = m.Version
	}
	return applied, current, nil
}
