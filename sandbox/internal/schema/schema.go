// Package schema holds the sandbox's own SQL migrations, one folder per
// backend (River migrates its tables itself).
package schema

import (
	"embed"
	"fmt"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Migrations answers the migrations of a backend, in order.
func Migrations(d sqldb.Dialect) ([]sqldb.Migration, error) {
	switch d {
	case sqldb.SQLite, sqldb.Postgres:
		return sqldb.LoadMigrations(files, string(d))
	}
	return nil, fmt.Errorf("schema: no migrations for %q", d)
}
