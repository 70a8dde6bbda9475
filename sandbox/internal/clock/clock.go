// Package clock injects time into the job engine, so that code which waits
// (job steps, the watchdog ticker, retention windows) can be driven by a fake
// clock in tests: a 30-second job, or a 24-hour retention window, is checked
// in milliseconds by advancing the fake instead of sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock is the part of package time the engine needs.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker is time.Ticker behind an interface, because a fake ticker cannot
// fill the C field of a *time.Ticker.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real returns the wall clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (realClock) NewTicker(d time.Duration) Ticker       { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// Fake is a manually driven Clock. Time stands still until Advance or Set
// moves it; timers and tickers whose deadline has been reached then fire.
// All methods are safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	changed *sync.Cond // signalled whenever the set of waiters changes
	now     time.Time
	waiters []*fakeTimer
}

type fakeTimer struct {
	at     time.Time
	period time.Duration // 0 for a one-shot After
	ch     chan time.Time
}

// NewFake returns a fake clock that reads start until it is moved.
func NewFake(start time.Time) *Fake {
	f := &Fake{now: start}
	f.changed = sync.NewCond(&f.mu)
	return f
}

// Now returns the fake's current time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// After returns a channel that receives the fake time once it has been
// advanced by at least d. Like time.After, the channel has room for one
// value so firing never blocks the goroutine that moves the clock.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if d <= 0 {
		ch <- f.now
		return ch
	}
	f.waiters = append(f.waiters, &fakeTimer{at: f.now.Add(d), ch: ch})
	f.changed.Broadcast()
	return ch
}

// NewTicker returns a ticker that fires every d of fake time. As with
// time.Ticker, ticks are dropped when the reader is slow, and d must be
// positive.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	t := &fakeTimer{period: d, ch: make(chan time.Time, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	t.at = f.now.Add(d)
	f.waiters = append(f.waiters, t)
	f.changed.Broadcast()
	return &fakeTicker{f: f, t: t}
}

type fakeTicker struct {
	f *Fake
	t *fakeTimer
}

func (ft *fakeTicker) C() <-chan time.Time { return ft.t.ch }

func (ft *fakeTicker) Stop() {
	ft.f.mu.Lock()
	defer ft.f.mu.Unlock()
	ft.f.remove(ft.t)
}

// Advance moves the clock forward by d and fires every timer that is due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(f.now.Add(d))
}

// Set moves the clock to t (backwards too, which fires nothing) and fires
// every timer that is due.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(t)
}

// BlockUntil waits until at least n timers or tickers are waiting on the
// clock. Tests call it before Advance so the advance is not lost on a
// goroutine that has not reached its After call yet. A timer stays counted
// until it fires or its ticker is stopped, even if nobody reads it any more
// (a select that took another branch): the fake cannot see abandonment.
func (f *Fake) BlockUntil(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.waiters) < n {
		f.changed.Wait()
	}
}

// Waiters reports how many timers and tickers are waiting on the clock.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

func (f *Fake) setLocked(t time.Time) {
	f.now = t
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.at.After(t) {
			kept = append(kept, w)
			continue
		}
		select {
		case w.ch <- t:
		default: // a slow reader misses ticks, as with time.Ticker
		}
		if w.period > 0 {
			for !w.at.After(t) {
				w.at = w.at.Add(w.period)
			}
			kept = append(kept, w)
		}
	}
	clear(f.waiters[len(kept):]) // let fired timers be collected
	f.waiters = kept
	f.changed.Broadcast()
}

func (f *Fake) remove(t *fakeTimer) {
	for i, w := range f.waiters {
		if w == t {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			f.changed.Broadcast()
			return
		}
	}
}
