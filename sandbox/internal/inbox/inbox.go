// Package inbox is the sandbox's built-in webhook receiver, so that nobody
// needs a public URL to watch webhooks arrive. Each inbox belongs to an API
// key; its id is long and random because it is the only credential a
// delivery carries. An inbox stores what it receives (headers, body, and a
// step-by-step signature check against its owner's secrets), can be told
// to fail its next deliveries to show retries happening, and tells
// subscribers about each delivery without ever waiting for them.
package inbox

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// ErrNotFound is returned for an inbox that does not exist or belongs to
// another owner: the two are not told apart.
var ErrNotFound = errors.New("inbox not found")

// Prefix starts every inbox id.
const Prefix = "inb_"

// Defaults of Config.
const (
	DefaultPerOwner   = 20
	DefaultDeliveries = 100
	DefaultMaxInboxes = 10_000
	// MaxBody is the most of a delivery's body an inbox keeps.
	MaxBody = 64 << 10
)

// Clock is what the store needs of the sandbox clock.
type Clock interface{ Now() time.Time }

// Config configures a Store.
type Config struct {
	Clock Clock
	// Secrets returns the owner's active signing secrets, current first,
	// to verify deliveries against.
	Secrets func(owner string) ([]string, error)
	// PerOwner bounds the inboxes of one owner; creating another drops the
	// owner's oldest. MaxInboxes bounds them all, the same way.
	PerOwner, MaxInboxes int
	// Deliveries bounds what one inbox keeps, newest kept.
	Deliveries int
	// Tolerance is the timestamp tolerance of the signature check
	// (webhooks.DefaultTolerance when 0).
	Tolerance time.Duration
}

// Behaviour makes an inbox answer Status, instead of 204, to its next
// Remaining deliveries, with Retry-After when RetryAfter > 0.
type Behaviour struct {
	Status     int `json:"status"`
	Remaining  int `json:"remaining"`
	RetryAfter int `json:"retry_after,omitzero"`
}

// Inbox describes one inbox.
type Inbox struct {
	ID        string
	Owner     string
	CreatedAt time.Time
	Behaviour Behaviour
	Received  int // deliveries received since creation
}

// Verification is the signature check of one delivery.
type Verification struct {
	Valid bool `json:"valid"`
	// Secret says which of the owner's secrets matched: "current",
	// "previous", or "" when none did.
	Secret string                `json:"secret"`
	Error  string                `json:"error,omitzero"`
	Report webhooks.VerifyReport `json:"report"`
}

// Delivery is one request an inbox received.
type Delivery struct {
	ID           string              `json:"id"`
	InboxID      string              `json:"inbox_id"`
	ReceivedAt   time.Time           `json:"received_at"`
	Headers      map[string][]string `json:"headers"`
	Body         string              `json:"body"`
	BodyBytes    int                 `json:"body_bytes"`
	Truncated    bool                `json:"truncated,omitzero"`
	Answered     int                 `json:"answered"` // the status the inbox answered with
	Verification Verification        `json:"verification"`
}

type box struct {
	Inbox
	deliveries []Delivery // oldest first
	subs       map[chan Delivery]struct{}
}

// Store holds inboxes in memory.
type Store struct {
	cfg Config

	mu      sync.Mutex
	boxes   map[string]*box
	order   []string // ids, oldest first
	byOwner map[string][]string
}

// New returns a Store.
func New(cfg Config) *Store {
	if cfg.PerOwner <= 0 {
		cfg.PerOwner = DefaultPerOwner
	}
	if cfg.MaxInboxes <= 0 {
		cfg.MaxInboxes = DefaultMaxInboxes
	}
	if cfg.Deliveries <= 0 {
		cfg.Deliveries = DefaultDeliveries
	}
	if cfg.Secrets == nil {
		cfg.Secrets = func(string) ([]string, error) { return nil, errors.New("no secrets configured") }
	}
	return &Store{cfg: cfg, boxes: make(map[string]*box), byOwner: make(map[string][]string)}
}

// NewID returns a fresh inbox id: 130 random bits.
func NewID() string { return Prefix + strings.ToLower(rand.Text()) }

// Create makes an inbox for owner, dropping the owner's oldest when it
// has PerOwner already (and the oldest of all when the store is full).
func (s *Store) Create(owner string) (Inbox, error) {
	if owner == "" {
		return Inbox{}, errors.New("inbox: no owner")
	}
	b := &box{Inbox: Inbox{ID: NewID(), Owner: owner, CreatedAt: s.cfg.Clock.Now()}}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.byOwner[owner]) >= s.cfg.PerOwner {
		s.removeLocked(s.byOwner[owner][0])
	}
	for len(s.boxes) >= s.cfg.MaxInboxes && len(s.order) > 0 {
		s.removeLocked(s.order[0])
	}
	s.boxes[b.ID] = b
	s.order = append(s.order, b.ID)
	s.byOwner[owner] = append(s.byOwner[owner], b.ID)
	return b.Inbox, nil
}

func (s *Store) removeLocked(id string) {
	b := s.boxes[id]
	if b == nil {
		return
	}
	delete(s.boxes, id)
	s.order = slices.DeleteFunc(s.order, func(x string) bool { return x == id })
	ids := slices.DeleteFunc(s.byOwner[b.Owner], func(x string) bool { return x == id })
	if len(ids) == 0 {
		delete(s.byOwner, b.Owner)
	} else {
		s.byOwner[b.Owner] = ids
	}
	for ch := range b.subs {
		close(ch)
	}
	b.subs = nil
}

// Get returns owner's inbox id.
func (s *Store) Get(owner, id string) (Inbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.boxes[id]
	if b == nil || b.Owner != owner {
		return Inbox{}, ErrNotFound
	}
	return b.Inbox, nil
}

// SetBehaviour replaces what owner's inbox id answers to its next
// deliveries; a zero Remaining restores 204.
func (s *Store) SetBehaviour(owner, id string, bh Behaviour) (Inbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.boxes[id]
	if b == nil || b.Owner != owner {
		return Inbox{}, ErrNotFound
	}
	if bh.Remaining <= 0 {
		bh = Behaviour{}
	}
	b.Behaviour = bh
	return b.Inbox, nil
}

// Answer is what the inbox answers a delivery with.
type Answer struct {
	Status     int
	RetryAfter int // seconds; 0 for none
	Delivery   Delivery
}

// Receive stores one delivery to inbox id and says what to answer: 204,
// or the status its Behaviour asks for while that lasts. Anyone holding the
// id may deliver; the signature check records whether the delivery was
// really signed with the owner's secrets.
func (s *Store) Receive(id string, header http.Header, body []byte) (Answer, error) {
	s.mu.Lock()
	b := s.boxes[id]
	if b == nil {
		s.mu.Unlock()
		return Answer{}, ErrNotFound
	}
	owner := b.Owner
	s.mu.Unlock()

	// Verify outside the lock: it is the slow part.
	now := s.cfg.Clock.Now()
	v := s.verify(owner, header, body, now)
	d := Delivery{ID: "dlv_" + strings.ToLower(rand.Text()), InboxID: id, ReceivedAt: now,
		Headers: header.Clone(), BodyBytes: len(body), Verification: v}
	kept := body
	if len(kept) > MaxBody {
		kept, d.Truncated = kept[:MaxBody], true
	}
	if utf8.Valid(kept) {
		d.Body = string(kept)
	} else {
		d.Body = strings.ToValidUTF8(string(kept), "\uFFFD")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	b = s.boxes[id]
	if b == nil {
		return Answer{}, ErrNotFound
	}
	ans := Answer{Status: http.StatusNoContent}
	if b.Behaviour.Remaining > 0 {
		ans.Status, ans.RetryAfter = b.Behaviour.Status, b.Behaviour.RetryAfter
		b.Behaviour.Remaining--
		if b.Behaviour.Remaining == 0 {
			b.Behaviour = Behaviour{}
		}
	}
	d.Answered = ans.Status
	b.Received++
	if len(b.deliveries) >= s.cfg.Deliveries {
		b.deliveries = slices.Delete(b.deliveries, 0, len(b.deliveries)-s.cfg.Deliveries+1)
	}
	b.deliveries = append(b.deliveries, d)
	for ch := range b.subs {
		select {
		case ch <- d:
		default: // a slow subscriber misses deliveries; it can list them
		}
	}
	ans.Delivery = d
	return ans, nil
}

func (s *Store) verify(owner string, header http.Header, body []byte, now time.Time) Verification {
	secrets, err := s.cfg.Secrets(owner)
	if err != nil || len(secrets) == 0 {
		return Verification{Error: fmt.Sprintf("the owner's secrets are not available: %v", err)}
	}
	var first Verification
	for i, sec := range secrets {
		rep, err := webhooks.Verify(sec, header, body, now, s.cfg.Tolerance)
		v := Verification{Valid: err == nil, Report: rep}
		if err != nil {
			v.Error = err.Error()
		} else {
			v.Secret = map[bool]string{true: "current", false: "previous"}[i == 0]
			return v
		}
		if i == 0 {
			first = v
		}
	}
	return first
}

// Deliveries returns owner's inbox id's deliveries, newest first.
func (s *Store) Deliveries(owner, id string) ([]Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.boxes[id]
	if b == nil || b.Owner != owner {
		return nil, ErrNotFound
	}
	out := slices.Clone(b.deliveries)
	slices.Reverse(out)
	return out, nil
}

// subscriberBuffer is how many deliveries a subscriber may lag behind
// before it misses some.
const subscriberBuffer = 16

// Subscribe returns a channel that receives each new delivery to inbox id.
// Receive never waits for it: a subscriber that falls more than a few
// deliveries behind misses some (and can list them). The channel is closed
// by cancel, or when the inbox is dropped; for an unknown inbox it is
// closed at once. Check the owner with Get first.
func (s *Store) Subscribe(id string) (<-chan Delivery, func()) {
	ch := make(chan Delivery, subscriberBuffer)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.boxes[id]
	if b == nil {
		close(ch)
		return ch, func() {}
	}
	if b.subs == nil {
		b.subs = make(map[chan Delivery]struct{})
	}
	b.subs[ch] = struct{}{}
	return ch, sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if cur := s.boxes[id]; cur == b {
			if _, ok := b.subs[ch]; ok {
				delete(b.subs, ch)
				close(ch)
			}
		}
	})
}
