//go:build unix

package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// lockDatabase makes a SQLite file the database of one process: a second
// `serve` on the same file would run a second set of workers whose changes
// the first one's event streams never hear (SQLite's notifications stay in
// the process). PostgreSQL is for many replicas. The lock is released when
// the process ends, however it ends.
func lockDatabase(name string) (unlock func(), err error) {
	if name == "memory" || strings.Contains(name, "://") {
		return func() {}, nil
	}
	path := strings.TrimPrefix(strings.TrimPrefix(name, "sqlite:"), "file:")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the data directory: %w", err)
	}
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking the database file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("-database %s is in use by another sandbox process: give each process its own SQLite file, or run replicas on PostgreSQL (-database postgres://…)", path)
		}
		return nil, fmt.Errorf("locking the database file: %w", err)
	}
	return func() { _ = f.Close() }, nil
}
