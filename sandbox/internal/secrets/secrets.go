// Package secrets keeps each API key's webhook signing secret, and lets it
// be rotated without breaking receivers: after a rotation the previous
// secret stays active for a grace window, so deliveries carry a signature
// under each and a receiver can switch over at its own pace.
package secrets

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// Clock is what the store needs of the sandbox clock.
type Clock interface{ Now() time.Time }

// DefaultGrace is how long a rotated-out secret keeps signing deliveries.
const DefaultGrace = 24 * time.Hour

// ErrNoOwner is returned for an empty owner.
var ErrNoOwner = errors.New("secrets: no owner")

// Secret is one signing secret.
type Secret struct {
	Value     string
	CreatedAt time.Time
	// ExpiresAt is when a previous secret stops being used; zero for the
	// current one.
	ExpiresAt time.Time
}

// Set is an owner's active secrets.
type Set struct {
	Current Secret
	// Previous is the secret replaced by the last rotation, while its grace
	// window lasts; nil otherwise.
	Previous *Secret
}

// Active lists the secret values to sign with, current first.
func (s Set) Active() []string {
	if s.Previous == nil {
		return []string{s.Current.Value}
	}
	return []string{s.Current.Value, s.Previous.Value}
}

type entry struct {
	current, previous Secret
	hasPrevious       bool
}

// Store holds secrets in memory for at most max owners; when full, the
// owner whose secret was created first is forgotten (and gets a new
// secret when it next asks).
type Store struct {
	clk   Clock
	grace time.Duration
	max   int

	mu      sync.Mutex
	byOwner map[string]*entry
	order   []string // owners in creation order, for eviction
}

// New returns a store. grace ≤ 0 means DefaultGrace, max ≤ 0 means 100 000.
func New(clk Clock, grace time.Duration, max int) *Store {
	if grace <= 0 {
		grace = DefaultGrace
	}
	if max <= 0 {
		max = 100_000
	}
	return &Store{clk: clk, grace: grace, max: max, byOwner: make(map[string]*entry)}
}

// Grace is the store's grace window.
func (s *Store) Grace() time.Duration { return s.grace }

// Get returns owner's active secrets, creating the first on first use.
func (s *Store) Get(owner string) (Set, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entryLocked(owner)
	if err != nil {
		return Set{}, err
	}
	return s.setLocked(e), nil
}

// Rotate makes a new current secret; the old one stays active for the
// grace window. Only one previous secret is kept: rotating again ends the
// older one's grace at once.
func (s *Store) Rotate(owner string) (Set, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entryLocked(owner)
	if err != nil {
		return Set{}, err
	}
	v, err := webhooks.NewSecret()
	if err != nil {
		return Set{}, fmt.Errorf("rotating the webhook secret: %w", err)
	}
	now := s.clk.Now()
	e.previous, e.hasPrevious = e.current, true
	e.previous.ExpiresAt = now.Add(s.grace)
	e.current = Secret{Value: v, CreatedAt: now}
	return s.setLocked(e), nil
}

func (s *Store) entryLocked(owner string) (*entry, error) {
	if owner == "" {
		return nil, ErrNoOwner
	}
	if e := s.byOwner[owner]; e != nil {
		return e, nil
	}
	v, err := webhooks.NewSecret()
	if err != nil {
		return nil, fmt.Errorf("creating a webhook secret: %w", err)
	}
	for len(s.byOwner) >= s.max && len(s.order) > 0 {
		delete(s.byOwner, s.order[0])
		s.order = s.order[1:]
	}
	e := &entry{current: Secret{Value: v, CreatedAt: s.clk.Now()}}
	s.byOwner[owner] = e
	s.order = append(s.order, owner)
	return e, nil
}

func (s *Store) setLocked(e *entry) Set {
	set := Set{Current: e.current}
	if e.hasPrevious && s.clk.Now().Before(e.previous.ExpiresAt) {
		p := e.previous
		set.Previous = &p
	} else {
		e.hasPrevious = false
	}
	return set
}
