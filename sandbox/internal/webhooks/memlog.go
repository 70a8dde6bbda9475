package webhooks

import (
	"context"
	"slices"
	"sync"
)

// MemLog is a Log kept in memory: the last perKey attempts of each of the
// last maxKeys keys. It is what the sandbox uses; a database-backed Log can
// replace it without the Dispatcher noticing.
type MemLog struct {
	perKey, maxKeys int

	mu    sync.Mutex
	byKey map[string][]Attempt
	order []string // keys, oldest first, for eviction
}

// NewMemLog returns a MemLog keeping perKey attempts per key (100 when ≤ 0)
// for at most maxKeys keys (10 000 when ≤ 0); the key seen least recently
// is dropped first.
func NewMemLog(perKey, maxKeys int) *MemLog {
	if perKey <= 0 {
		perKey = 100
	}
	if maxKeys <= 0 {
		maxKeys = 10_000
	}
	return &MemLog{perKey: perKey, maxKeys: maxKeys, byKey: make(map[string][]Attempt)}
}

// Record implements Log.
func (l *MemLog) Record(_ context.Context, key string, a Attempt) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	list, ok := l.byKey[key]
	if ok {
		l.order = slices.DeleteFunc(l.order, func(k string) bool { return k == key })
	} else if len(l.order) >= l.maxKeys {
		delete(l.byKey, l.order[0])
		l.order = l.order[1:]
	}
	l.order = append(l.order, key)
	if len(list) >= l.perKey {
		list = slices.Delete(list, 0, len(list)-l.perKey+1)
	}
	l.byKey[key] = append(list, a)
	return nil
}

// List returns a copy of key's attempts, oldest first.
func (l *MemLog) List(key string) []Attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.byKey[key])
}
