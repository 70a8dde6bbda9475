package app

import (
	"fmt"
	"os"
	"testing"

	"github.com/accepted-dev/accepted/sandbox/internal/pgtest"
)

// TestMain makes a directory for the sandbox binary the process tests
// build, and stops the PostgreSQL cluster the tests started, if any.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "accepted-app-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := pgtest.Main(m)
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
