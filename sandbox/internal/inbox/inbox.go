// Package inbox is the sandbox's built-in webhook receiver, so that nobody
// needs a public URL to watch webhooks arrive. Each inbox belongs to an API
// key; its id is long and random because it is the only credential a
// delivery carries. An inbox stores what it receives (headers, body, and a
// step-by-step signature check against its owner's secrets), can be told
// to fail its next deliveries to show retries happening, and tells
// subscribers about each delivery without ever waiting for them.
//
// Inboxes live in the database: any replica receives for any inbox, and a
// subscriber on one replica hears deliveries received by another (each
// delivery is announced with a notification; one listener per process
// hands them to its subscribers).
package inbox

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
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
	// DefaultMaxBytes is the budget of every inbox's stored deliveries
	// together.
	DefaultMaxBytes = 256 << 20
	// DefaultTTL is how long an inbox may go without a delivery or a
	// change before Sweep deletes it.
	DefaultTTL = 24 * time.Hour
	// MaxBody is the most of a delivery's body an inbox keeps.
	MaxBody = 64 << 10
)

// Channel is the notification channel of deliveries: the payload is
// "<inbox id> <seq>" for a delivery, "<inbox id> -" for a dropped inbox.
const Channel = "accepted_inbox"

// Clock is what the store needs of the sandbox clock.
type Clock interface{ Now() time.Time }

// Config configures a Store.
type Config struct {
	DB     sqldb.DB // required
	Clock  Clock    // required
	Logger *slog.Logger
	// Secrets returns the owner's active signing secrets, current first,
	// to verify deliveries against.
	Secrets func(ctx context.Context, owner string) ([]string, error)
	// PerOwner bounds the inboxes of one owner, exactly, on every replica;
	// creating another drops the owner's oldest. MaxInboxes bounds them
	// all (replicas creating at once may overshoot it by one each, until
	// the next creation): creating one more drops the least recently
	// active inbox of the network whose keys hold the most, so a network
	// that floods the store churns its own inboxes first.
	PerOwner, MaxInboxes int
	// Deliveries bounds what one inbox keeps, newest kept.
	Deliveries int
	// MaxBytes bounds the stored deliveries of all inboxes together
	// (DefaultMaxBytes when 0): past it, a new delivery first drops the
	// oldest deliveries of the inbox that holds the most bytes.
	MaxBytes int64
	// TTL is how long an inbox may go without a delivery, a behaviour
	// change or its creation before Sweep deletes it (DefaultTTL when 0).
	TTL time.Duration
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
	// Seq counts the inbox's deliveries from 1: this one was the Seq-th.
	Seq int `json:"-"`
}

// Store keeps inboxes in the database.
type Store struct {
	cfg Config
	hub *hub
}

// New returns a Store. Start it before Subscribe.
func New(cfg Config) (*Store, error) {
	if cfg.DB == nil || cfg.Clock == nil {
		return nil, errors.New("inbox: Config needs a DB and a Clock")
	}
	if cfg.PerOwner <= 0 {
		cfg.PerOwner = DefaultPerOwner
	}
	if cfg.MaxInboxes <= 0 {
		cfg.MaxInboxes = DefaultMaxInboxes
	}
	if cfg.Deliveries <= 0 {
		cfg.Deliveries = DefaultDeliveries
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Secrets == nil {
		cfg.Secrets = func(context.Context, string) ([]string, error) { return nil, errors.New("no secrets configured") }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg}
	s.hub = newHub(s)
	return s, nil
}

// NewID returns a fresh inbox id: 130 random bits.
func NewID() string { return Prefix + strings.ToLower(rand.Text()) }

// validID reports whether id has the shape NewID gives, so junk is
// answered without a query.
func validID(id string) bool {
	rest, ok := strings.CutPrefix(id, Prefix)
	if !ok || len(rest) != 26 {
		return false
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func (s *Store) forUpdate() string {
	if s.cfg.DB.Dialect() == sqldb.Postgres {
		return " FOR UPDATE"
	}
	return "" // SQLite has one writer: a transaction's reads hold.
}

// Create makes an inbox for owner, dropping the owner's oldest when it
// has PerOwner already (and the oldest of all when the store is full).
// Creations for one owner take turns on every replica, so the cap holds.
func (s *Store) Create(ctx context.Context, owner string) (Inbox, error) {
	if owner == "" {
		return Inbox{}, errors.New("inbox: no owner")
	}
	ib := Inbox{ID: NewID(), Owner: owner, CreatedAt: s.cfg.Clock.Now()}
	err := s.cfg.DB.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		// The owner's row is the lock: a second creation for the same
		// owner waits here until this one commits.
		if _, err := tx.Exec(ctx, `INSERT INTO inbox_owners (owner) VALUES (?) ON CONFLICT (owner) DO NOTHING`, owner); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE inbox_owners SET last_created_at = ? WHERE owner = ?`, sqldb.Nanos(ib.CreatedAt), owner); err != nil {
			return err
		}
		mine, err := ids(ctx, tx, `SELECT id FROM inboxes WHERE owner = ? ORDER BY created_at, id`, owner)
		if err != nil {
			return err
		}
		var drop []string
		if n := len(mine) - (s.cfg.PerOwner - 1); n > 0 {
			drop = mine[:n]
		}
		var total int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM inboxes`).Scan(&total); err != nil {
			return err
		}
		if n := total - len(drop) - (s.cfg.MaxInboxes - 1); n > 0 {
			oldest, err := s.heaviestNetworksOldest(ctx, tx, owner, n)
			if err != nil {
				return err
			}
			drop = append(drop, oldest...)
		}
		// Their deliveries go with them (ON DELETE CASCADE).
		if _, err := dropInboxes(ctx, tx, drop, ""); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO inboxes (id, owner, created_at, last_active_at) VALUES (?, ?, ?, ?)`,
			ib.ID, owner, sqldb.Nanos(ib.CreatedAt), sqldb.Nanos(ib.CreatedAt))
		return err
	})
	if err != nil {
		return Inbox{}, fmt.Errorf("inbox: creating one for %s: %w", owner, err)
	}
	return ib, nil
}

func ids(ctx context.Context, q sqldb.Querier, query string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			_ = rows.Close()
			return nil, err
		}
		out = append(out, id)
	}
	return out, errors.Join(rows.Err(), rows.Close())
}

const inboxColumns = `id, owner, created_at, received, behaviour_status, behaviour_remaining, behaviour_retry_after`

func scanInbox(r sqldb.Row) (Inbox, error) {
	var ib Inbox
	var created int64
	err := r.Scan(&ib.ID, &ib.Owner, &created, &ib.Received, &ib.Behaviour.Status, &ib.Behaviour.Remaining, &ib.Behaviour.RetryAfter)
	if errors.Is(err, sqldb.ErrNoRows) {
		return Inbox{}, ErrNotFound
	}
	if err != nil {
		return Inbox{}, fmt.Errorf("inbox: reading: %w", err)
	}
	ib.CreatedAt = sqldb.Time(created)
	return ib, nil
}

// load reads inbox id, in tx (locked) or outside any (tx nil).
func (s *Store) load(ctx context.Context, tx sqldb.Tx, id string) (Inbox, error) {
	if !validID(id) {
		return Inbox{}, ErrNotFound
	}
	q := `SELECT ` + inboxColumns + ` FROM inboxes WHERE id = ?`
	if tx == nil {
		return scanInbox(s.cfg.DB.Read().QueryRow(ctx, q, id))
	}
	return scanInbox(tx.QueryRow(ctx, q+s.forUpdate(), id))
}

// Get returns owner's inbox id.
func (s *Store) Get(ctx context.Context, owner, id string) (Inbox, error) {
	ib, err := s.load(ctx, nil, id)
	if err == nil && ib.Owner != owner {
		return Inbox{}, ErrNotFound
	}
	return ib, err
}

// SetBehaviour replaces what owner's inbox id answers to its next
// deliveries; a zero Remaining restores 204.
func (s *Store) SetBehaviour(ctx context.Context, owner, id string, bh Behaviour) (Inbox, error) {
	if bh.Remaining <= 0 {
		bh = Behaviour{}
	}
	var ib Inbox
	err := s.cfg.DB.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		var err error
		if ib, err = s.load(ctx, tx, id); err != nil {
			return err
		}
		if ib.Owner != owner {
			return ErrNotFound
		}
		ib.Behaviour = bh
		_, err = tx.Exec(ctx, `UPDATE inboxes SET behaviour_status = ?, behaviour_remaining = ?, behaviour_retry_after = ?, last_active_at = ? WHERE id = ?`,
			bh.Status, bh.Remaining, bh.RetryAfter, sqldb.Nanos(s.cfg.Clock.Now()), id)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Inbox{}, ErrNotFound
		}
		return Inbox{}, fmt.Errorf("inbox: setting the behaviour of %s: %w", id, err)
	}
	return ib, nil
}

// Answer is what the inbox answers a delivery with.
type Answer struct {
	Status     int
	RetryAfter int // seconds; 0 for none
	Delivery   Delivery
}

// Receive stores one delivery to inbox id and says what to answer: 204,
// or the status its Behaviour asks for while that lasts (counted down on
// every replica at once). Anyone holding the id may deliver; the signature
// check records whether the delivery was really signed with the owner's
// secrets. Subscribers on every replica hear of it once it is stored.
func (s *Store) Receive(ctx context.Context, id string, header http.Header, body []byte) (Answer, error) {
	ib, err := s.load(ctx, nil, id)
	if err != nil {
		return Answer{}, err
	}
	// Verify before the transaction: it reads the secrets, and a
	// transaction must not wait on anything else.
	now := s.cfg.Clock.Now()
	d := Delivery{ID: "dlv_" + strings.ToLower(rand.Text()), InboxID: id, ReceivedAt: now,
		Headers: header.Clone(), BodyBytes: len(body), Verification: s.verify(ctx, ib.Owner, header, body, now)}
	kept := body
	if len(kept) > MaxBody {
		kept, d.Truncated = kept[:MaxBody], true
	}
	if utf8.Valid(kept) {
		d.Body = string(kept)
	} else {
		d.Body = strings.ToValidUTF8(string(kept), "\uFFFD")
	}

	ans := Answer{Status: http.StatusNoContent}
	err = s.cfg.DB.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		ib, err := s.load(ctx, tx, id)
		if err != nil {
			return err
		}
		bh := ib.Behaviour
		if bh.Remaining > 0 {
			ans.Status, ans.RetryAfter = bh.Status, bh.RetryAfter
			if bh.Remaining--; bh.Remaining == 0 {
				bh = Behaviour{}
			}
		}
		d.Answered, d.Seq = ans.Status, ib.Received+1
		doc, err := json.Marshal(d)
		if err != nil {
			return err
		}
		// Stored bytes are what the row keeps: the document, headers and
		// all. What the count bound drops is given back first.
		var trimmed int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(stored_bytes), 0) FROM inbox_deliveries WHERE inbox_id = ? AND seq <= ?`,
			id, d.Seq-s.cfg.Deliveries).Scan(&trimmed); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE inboxes SET received = ?, behaviour_status = ?, behaviour_remaining = ?, behaviour_retry_after = ?,
			last_active_at = ?, stored_bytes = stored_bytes + ? - ? WHERE id = ?`,
			d.Seq, bh.Status, bh.Remaining, bh.RetryAfter, sqldb.Nanos(now), len(doc), trimmed, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO inbox_deliveries (id, inbox_id, seq, received_at, bytes, doc, stored_bytes) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			d.ID, id, d.Seq, sqldb.Nanos(now), len(body), doc, len(doc)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM inbox_deliveries WHERE inbox_id = ? AND seq <= ?`, id, d.Seq-s.cfg.Deliveries); err != nil {
			return err
		}
		if err := s.keepBudget(ctx, tx, id, d.Seq); err != nil {
			return err
		}
		return tx.Notify(Channel, fmt.Sprintf("%s %d", id, d.Seq))
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Answer{}, ErrNotFound
		}
		return Answer{}, fmt.Errorf("inbox: storing a delivery to %s: %w", id[:8]+"…", err)
	}
	ans.Delivery = d
	return ans, nil
}

func (s *Store) verify(ctx context.Context, owner string, header http.Header, body []byte, now time.Time) Verification {
	secrets, err := s.cfg.Secrets(ctx, owner)
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
func (s *Store) Deliveries(ctx context.Context, owner, id string) ([]Delivery, error) {
	if _, err := s.Get(ctx, owner, id); err != nil {
		return nil, err
	}
	ds, err := s.since(ctx, id, 0, true)
	if err != nil {
		return nil, err
	}
	return ds, nil
}

// since answers inbox id's deliveries after seq after, oldest first (or
// newest first), at most Deliveries of them.
func (s *Store) since(ctx context.Context, id string, after int, newestFirst bool) ([]Delivery, error) {
	order := "ASC"
	if newestFirst {
		order = "DESC"
	}
	rows, err := s.cfg.DB.Read().Query(ctx, `SELECT seq, doc FROM inbox_deliveries WHERE inbox_id = ? AND seq > ? ORDER BY seq `+order+` LIMIT ?`,
		id, after, s.cfg.Deliveries)
	if err != nil {
		return nil, fmt.Errorf("inbox: listing deliveries: %w", err)
	}
	out := []Delivery{}
	for rows.Next() {
		var seq int
		var doc []byte
		if err := rows.Scan(&seq, &doc); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("inbox: listing deliveries: %w", err)
		}
		var d Delivery
		if err := json.Unmarshal(doc, &d); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("inbox: reading delivery %d of %s: %w", seq, id[:8]+"…", err)
		}
		d.Seq = seq
		out = append(out, d)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("inbox: listing deliveries: %w", err)
	}
	return out, nil
}
