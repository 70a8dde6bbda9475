package app

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
)

// streamItem is one block of an event stream: an event, or comment lines.
type streamItem struct {
	id, event, data, retry string
	comments               []string
}

// eventStream reads an SSE response block by block.
type eventStream struct {
	res *http.Response
	r   *bufio.Reader
}

func (ts *testSandbox) openStream(t *testing.T, key, path string, headers ...string) *eventStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return &eventStream{res: res, r: bufio.NewReader(res.Body)}
}

// next reads one comment line, or the lines of an event up to the blank
// line that ends it; ok is false at the end of the stream.
func (s *eventStream) next(t *testing.T) (streamItem, bool) {
	t.Helper()
	var it streamItem
	var data []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return it, false
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			it.data = strings.Join(data, "\n")
			return it, true
		}
		if c, ok := strings.CutPrefix(line, ":"); ok {
			// A comment needs no blank line after it; report it on its own
			// unless it sits inside an event's lines.
			it.comments = append(it.comments, strings.TrimPrefix(c, " "))
			if it.id == "" && it.event == "" && len(data) == 0 {
				return it, true
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			it.id = value
		case "event":
			it.event = value
		case "data":
			data = append(data, value)
		case "retry":
			it.retry = value
		}
	}
}

// await reads blocks in the background until one satisfies want, calling
// nudge (which moves a fake clock) every few milliseconds meanwhile: the
// goroutines that wait on the clock may register their timers at any time,
// so moving it once could come too early.
func (s *eventStream) await(t *testing.T, want func(streamItem) bool, nudge func()) streamItem {
	t.Helper()
	found := make(chan streamItem, 1)
	go func() {
		for {
			it, ok := s.next(t)
			if !ok {
				close(found)
				return
			}
			if want(it) {
				found <- it
				return
			}
		}
	}()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case it, ok := <-found:
			if !ok {
				t.Fatal("the stream ended first")
			}
			return it
		case <-deadline:
			s.res.Body.Close()
			t.Fatal("no such block within 10 s")
		case <-time.After(5 * time.Millisecond):
			nudge()
		}
	}
}

// nextEvent skips comment-only blocks.
func (s *eventStream) nextEvent(t *testing.T) (streamItem, bool) {
	t.Helper()
	for {
		it, ok := s.next(t)
		if !ok || it.event != "" || it.data != "" {
			return it, ok
		}
	}
}

func TestEventStreams(t *testing.T) {
	t.Run("R32_headers_and_current_state_at_once", func(t *testing.T) {
		ts := newSandbox(t, nil, withScale(1))
		key := ts.key(t)
		r := ts.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"duration_seconds": 600}))
		s := ts.openStream(t, key, r.Header.Get("Location")+"/events")
		if ct := s.res.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" || s.res.StatusCode != 200 {
			t.Fatalf("%d %q", s.res.StatusCode, ct)
		}
		it, ok := s.nextEvent(t)
		if !ok || it.event != "progress" || it.id == "" || it.retry != "2000" {
			t.Fatalf("first event %+v", it)
		}
		var job map[string]any
		if err := json.Unmarshal([]byte(it.data), &job); err != nil || job["id"] != r.json(t)["id"] {
			t.Errorf("data %q: %v", it.data, err)
		}
		ts.do(t, http.MethodDelete, r.Header.Get("Location"), key, nil)
	})

	t.Run("R33_ids_events_and_a_terminal_event_that_ends_the_stream", func(t *testing.T) {
		ts := newSandbox(t, nil, withScale(0.01))
		key := ts.key(t)
		r := ts.mustStart(t, key, "/v1/exports", map[string]any{"format": "csv", "from": "2026-01-01", "to": "2026-06-30", "simulate": map[string]any{"duration_seconds": 20}})
		s := ts.openStream(t, key, r.Header.Get("Location")+"/events")
		var events []streamItem
		for {
			it, ok := s.nextEvent(t)
			if !ok {
				break
			}
			events = append(events, it)
		}
		if len(events) < 3 {
			t.Fatalf("only %d events", len(events))
		}
		last := events[len(events)-1]
		if last.event != "succeeded" {
			t.Errorf("last event %q, want succeeded", last.event)
		}
		prev := -1.0
		for _, e := range events {
			var id float64
			if err := json.Unmarshal([]byte(e.id), &id); err != nil || id <= prev {
				t.Errorf("ids do not rise: %q after %v", e.id, prev)
			}
			prev = id
		}
	})

	t.Run("R34_Last_Event_ID_resumes_after_it", func(t *testing.T) {
		fake := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
		ts := newSandbox(t, nil, withFakeClock(fake), withScale(1))
		key := ts.key(t)
		r := ts.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"duration_seconds": 10}))
		loc := r.Header.Get("Location")
		s := ts.openStream(t, key, loc+"/events")
		first, _ := s.nextEvent(t)
		s.res.Body.Close() // the connection drops

		// Reconnect with the id seen: nothing is repeated; the next change comes next.
		s2 := ts.openStream(t, key, loc+"/events", "Last-Event-ID", first.id)
		hello, _ := s2.next(t)
		if len(hello.comments) == 0 || hello.event != "" {
			t.Errorf("resume started with %+v, want a comment and no repeated state", hello)
		}
		next := s2.await(t, func(it streamItem) bool { return it.id != "" }, func() { fake.Advance(time.Second) })
		if next.id <= first.id && len(next.id) <= len(first.id) {
			t.Errorf("after id %s came %+v", first.id, next)
		}
		// A bad id is refused with a problem.
		if bad := ts.do(t, http.MethodGet, loc+"/events", key, nil, "Last-Event-ID", "abc"); bad.StatusCode != 400 {
			t.Errorf("Last-Event-ID abc: %d", bad.StatusCode)
		}
	})

	t.Run("R35_heartbeat_comments_on_idle_streams", func(t *testing.T) {
		fake := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
		ts := newSandbox(t, nil, withFakeClock(fake), withScale(1))
		key := ts.key(t)
		r := ts.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"outcome": "stall", "duration_seconds": 600}))
		s := ts.openStream(t, key, r.Header.Get("Location")+"/events")
		// The stream may open before a worker takes the job: wait for the
		// processing state, after which the stalled worker sends nothing.
		if first, _ := s.nextEvent(t); !strings.Contains(first.data, `"status":"processing"`) {
			s.await(t, func(it streamItem) bool { return strings.Contains(it.data, `"status":"processing"`) }, func() {})
		}
		// One second at a time, so the stalled worker's silence is all the
		// stream sees: the comment comes with no event between.
		it := s.await(t, func(it streamItem) bool { return len(it.comments) > 0 || it.id != "" }, func() { fake.Advance(time.Second) })
		if len(it.comments) == 0 || it.comments[0] != "keep-alive" || it.id != "" {
			t.Errorf("on an idle stream: %+v, want a keep-alive comment", it)
		}
		ts.do(t, http.MethodDelete, r.Header.Get("Location"), key, nil)
	})

	t.Run("R36_finished_job_answers_at_once", func(t *testing.T) {
		ts := newSandbox(t, nil)
		key := ts.key(t)
		r := ts.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"outcome": "fail", "fail_code": "source_data_invalid"}))
		ts.mustFollow(t, key, r.Header.Get("Location"))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s := ts.openStream(t, key, r.Header.Get("Location")+"/events")
		it, ok := s.nextEvent(t)
		if !ok || it.event != "failed" || ctx.Err() != nil {
			t.Fatalf("finished job: %+v", it)
		}
		if _, more := s.next(t); more {
			t.Error("stream went on after the terminal event")
		}
		again := ts.do(t, http.MethodGet, r.Header.Get("Location")+"/events", key, nil, "Last-Event-ID", it.id)
		if again.StatusCode != http.StatusNoContent {
			t.Errorf("reconnect after the terminal event: %d, want 204", again.StatusCode)
		}
	})

	t.Run("stream_limits_and_isolation", func(t *testing.T) {
		ts := newSandbox(t, nil, withScale(1))
		a, b := ts.key(t), ts.key(t)
		r := ts.mustStart(t, a, "/v1/reports", reportBody(map[string]any{"duration_seconds": 600}))
		path := r.Header.Get("Location") + "/events"
		if got := ts.do(t, http.MethodGet, path, b, nil); got.StatusCode != 404 {
			t.Errorf("other key: %d", got.StatusCode)
		}
		for range 5 {
			s := ts.openStream(t, a, path)
			s.nextEvent(t)
		}
		if got := ts.do(t, http.MethodGet, path, a, nil); got.StatusCode != http.StatusTooManyRequests {
			t.Errorf("sixth stream: %d, want 429", got.StatusCode)
		}
	})

	t.Run("inbox_stream_shows_deliveries_as_they_arrive", func(t *testing.T) {
		ts := newSandbox(t, nil, withScale(0.01))
		key := ts.key(t)
		ib := ts.mustInbox(t, key)
		s := ts.openStream(t, key, "/v1/sandbox/inboxes/"+ib.ID+"/events")
		ready, ok := s.nextEvent(t)
		if !ok || ready.event != "ready" || ready.id != "0" {
			t.Fatalf("first event %+v", ready)
		}
		ts.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1", "A-2")))
		it := s.await(t, func(it streamItem) bool { return it.event == "delivery" }, func() {})
		var d struct {
			Headers      map[string][]string
			Verification struct{ Valid bool }
		}
		if err := json.Unmarshal([]byte(it.data), &d); err != nil || it.id != "1" || !d.Verification.Valid || len(d.Headers["Webhook-Id"]) == 0 {
			t.Errorf("delivery event %+v: %v", it, err)
		}
		other := ts.key(t)
		if r := ts.do(t, http.MethodGet, "/v1/sandbox/inboxes/"+ib.ID+"/events", other, nil); r.StatusCode != 404 {
			t.Errorf("other key: %d", r.StatusCode)
		}
	})
}
