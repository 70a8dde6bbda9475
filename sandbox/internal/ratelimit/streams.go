package ratelimit

import (
	"errors"
	"strconv"
	"sync"
)

// ErrTooManyStreams is what every refusal of AcquireStream wraps.
var ErrTooManyStreams = errors.New("ratelimit: too many concurrent streams")

// Stream scopes: which share refused a stream.
const (
	ScopeKey     = "key"     // Config.MaxConcurrent, per API key
	ScopeNetwork = "network" // Config.MaxConcurrentPerNetwork, per Network
	ScopeReplica = "replica" // Config.MaxConcurrentTotal, all keys on this process
)

// StreamError says which share refused a stream, and its size.
type StreamError struct {
	Scope string // ScopeKey, ScopeNetwork or ScopeReplica
	Limit int
}

func (e *StreamError) Error() string {
	return "ratelimit: " + strconv.Itoa(e.Limit) + " concurrent streams per " + e.Scope + " already open"
}

func (e *StreamError) Unwrap() error { return ErrTooManyStreams }

// AcquireStream takes one concurrent-stream slot for key, counted against
// the key's share (Config.MaxConcurrent), its network's share
// (Config.MaxConcurrentPerNetwork; network "" has none) and this process's
// (Config.MaxConcurrentTotal). It answers a *StreamError naming the share
// that is used up, or a release to call once the stream ends (calling it
// again does nothing).
func (l *Limiter) AcquireStream(key, network string) (release func(), err error) {
	l.concMu.Lock()
	defer l.concMu.Unlock()
	switch {
	case l.conc[key] >= l.maxConc:
		return func() {}, &StreamError{Scope: ScopeKey, Limit: l.maxConc}
	case network != "" && l.concNet[network] >= l.maxConcNet:
		return func() {}, &StreamError{Scope: ScopeNetwork, Limit: l.maxConcNet}
	case l.concTotal >= l.maxConcTotal:
		return func() {}, &StreamError{Scope: ScopeReplica, Limit: l.maxConcTotal}
	}
	l.conc[key]++
	if network != "" {
		l.concNet[network]++
	}
	l.concTotal++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.concMu.Lock()
			defer l.concMu.Unlock()
			// Entries at zero are deleted: the maps stay as small as the
			// number of open streams.
			if l.conc[key]--; l.conc[key] <= 0 {
				delete(l.conc, key)
			}
			if network != "" {
				if l.concNet[network]--; l.concNet[network] <= 0 {
					delete(l.concNet, network)
				}
			}
			l.concTotal--
		})
	}, nil
}

// NetworkStreams reports how many slots network holds, and how many all
// keys hold together.
func (l *Limiter) NetworkStreams(network string) (held, total int) {
	l.concMu.Lock()
	defer l.concMu.Unlock()
	return l.concNet[network], l.concTotal
}
