package sqldb

import (
	"context"
	"sync"
)

// Broker hands notifications to the listeners in this process: SQLite's
// whole Listen, and the fan-out of PostgreSQL's one listening connection.
// Publish never waits for a listener: one that falls behind by more than
// its buffer loses notifications and is told so with a "" payload.
type Broker struct {
	mu   sync.Mutex
	subs map[string]map[*subscriber]struct{}
}

type subscriber struct {
	ch   chan string
	lost bool // guarded by Broker.mu
}

// listenBuffer is how far a listener may fall behind.
const listenBuffer = 4096

// Subscribe answers channel's notifications until ctx ends.
func (b *Broker) Subscribe(ctx context.Context, channel string) <-chan string {
	s := &subscriber{ch: make(chan string, listenBuffer)}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[string]map[*subscriber]struct{}{}
	}
	if b.subs[channel] == nil {
		b.subs[channel] = map[*subscriber]struct{}{}
	}
	b.subs[channel][s] = struct{}{}
	b.mu.Unlock()
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		delete(b.subs[channel], s)
		b.mu.Unlock()
		close(s.ch)
	})
	return s.ch
}

// Publish hands payload to channel's listeners.
func (b *Broker) Publish(channel, payload string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[channel] {
		if s.lost {
			select {
			case s.ch <- "":
				s.lost = false
			default:
				continue
			}
		}
		select {
		case s.ch <- payload:
		default:
			s.lost = true
		}
	}
}

// PublishAll tells every listener of every channel that notifications may
// have been lost (a "" payload), as after a lost connection.
func (b *Broker) PublishAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, set := range b.subs {
		for s := range set {
			select {
			case s.ch <- "":
				s.lost = false
			default:
				s.lost = true
			}
		}
	}
}
