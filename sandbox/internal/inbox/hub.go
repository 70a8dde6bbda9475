package inbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// ErrNotStarted is returned by Subscribe before Start.
var ErrNotStarted = errors.New("inbox: the store is not started")

// subscriberBuffer is how many deliveries a subscriber may lag behind
// before it misses some (it can list them).
const subscriberBuffer = 16

// hub hands deliveries to this process's subscribers: it listens once to
// the database's notifications (which arrive from every replica), reads
// the deliveries they announce, and offers each to the subscribers of its
// inbox without ever waiting for one.
type hub struct {
	s *Store

	mu      sync.Mutex
	subs    map[string]map[*sub]struct{} // by inbox id
	started bool
	closed  bool
	stop    context.CancelFunc
	done    chan struct{} // the listening goroutine returned
}

// sub is one subscription.
type sub struct {
	mu     sync.Mutex
	ch     chan Delivery
	last   int // the seq of the last delivery offered
	closed bool
}

// offer hands d to the subscriber unless it has had it (or a later one).
// A subscriber whose buffer is full misses d.
func (x *sub) offer(d Delivery) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed || d.Seq <= x.last {
		return
	}
	x.last = d.Seq
	select {
	case x.ch <- d:
	default:
	}
}

func (x *sub) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.closed {
		x.closed = true
		close(x.ch)
	}
}

func newHub(s *Store) *hub {
	return &hub{s: s, subs: map[string]map[*sub]struct{}{}, done: make(chan struct{})}
}

// Start listens for deliveries, from every replica, until ctx ends or
// Close.
func (s *Store) Start(ctx context.Context) error {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started || h.closed {
		return errors.New("inbox: Start called twice, or after Close")
	}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	notes, err := s.cfg.DB.Listen(lctx, Channel)
	if err != nil {
		stop()
		return fmt.Errorf("inbox: listening for deliveries: %w", err)
	}
	h.started, h.stop = true, stop
	go func() {
		defer close(h.done)
		h.run(lctx, notes)
	}()
	context.AfterFunc(ctx, stop)
	return nil
}

// Close stops listening and ends every subscription.
func (s *Store) Close() {
	h := s.hub
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	started := h.started
	all := h.subs
	h.subs = map[string]map[*sub]struct{}{}
	h.mu.Unlock()
	if started {
		h.stop()
		<-h.done
	}
	for _, set := range all {
		for x := range set {
			x.close()
		}
	}
}

// run follows the notifications: a delivery is read and offered to its
// inbox's subscribers, a dropped inbox ends them, and "" (notifications
// may have been lost) has every followed inbox read again.
func (h *hub) run(ctx context.Context, notes <-chan string) {
	for note := range notes {
		if note == "" {
			h.mu.Lock()
			ids := make([]string, 0, len(h.subs))
			for id := range h.subs {
				ids = append(ids, id)
			}
			h.mu.Unlock()
			for _, id := range ids {
				// A missed notification may have been the inbox's deletion.
				if h.gone(ctx, id) {
					h.drop(id)
					continue
				}
				h.refresh(ctx, id)
			}
			continue
		}
		id, what, _ := strings.Cut(note, " ")
		if what == "-" {
			h.drop(id)
			continue
		}
		seq, _ := strconv.Atoi(what)
		if h.wants(id, seq) {
			h.refresh(ctx, id)
		}
	}
}

// wants reports whether a subscriber of id has not had delivery seq.
func (h *hub) wants(id string, seq int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for x := range h.subs[id] {
		x.mu.Lock()
		behind := x.last < seq
		x.mu.Unlock()
		if behind {
			return true
		}
	}
	return false
}

// refresh reads what id's subscribers have not had yet and offers it.
func (h *hub) refresh(ctx context.Context, id string) {
	h.mu.Lock()
	set := make([]*sub, 0, len(h.subs[id]))
	from := -1
	for x := range h.subs[id] {
		set = append(set, x)
		x.mu.Lock()
		if from < 0 || x.last < from {
			from = x.last
		}
		x.mu.Unlock()
	}
	h.mu.Unlock()
	if len(set) == 0 {
		return
	}
	ds, err := h.s.since(ctx, id, from, false)
	if err != nil {
		if ctx.Err() == nil {
			h.s.cfg.Logger.Warn("inbox: reading deliveries for subscribers", "inbox", id[:min(len(id), 8)]+"…", "err", err)
		}
		return
	}
	for _, d := range ds {
		for _, x := range set {
			x.offer(d)
		}
	}
}

// gone reports whether inbox id no longer exists (an error reading it is
// not taken for a deletion).
func (h *hub) gone(ctx context.Context, id string) bool {
	var n int
	if err := h.s.cfg.DB.Read().QueryRow(ctx, `SELECT COUNT(*) FROM inboxes WHERE id = ?`, id).Scan(&n); err != nil {
		return false
	}
	return n == 0
}

// drop ends the subscriptions of a dropped inbox.
func (h *hub) drop(id string) {
	h.mu.Lock()
	set := h.subs[id]
	delete(h.subs, id)
	h.mu.Unlock()
	for x := range set {
		x.close()
	}
}

// Subscribe returns a channel that receives each delivery to inbox id
// after its after-th (the inbox's Received when the caller read it, so
// that none is missed in between), whichever replica received it. Receive
// never waits for it: a subscriber that falls more than a few deliveries
// behind misses some (and can list them). The channel is closed by
// cancel, when ctx ends, when the inbox is dropped, or on Close. Check the
// owner with Get first.
func (s *Store) Subscribe(ctx context.Context, id string, after int) (<-chan Delivery, func(), error) {
	h := s.hub
	x := &sub{ch: make(chan Delivery, subscriberBuffer), last: after}
	h.mu.Lock()
	if !h.started || h.closed {
		h.mu.Unlock()
		return nil, nil, ErrNotStarted
	}
	set := h.subs[id]
	if set == nil {
		set = map[*sub]struct{}{}
		h.subs[id] = set
	}
	set[x] = struct{}{}
	h.mu.Unlock()
	cancel := sync.OnceFunc(func() {
		h.mu.Lock()
		if set := h.subs[id]; set != nil {
			delete(set, x)
			if len(set) == 0 {
				delete(h.subs, id)
			}
		}
		h.mu.Unlock()
		x.close()
	})
	context.AfterFunc(ctx, cancel)
	// What arrived between the caller's read and the subscription was
	// announced before anyone here listened for it: catch up once.
	ds, err := s.since(ctx, id, after, false)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	for _, d := range ds {
		x.offer(d)
	}
	return x.ch, cancel, nil
}
