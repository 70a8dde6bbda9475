//go:build !unix

package app

// lockDatabase does nothing where flock is not available: keep to one
// process per SQLite file there.
func lockDatabase(string) (func(), error) { return func() {}, nil }
