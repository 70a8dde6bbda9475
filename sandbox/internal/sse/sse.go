// Package sse writes server-sent events (WHATWG HTML §9.2) for the job event
// streams: headers at once, then events with id, event, data and retry,
// comment heartbeats on idle streams, and an end after the terminal event.
//
// Why our own writer and not Huma's sse package: in Huma v2.37.2 (the newest
// on our module proxy) sse.Register sends no headers until the first event,
// so a client cannot tell a slow job from a dead connection, and it has no
// way to write comment lines, which proxies need to keep an idle stream open
// (rows R32 and R35 of ASYNC-CONFORMANCE.md). This writer works on any
// http.ResponseWriter, so the HTTP layer registers the stream as an ordinary
// Huma operation and hands the writer its underlying ResponseWriter.
//
// Ids are decimal sequence numbers of the job's events; LastEventID reads the
// one a reconnecting client sends, so the HTTP layer can resume after it.
package sse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults.
const (
	// DefaultHeartbeat is how often an idle stream gets a comment line.
	// Proxies commonly drop connections silent for 30 to 60 s.
	DefaultHeartbeat = 15 * time.Second
	// DefaultHeartbeatText is the text of heartbeat comments.
	DefaultHeartbeatText = "keep-alive"
	// MaxLastEventIDLen bounds the Last-Event-ID accepted: an int64 has at
	// most 19 digits.
	MaxLastEventIDLen = 19
	// writeTimeout bounds one write to a client that stopped reading, so a
	// stuck connection cannot hold a stream (and its goroutine) forever. It is
	// a network deadline, so it uses the wall clock.
	writeTimeout = 30 * time.Second
)

// Sentinel errors.
var (
	// ErrInvalidField: an id or event name holds CR, LF or NUL, or a field is
	// not UTF-8. Nothing is written.
	ErrInvalidField = errors.New("sse: invalid field")
	// ErrNoFlush: the ResponseWriter cannot flush, so events would sit in a
	// buffer.
	ErrNoFlush = errors.New("sse: response writer cannot flush")
	// ErrClientGone: an earlier write failed; the stream is over.
	ErrClientGone = errors.New("sse: client gone")
	// ErrBadLastEventID: Last-Event-ID (or last_event_id) is not an event id
	// this API issued. The HTTP layer answers 400.
	ErrBadLastEventID = errors.New("invalid Last-Event-ID")
	// ErrMaxLifetime: Stream ended because Options.MaxLifetime passed. The
	// client reconnects with Last-Event-ID and resumes.
	ErrMaxLifetime = errors.New("sse: stream reached its maximum lifetime")
)

// Event is one server-sent event.
type Event struct {
	// ID is sent as the id field when not empty. It may not hold CR, LF or NUL.
	ID string
	// Event is the event type; empty means the default "message".
	// It may not hold CR or LF.
	Event string
	// Data is split at line breaks (CRLF, LF or CR) into data lines; the
	// client joins them with LF. Empty Data still sends one empty data line,
	// so the event is dispatched.
	Data string
	// Retry, when positive, is sent as the retry field in milliseconds: how
	// long a browser waits before reconnecting.
	Retry time.Duration
	// Terminal is not sent. It tells Stream that this is the last event.
	Terminal bool
}

// Writer writes events to one response. Its methods are safe for concurrent
// use (Heartbeat may run beside a goroutine sending events); each write is
// flushed at once. After a failed write every method returns ErrClientGone.
type Writer struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
	err error
}

// NewWriter sets the event-stream headers, sends them with a 200 status and
// flushes at once (R32), before any event exists.
//
// Cache-Control: no-store keeps caches from serving a stale stream;
// X-Accel-Buffering: no tells nginx-style proxies not to buffer it. Any
// write deadline set by http.Server.WriteTimeout is lifted (it would cut
// long streams); each write gets its own deadline instead.
func NewWriter(w http.ResponseWriter) (*Writer, error) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
	_ = rc.SetWriteDeadline(time.Time{}) // ErrNotSupported only means there is none to lift
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			return nil, fmt.Errorf("%w: %w", ErrNoFlush, err)
		}
		return nil, fmt.Errorf("sse: sending headers: %w: %w", ErrClientGone, err)
	}
	return &Writer{w: w, rc: rc}, nil
}

// Send writes ev and flushes it.
func (sw *Writer) Send(ev Event) error {
	if err := validate(ev); err != nil {
		return err
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	b := sw.buf[:0]
	if ev.ID != "" {
		b = append(append(append(b, "id: "...), ev.ID...), '\n')
	}
	if ev.Event != "" {
		b = append(append(append(b, "event: "...), ev.Event...), '\n')
	}
	if ev.Retry > 0 {
		b = append(b, "retry: "...)
		b = strconv.AppendInt(b, max(1, ev.Retry.Milliseconds()), 10)
		b = append(b, '\n')
	}
	b = appendLines(b, "data: ", ev.Data)
	b = append(b, '\n')
	sw.buf = b
	return sw.writeLocked(b)
}

// Comment writes text as comment lines (": text"), which clients ignore and
// proxies see as traffic (R35).
func (sw *Writer) Comment(text string) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("%w: comment is not UTF-8", ErrInvalidField)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	b := appendLines(sw.buf[:0], ": ", text)
	sw.buf = b
	return sw.writeLocked(b)
}

func (sw *Writer) writeLocked(b []byte) error {
	if sw.err != nil {
		return sw.err
	}
	_ = sw.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := sw.w.Write(b)
	if err == nil {
		err = sw.rc.Flush()
	}
	if err != nil {
		sw.err = fmt.Errorf("%w: %w", ErrClientGone, err)
		return sw.err
	}
	return nil
}

// appendLines appends prefix+line+"\n" for each line of s, splitting at CRLF,
// LF and CR as the WHATWG parser does.
func appendLines(b []byte, prefix, s string) []byte {
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			return append(append(append(b, prefix...), s...), '\n')
		}
		b = append(append(append(b, prefix...), s[:i]...), '\n')
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
}

func validate(ev Event) error {
	switch {
	case strings.ContainsAny(ev.ID, "\r\n\x00"):
		return fmt.Errorf("%w: id %q holds CR, LF or NUL", ErrInvalidField, ev.ID)
	case strings.ContainsAny(ev.Event, "\r\n"):
		return fmt.Errorf("%w: event %q holds CR or LF", ErrInvalidField, ev.Event)
	case !utf8.ValidString(ev.ID) || !utf8.ValidString(ev.Event) || !utf8.ValidString(ev.Data):
		return fmt.Errorf("%w: not UTF-8", ErrInvalidField)
	}
	return nil
}

// LastEventID reads the id a reconnecting client sends: the Last-Event-ID
// header, or else the last_event_id query parameter (for clients that cannot
// set headers, such as a first EventSource connection). ok is false when
// neither is present. Ids are non-negative decimal integers of at most 19
// digits; anything else is ErrBadLastEventID with a message saying what was
// wrong (not echoing long input).
func LastEventID(r *http.Request) (seq int64, ok bool, err error) {
	v, src := r.Header.Get("Last-Event-ID"), "Last-Event-ID header"
	if v == "" {
		v, src = r.URL.Query().Get("last_event_id"), "last_event_id parameter"
	}
	if v == "" {
		return 0, false, nil
	}
	if len(v) > MaxLastEventIDLen {
		return 0, false, fmt.Errorf("%w: the %s is %d characters long; event ids are at most %d digits", ErrBadLastEventID, src, len(v), MaxLastEventIDLen)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false, fmt.Errorf("%w: the %s %q is not a decimal event id (digits only, as in the id field of the events)", ErrBadLastEventID, src, v)
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%w: the %s %q is too large", ErrBadLastEventID, src, v)
	}
	return n, true, nil
}

// Ticker is what heartbeats need of a ticker. The sandbox's clock.Ticker
// satisfies it; wire a clock.Clock with
//
//	sse.Options{NewTicker: func(d time.Duration) sse.Ticker { return clk.NewTicker(d) }, After: clk.After}
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// Heartbeat writes a comment each time t ticks, until ctx ends or a write
// fails; it stops t before returning. Use it beside a loop of your own; Stream
// has heartbeats built in.
func Heartbeat(ctx context.Context, w *Writer, t Ticker, text string) error {
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("sse: heartbeat: %w", context.Cause(ctx))
		case <-t.C():
			if err := w.Comment(text); err != nil {
				return err
			}
		}
	}
}

// Options tune Stream. Zero values take the defaults.
type Options struct {
	// Heartbeat is the interval of comment lines on an idle stream; default
	// DefaultHeartbeat, negative disables them. A tick that follows an event
	// is skipped: the stream was not idle.
	Heartbeat time.Duration
	// HeartbeatText defaults to DefaultHeartbeatText.
	HeartbeatText string
	// MaxLifetime, when positive, ends the stream with ErrMaxLifetime after
	// that long, so no connection lives forever; the client reconnects.
	MaxLifetime time.Duration
	// NewTicker defaults to time.NewTicker.
	NewTicker func(time.Duration) Ticker
	// After defaults to time.After.
	After func(time.Duration) <-chan time.Time
	// Logger defaults to one that discards.
	Logger *slog.Logger
}

// Stream sends first at once (the current state, R32), then every event from
// next, with heartbeat comments while idle (R35). It returns nil after an
// event marked Terminal or when next is closed; ErrMaxLifetime when
// Options.MaxLifetime passes; an error wrapping ctx's cause when ctx ends
// (the client went away, or the server is shutting down); or the write error
// (ErrClientGone) when the client stopped reading.
func Stream(ctx context.Context, w *Writer, first Event, next <-chan Event, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := w.Send(first); err != nil {
		return err
	}
	if first.Terminal {
		return nil
	}

	var tick <-chan time.Time
	if hb := cmp.Or(opts.Heartbeat, DefaultHeartbeat); hb > 0 {
		newTicker := opts.NewTicker
		if newTicker == nil {
			newTicker = func(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }
		}
		t := newTicker(hb)
		defer t.Stop()
		tick = t.C()
	}
	var deadline <-chan time.Time
	if opts.MaxLifetime > 0 {
		after := opts.After
		if after == nil {
			after = time.After
		}
		deadline = after(opts.MaxLifetime)
	}
	text := cmp.Or(opts.HeartbeatText, DefaultHeartbeatText)

	sentSinceTick := false
	for {
		select {
		case <-ctx.Done():
			log.DebugContext(ctx, "event stream ended by context", "cause", context.Cause(ctx))
			return fmt.Errorf("sse: stream: %w", context.Cause(ctx))
		case <-deadline:
			log.DebugContext(ctx, "event stream reached its maximum lifetime", "lifetime", opts.MaxLifetime)
			return ErrMaxLifetime
		case ev, ok := <-next:
			if !ok {
				return nil
			}
			if err := w.Send(ev); err != nil {
				return err
			}
			if ev.Terminal {
				return nil
			}
			sentSinceTick = true
		case <-tick:
			if sentSinceTick {
				sentSinceTick = false
				continue
			}
			if err := w.Comment(text); err != nil {
				return err
			}
		}
	}
}

// Finished answers a subscription to a stream that has already ended (R36),
// without waiting for anything. If the client has already seen the terminal
// event (its Last-Event-ID is at or past terminal.ID), it answers 204 No
// Content, which makes a browser's EventSource stop reconnecting. Otherwise
// it sends the terminal event and returns, ending the response; the browser's
// next reconnect then gets the 204. A bad Last-Event-ID returns
// ErrBadLastEventID before anything is written.
func Finished(w http.ResponseWriter, r *http.Request, terminal Event) error {
	seen, ok, err := LastEventID(r)
	if err != nil {
		return err
	}
	if id, perr := strconv.ParseInt(terminal.ID, 10, 64); ok && perr == nil && seen >= id {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	sw, err := NewWriter(w)
	if err != nil {
		return err
	}
	terminal.Terminal = true
	return sw.Send(terminal)
}
