package sse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTicker is driven by the test: it ticks when the test sends on ch.
type fakeTicker struct {
	ch      chan time.Time
	d       time.Duration
	stopped atomic.Bool
}

func (f *fakeTicker) C() <-chan time.Time { return f.ch }
func (f *fakeTicker) Stop()               { f.stopped.Store(true) }

// newFakeTickers returns a NewTicker for Options and a channel that receives
// each ticker it makes.
func newFakeTickers() (func(time.Duration) Ticker, chan *fakeTicker) {
	made := make(chan *fakeTicker, 4)
	return func(d time.Duration) Ticker {
		ft := &fakeTicker{ch: make(chan time.Time, 1), d: d}
		made <- ft
		return ft
	}, made
}

// newServer serves h on 127.0.0.1:0 and closes it at the end of the test.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// rawClient is an HTTP/1.1 client on a bare TCP connection: no http.Client,
// no buffering we do not control, and we can hang up at will.
type rawClient struct {
	conn net.Conn
	resp *http.Response
	p    *parser
}

func newRawClient(t *testing.T, srv *httptest.Server, target string, hdr http.Header) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+target, nil)
	req.Header.Set("Accept", "text/event-stream")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("reading response head: %v", err)
	}
	return &rawClient{conn: conn, resp: resp, p: newParser(resp.Body)}
}

func (c *rawClient) next(t *testing.T) item {
	t.Helper()
	it, err := c.p.next()
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	return it
}

func (c *rawClient) event(t *testing.T) parsedEvent {
	t.Helper()
	it := c.next(t)
	if it.IsComment {
		t.Fatalf("got comment %q, want an event", it.Comment)
	}
	return it.Event
}

// jobStream is a handler like the one the HTTP layer will register: it sends
// the current state, then what the test pushes on progress.
type jobStream struct {
	progress chan Event
	opts     Options
	done     chan error
}

func newJobStream(opts Options) *jobStream {
	return &jobStream{progress: make(chan Event), opts: opts, done: make(chan error, 1)}
}

func (j *jobStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw, err := NewWriter(w)
	if err != nil {
		j.done <- err
		return
	}
	j.done <- Stream(r.Context(), sw, Event{ID: "1", Event: "status", Data: `{"status":"running"}`, Retry: 3 * time.Second}, j.progress, j.opts)
}

func (j *jobStream) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-j.done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not return")
		return nil
	}
}

func TestConformance(t *testing.T) {
	t.Run("R32_headers_and_first_event_at_once", func(t *testing.T) {
		// Headers alone, before any event exists.
		release := make(chan struct{})
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if _, err := NewWriter(w); err != nil {
				t.Error(err)
			}
			<-release
		})
		c := newRawClient(t, srv, "/", nil)
		close(release)
		for k, want := range map[string]string{
			"Content-Type":      "text/event-stream; charset=utf-8",
			"Cache-Control":     "no-store",
			"X-Accel-Buffering": "no",
		} {
			if got := c.resp.Header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if c.resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", c.resp.StatusCode)
		}

		// Headers and the current state, with no progress ever sent.
		ticks, _ := newFakeTickers()
		js := newJobStream(Options{NewTicker: ticks})
		srv = newServer(t, js.ServeHTTP)
		c = newRawClient(t, srv, "/", nil)
		if ct := c.resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		if ev := c.event(t); ev.Type != "status" || ev.Data != `{"status":"running"}` || ev.LastEventID != "1" {
			t.Fatalf("first event %+v", ev)
		}
		js.progress <- Event{ID: "2", Event: "progress", Data: `{"percent":50}`}
		if ev := c.event(t); ev.LastEventID != "2" || ev.Type != "progress" {
			t.Fatalf("progress event %+v", ev)
		}
		js.progress <- Event{ID: "3", Event: "status", Data: `{"status":"succeeded"}`, Terminal: true}
		if ev := c.event(t); ev.LastEventID != "3" {
			t.Fatalf("terminal event %+v", ev)
		}
		if _, err := c.p.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("after terminal event: %v, want the end of the body", err)
		}
		if err := js.wait(t); err != nil {
			t.Fatalf("Stream after terminal: %v", err)
		}
	})

	t.Run("R33_fields", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			sw, err := NewWriter(w)
			if err != nil {
				t.Error(err)
				return
			}
			for _, bad := range []Event{{ID: "1\n2"}, {ID: "a\x00"}, {Event: "x\ry"}, {Data: "\xff"}} {
				if err := sw.Send(bad); !errors.Is(err, ErrInvalidField) {
					t.Errorf("Send(%+v): %v, want ErrInvalidField", bad, err)
				}
			}
			events := []Event{
				{ID: "41", Event: "progress", Data: "line one\nline two\r\nline three\rline four", Retry: 2500 * time.Millisecond},
				{ID: "42", Data: ""},
				{ID: "43", Event: "status", Data: " leading space kept"},
			}
			for _, ev := range events {
				if err := sw.Send(ev); err != nil {
					t.Error(err)
				}
			}
		})
		c := newRawClient(t, srv, "/", nil)
		want := []parsedEvent{
			{Type: "progress", Data: "line one\nline two\nline three\nline four", LastEventID: "41"},
			{Type: "message", Data: "", LastEventID: "42"},
			{Type: "status", Data: " leading space kept", LastEventID: "43"},
		}
		for i, w := range want {
			if got := c.event(t); got != w {
				t.Errorf("event %d = %+v, want %+v", i, got, w)
			}
			if i == 0 && c.p.retryMS != 2500 {
				t.Errorf("retry = %d ms, want 2500", c.p.retryMS)
			}
		}
		if _, err := c.p.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("invalid events leaked bytes or the stream did not end: %v", err)
		}
	})

	t.Run("R34_last_event_id", func(t *testing.T) {
		// The job's event log; a reconnect resumes after the id it names.
		log := []Event{
			{ID: "1", Event: "status", Data: "queued"},
			{ID: "2", Event: "progress", Data: "25"},
			{ID: "3", Event: "progress", Data: "75"},
			{ID: "4", Event: "status", Data: "succeeded", Terminal: true},
		}
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			seen, _, err := LastEventID(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rest := log[min(int(seen), len(log)-1):]
			next := make(chan Event, len(rest))
			for _, ev := range rest[1:] {
				next <- ev
			}
			close(next)
			sw, err := NewWriter(w)
			if err == nil {
				err = Stream(r.Context(), sw, rest[0], next, Options{Heartbeat: -1})
			}
			if err != nil {
				t.Error(err)
			}
		})
		c := newRawClient(t, srv, "/", http.Header{"Last-Event-Id": {"2"}})
		if ev := c.event(t); ev.LastEventID != "3" {
			t.Fatalf("after Last-Event-ID 2, first id %q, want 3", ev.LastEventID)
		}
		if ev := c.event(t); ev.LastEventID != "4" {
			t.Fatalf("then %q, want 4", ev.LastEventID)
		}
		c = newRawClient(t, srv, "/?last_event_id=1", nil)
		if ev := c.event(t); ev.LastEventID != "2" {
			t.Fatalf("after last_event_id=1, first id %q, want 2", ev.LastEventID)
		}
		for range 2 {
			c.event(t)
		}
		if _, err := c.p.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("stream did not end after the terminal event: %v", err)
		}
		c = newRawClient(t, srv, "/", http.Header{"Last-Event-Id": {"abc"}})
		if c.resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("junk Last-Event-ID: status %d, want 400", c.resp.StatusCode)
		}
	})

	t.Run("R35_heartbeat_comment", func(t *testing.T) {
		ticks, made := newFakeTickers()
		js := newJobStream(Options{NewTicker: ticks})
		srv := newServer(t, js.ServeHTTP)
		c := newRawClient(t, srv, "/", nil)
		c.event(t)
		ft := <-made
		if ft.d != 15*time.Second {
			t.Fatalf("heartbeat interval %v, want 15s", ft.d)
		}
		ft.ch <- time.Now()
		if it := c.next(t); !it.IsComment || it.Comment != DefaultHeartbeatText {
			t.Fatalf("after an idle tick got %+v, want a comment", it)
		}
		// A tick right after an event is skipped: the stream was not idle.
		js.progress <- Event{ID: "2", Data: "x"}
		ft.ch <- time.Now()
		js.progress <- Event{ID: "3", Data: "y"}
		c.event(t)
		if ev := c.event(t); ev.LastEventID != "3" {
			t.Fatalf("got %+v, want event 3 with no heartbeat between", ev)
		}
		js.progress <- Event{ID: "4", Data: "done", Terminal: true}
		c.event(t)
		if err := js.wait(t); err != nil {
			t.Fatalf("Stream after terminal: %v", err)
		}
		if !ft.stopped.Load() {
			t.Fatal("ticker not stopped when the stream ended")
		}
	})

	t.Run("R36_finished_sends_terminal_and_ends", func(t *testing.T) {
		terminal := Event{ID: "9", Event: "status", Data: `{"status":"succeeded"}`}
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if err := Finished(w, r, terminal); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
			}
		})
		c := newRawClient(t, srv, "/", nil)
		if ev := c.event(t); ev.LastEventID != "9" || ev.Type != "status" {
			t.Fatalf("got %+v, want the terminal event", ev)
		}
		if _, err := c.p.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("stream did not end after the terminal event: %v", err)
		}
		// The browser reconnects with the terminal id: 204 stops it.
		for _, id := range []string{"9", "10"} {
			c = newRawClient(t, srv, "/", http.Header{"Last-Event-Id": {id}})
			if c.resp.StatusCode != http.StatusNoContent {
				t.Fatalf("reconnect after the end (id %s): status %d, want 204", id, c.resp.StatusCode)
			}
		}
		c = newRawClient(t, srv, "/", http.Header{"Last-Event-Id": {"8"}})
		if ev := c.event(t); ev.LastEventID != "9" {
			t.Fatalf("reconnect with an older id: got %+v", ev)
		}
	})
}

func TestClientDisconnectEndsStream(t *testing.T) {
	base := runtime.NumGoroutine()
	ticks, made := newFakeTickers()
	js := newJobStream(Options{NewTicker: ticks})
	srv := httptest.NewServer(js)
	c := newRawClient(t, srv, "/", nil)
	c.event(t)
	ft := <-made
	c.conn.Close()
	err := js.wait(t)
	if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrClientGone) {
		t.Fatalf("Stream returned %v, want context.Canceled or ErrClientGone", err)
	}
	if !ft.stopped.Load() {
		t.Fatal("ticker not stopped")
	}
	srv.Close()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after\n%s", base, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWriteAfterClientGone(t *testing.T) {
	got := make(chan error, 1)
	gone := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		sw, err := NewWriter(w)
		if err != nil {
			got <- err
			return
		}
		<-gone
		<-r.Context().Done()
		// Keep writing until the broken connection shows; a dead peer
		// needs a write or two before TCP reports it.
		payload := strings.Repeat("x", 64<<10)
		for range 1000 {
			if err = sw.Send(Event{Data: payload}); err != nil {
				break
			}
		}
		if err == nil {
			got <- errors.New("no error writing to a closed connection")
			return
		}
		if err2 := sw.Comment("again"); !errors.Is(err2, ErrClientGone) {
			err = fmt.Errorf("second write: %v", err2)
		}
		got <- err
	})
	c := newRawClient(t, srv, "/", nil)
	c.conn.Close()
	close(gone)
	if err := <-got; !errors.Is(err, ErrClientGone) {
		t.Fatalf("err = %v, want ErrClientGone", err)
	}
}

func TestMaxLifetime(t *testing.T) {
	deadline := make(chan time.Time, 1)
	var asked time.Duration
	js := newJobStream(Options{Heartbeat: -1, MaxLifetime: time.Hour, After: func(d time.Duration) <-chan time.Time {
		asked = d
		return deadline
	}})
	srv := newServer(t, js.ServeHTTP)
	c := newRawClient(t, srv, "/", nil)
	c.event(t)
	deadline <- time.Now()
	if err := js.wait(t); !errors.Is(err, ErrMaxLifetime) {
		t.Fatalf("err = %v, want ErrMaxLifetime", err)
	}
	if asked != time.Hour {
		t.Fatalf("After(%v), want 1h", asked)
	}
	if _, err := c.p.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("body did not end: %v", err)
	}
}

func TestStreamEndsOnContext(t *testing.T) {
	rec := httptest.NewRecorder()
	sw, err := NewWriter(rec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	errShutdown := errors.New("server shutting down")
	cancel(errShutdown)
	if err := Stream(ctx, sw, Event{ID: "1", Data: "s"}, nil, Options{Heartbeat: -1}); !errors.Is(err, errShutdown) {
		t.Fatalf("err = %v, want the context cause", err)
	}
	if got := rec.Body.String(); got != "id: 1\ndata: s\n\n" {
		t.Fatalf("body %q", got)
	}
}

func TestHeartbeatHelper(t *testing.T) {
	rec := httptest.NewRecorder()
	sw, _ := NewWriter(rec)
	ft := &fakeTicker{ch: make(chan time.Time)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { err = Heartbeat(ctx, sw, ft, "ping") })
	ft.ch <- time.Now()
	ft.ch <- time.Now() // the second send returns once the first comment is written
	cancel()
	wg.Wait()
	if !errors.Is(err, context.Canceled) || !ft.stopped.Load() {
		t.Fatalf("err %v, stopped %v", err, ft.stopped.Load())
	}
	if got := rec.Body.String(); !strings.HasPrefix(got, ": ping\n: ping\n") {
		t.Fatalf("body %q", got)
	}
	if !rec.Flushed {
		t.Fatal("not flushed")
	}
}

func TestLastEventID(t *testing.T) {
	for _, tc := range []struct {
		header, query string
		seq           int64
		ok            bool
		errPart       string
	}{
		{"", "", 0, false, ""},
		{"0", "", 0, true, ""},
		{"42", "7", 42, true, ""},
		{"", "7", 7, true, ""},
		{"9223372036854775807", "", 1<<63 - 1, true, ""},
		{"9999999999999999999", "", 0, false, "too large"},
		{"-1", "", 0, false, "not a decimal event id"},
		{"1.5", "", 0, false, "not a decimal event id"},
		{"abc", "", 0, false, "not a decimal event id"},
		{strings.Repeat("1", 20), "", 0, false, "20 characters long"},
		{"", "x", 0, false, "last_event_id parameter"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/?last_event_id="+tc.query, nil)
		if tc.query == "" {
			r = httptest.NewRequest(http.MethodGet, "/", nil)
		}
		if tc.header != "" {
			r.Header.Set("Last-Event-ID", tc.header)
		}
		seq, ok, err := LastEventID(r)
		if tc.errPart != "" {
			if !errors.Is(err, ErrBadLastEventID) || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("%q/%q: err = %v, want ErrBadLastEventID mentioning %q", tc.header, tc.query, err, tc.errPart)
			}
			continue
		}
		if err != nil || seq != tc.seq || ok != tc.ok {
			t.Errorf("%q/%q = %d, %v, %v; want %d, %v", tc.header, tc.query, seq, ok, err, tc.seq, tc.ok)
		}
	}
}
