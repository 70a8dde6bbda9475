package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// hub follows job changes for Watch: it listens once to the database's
// notifications (which arrive from every replica) and hands each change to
// the watchers of that job in this process.
type hub struct {
	e *Engine

	mu       sync.Mutex
	watchers map[string]map[*watcher]struct{}
	closed   bool
	wg       sync.WaitGroup // watcher goroutines
	done     chan struct{}  // closed by close: ends every watch
	stop     context.CancelFunc
	stopped  chan struct{} // the listening goroutine returned
}

func newHub(e *Engine) *hub {
	return &hub{e: e, watchers: map[string]map[*watcher]struct{}{}, done: make(chan struct{}), stopped: make(chan struct{})}
}

func (h *hub) start(ctx context.Context) error {
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	notes, err := h.e.db.Listen(lctx, Channel)
	if err != nil {
		stop()
		return fmt.Errorf("jobs: listening for job changes: %w", err)
	}
	h.stop = stop
	go func() {
		defer close(h.stopped)
		h.run(lctx, notes)
	}()
	context.AfterFunc(ctx, stop)
	return nil
}

// run reloads each job a notification names, if anyone here watches it,
// and hands it to its watchers. "" means notifications were lost: every
// watched job is reloaded.
func (h *hub) run(ctx context.Context, notes <-chan string) {
	for note := range notes {
		var ids []string
		if note == "" {
			h.e.cache.forget()
			h.mu.Lock()
			for id := range h.watchers {
				ids = append(ids, id)
			}
			h.mu.Unlock()
		} else {
			id, v, _ := strings.Cut(note, " ")
			version, _ := strconv.ParseInt(v, 10, 64)
			h.e.cache.changed(id, version)
			if !h.wants(id, version) {
				continue
			}
			ids = []string{id}
		}
		for _, id := range ids {
			j, tomb, err := h.e.read(ctx, id)
			if err != nil || tomb {
				if err != nil && !errors.Is(err, ErrNotFound) && ctx.Err() == nil {
					h.e.log.Warn("jobs: reloading a watched job", "job", id, "err", err)
				}
				continue
			}
			h.notify(j)
		}
	}
}

// wants reports whether a watcher of id has not seen version yet.
func (h *hub) wants(id string, version int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers[id] {
		w.mu.Lock()
		seen := w.latest.Version
		w.mu.Unlock()
		if seen < version {
			return true
		}
	}
	return false
}

func (h *hub) close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.done)
	h.mu.Unlock()
	if h.stop != nil {
		h.stop()
		<-h.stopped
	}
	ch := make(chan struct{})
	go func() { h.wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jobs: close: waiting for watchers: %w", context.Cause(ctx))
	}
}

// watcher is one Watch call. The hub never waits for it: notify only
// replaces latest and pokes wake, and the watcher's own goroutine does the
// possibly slow send. That is also what makes updates coalesce.
type watcher struct {
	mu     sync.Mutex
	latest Job
	wake   chan struct{} // capacity 1
}

// Watch answers owner's job as it is now, then every later change on
// updates, whichever replica made it. Changes may coalesce for a slow
// reader, but the terminal state is always delivered, after which updates
// is closed. updates is also closed when ctx ends, stop is called or the
// engine closes. stop is idempotent; call it when done.
func (e *Engine) Watch(ctx context.Context, owner, id string) (current Job, updates <-chan Job, stop func(), err error) {
	h := e.hub
	w := &watcher{wake: make(chan struct{}, 1)}
	// Register before reading the snapshot, so a change between the two
	// is not lost; versions sort out any overlap.
	h.mu.Lock()
	closed := h.closed
	if !closed {
		set := h.watchers[id]
		if set == nil {
			set = map[*watcher]struct{}{}
			h.watchers[id] = set
		}
		set[w] = struct{}{}
		h.wg.Add(1)
	}
	h.mu.Unlock()

	current, err = e.Get(ctx, owner, id)
	out := make(chan Job)
	if err != nil || closed || current.Status.Terminal() {
		if !closed {
			h.unwatch(id, w)
			h.wg.Done()
		}
		if err != nil {
			return Job{}, nil, func() {}, err
		}
		close(out)
		return current, out, func() {}, nil
	}
	w.mu.Lock()
	if current.Version > w.latest.Version {
		w.latest = current
	}
	w.mu.Unlock()

	stopCh := make(chan struct{})
	stop = sync.OnceFunc(func() { close(stopCh) })
	go func() {
		defer h.wg.Done()
		defer close(out)
		defer h.unwatch(id, w)
		sent := current.Version
		for {
			select {
			case <-w.wake:
			case <-ctx.Done():
				return
			case <-stopCh:
				return
			case <-h.done:
				return
			}
			w.mu.Lock()
			j := w.latest
			w.mu.Unlock()
			if j.Version <= sent {
				continue
			}
			select {
			case out <- j.Clone():
				sent = j.Version
			case <-ctx.Done():
				return
			case <-stopCh:
				return
			case <-h.done:
				return
			}
			if j.Status.Terminal() {
				return
			}
		}
	}()
	return current, out, stop, nil
}

func (h *hub) unwatch(id string, w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.watchers[id]
	delete(set, w)
	if len(set) == 0 {
		delete(h.watchers, id)
	}
}

// notify hands a job to its watchers without ever blocking.
func (h *hub) notify(j Job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers[j.ID] {
		w.mu.Lock()
		newer := j.Version > w.latest.Version
		if newer {
			w.latest = j
		}
		w.mu.Unlock()
		if newer {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}
