package jobs

import (
	"context"
	"sync"
)

// watcher is one Watch call. The engine never waits for it: notify only
// replaces latest and pokes wake, and the watcher's own goroutine does the
// possibly slow send. That is also what makes updates coalesce.
type watcher struct {
	mu     sync.Mutex
	latest Job
	wake   chan struct{} // capacity 1
}

// Watch answers owner's job as it is now, then every later change on
// updates. Changes may coalesce for a slow reader, but the terminal state
// is always delivered, after which updates is closed. updates is also
// closed when ctx ends, stop is called or the engine closes. stop is
// idempotent; call it when done so the watch does not outlive its reader.
func (e *Engine) Watch(ctx context.Context, owner, id string) (current Job, updates <-chan Job, stop func(), err error) {
	w := &watcher{wake: make(chan struct{}, 1)}
	// Register before reading the snapshot, so a change between the two
	// is not lost; versions sort out any overlap.
	e.wmu.Lock()
	closed := e.watchClosed
	if !closed {
		set := e.watchers[id]
		if set == nil {
			set = make(map[*watcher]struct{})
			e.watchers[id] = set
		}
		set[w] = struct{}{}
		e.watchWG.Add(1)
	}
	e.wmu.Unlock()

	current, err = e.Get(ctx, owner, id)
	out := make(chan Job)
	if err != nil || closed || current.Status.Terminal() {
		if !closed {
			e.unwatch(id, w)
			e.watchWG.Done()
		}
		if err != nil {
			return Job{}, nil, func() {}, err
		}
		close(out)
		return current, out, func() {}, nil
	}

	stopCh := make(chan struct{})
	stop = sync.OnceFunc(func() { close(stopCh) })
	go func() {
		defer e.watchWG.Done()
		defer close(out)
		defer e.unwatch(id, w)
		sent := current.Version
		for {
			select {
			case <-w.wake:
			case <-ctx.Done():
				return
			case <-stopCh:
				return
			case <-e.done:
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
			case <-e.done:
				return
			}
			if j.Status.Terminal() {
				return
			}
		}
	}()
	return current, out, stop, nil
}

func (e *Engine) unwatch(id string, w *watcher) {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	set := e.watchers[id]
	delete(set, w)
	if len(set) == 0 {
		delete(e.watchers, id)
	}
}

// notify hands a stored job to its watchers without ever blocking.
func (e *Engine) notify(j Job) {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	for w := range e.watchers[j.ID] {
		w.mu.Lock()
		if j.Version > w.latest.Version {
			w.latest = j
		}
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}
