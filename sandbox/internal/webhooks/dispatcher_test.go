package webhooks

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEnqueueBounds(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	d, _, _ := newDispatcher(t, Config{MaxPending: 2, Workers: 1})
	ep := Endpoint{URL: rc.URL, Secrets: []string{mustSecret(t)}}
	msg := testMessage()
	if err := d.Enqueue(t.Context(), ep, msg); err != nil {
		t.Fatal(err)
	}
	if err := d.Enqueue(t.Context(), ep, msg); !errors.Is(err, ErrAlreadyPending) {
		t.Fatalf("same id twice: %v, want ErrAlreadyPending", err)
	}
	if err := d.Enqueue(t.Context(), ep, testMessage()); err != nil {
		t.Fatal(err)
	}
	if err := d.Enqueue(t.Context(), ep, testMessage()); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third message: %v, want ErrQueueFull", err)
	}
	if n := d.Pending(); n != 2 {
		t.Fatalf("Pending() = %d", n)
	}
	for _, bad := range []Endpoint{
		{URL: "ftp://example.com/", Secrets: ep.Secrets},
		{URL: rc.URL},
		{URL: rc.URL, Secrets: []string{"whsec_c2hvcnQ="}},
	} {
		if err := d.Enqueue(t.Context(), bad, testMessage()); !errors.Is(err, ErrBadEndpoint) {
			t.Errorf("Enqueue(%+v): %v, want ErrBadEndpoint", bad, err)
		}
	}
}

func TestCloseReturnsPending(t *testing.T) {
	rc := newReceiver(t, status(http.StatusServiceUnavailable))
	d, wl, _ := newDispatcher(t, Config{Clock: stuckClock{}})
	ep := Endpoint{URL: rc.URL, Secrets: []string{mustSecret(t)}}
	msg := testMessage()
	if err := d.Enqueue(t.Context(), ep, msg); err != nil {
		t.Fatal(err)
	}
	if a := mustWait(t, wl.all); a.Outcome != OutcomeRetrying {
		t.Fatalf("first attempt %+v", a)
	}
	pending, err := d.Close(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := msg.Payload()
	if len(pending) != 1 || pending[0].Message.ID != msg.ID || pending[0].Attempts != 1 ||
		!pending[0].NextAttemptAt.Equal(testStart.Add(5*time.Second)) || !bytes.Equal(pending[0].Payload, want) ||
		!strings.Contains(pending[0].LastError, "503") {
		t.Fatalf("pending %+v", pending)
	}
	if err := d.Enqueue(t.Context(), ep, testMessage()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enqueue after Close: %v, want ErrClosed", err)
	}
	if _, err := d.Close(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseCutsAttemptsInFlight(t *testing.T) {
	arrived := make(chan struct{}, 1)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	d, wl, _ := newDispatcher(t, Config{AttemptTimeout: time.Minute})
	msg := testMessage()
	if err := d.Enqueue(t.Context(), Endpoint{URL: rc.URL, Secrets: []string{mustSecret(t)}}, msg); err != nil {
		t.Fatal(err)
	}
	<-arrived
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	pending, err := d.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want DeadlineExceeded", err)
	}
	if len(pending) != 1 || pending[0].Attempts != 0 {
		t.Fatalf("pending %+v; the cut attempt must not count", pending)
	}
	select {
	case a := <-wl.all:
		t.Fatalf("a cut attempt was recorded: %+v", a)
	default:
	}
}

func TestRedeliver(t *testing.T) {
	var fail atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	d, wl, clk := newDispatcher(t, Config{})
	ep := Endpoint{URL: rc.URL, Secrets: []string{mustSecret(t)}, Key: "k"}
	msg := testMessage()
	if err := d.Enqueue(t.Context(), ep, msg); err != nil {
		t.Fatal(err)
	}
	mustWait(t, wl.final)
	if err := d.Redeliver(t.Context(), ep, msg); err != nil {
		t.Fatal(err)
	}
	if a := mustWait(t, wl.final); !a.Manual || a.Number != 1 || a.Outcome != OutcomeDelivered || a.MessageID != msg.ID {
		t.Fatalf("redelivery %+v", a)
	}
	reqs := rc.Requests()
	if len(reqs) != 2 || reqs[0].Header.Get(HeaderID) != reqs[1].Header.Get(HeaderID) {
		t.Fatalf("redelivery must carry the same webhook-id")
	}
	fail.Store(true)
	if err := d.Redeliver(t.Context(), ep, msg); err != nil {
		t.Fatal(err)
	}
	if a := mustWait(t, wl.final); a.Outcome != OutcomeFailed || a.StatusCode != 502 {
		t.Fatalf("failed redelivery %+v", a)
	}
	if n := len(clk.Delays()); n != 0 {
		t.Fatalf("a manual redelivery scheduled %d retries", n)
	}
}

// A 410 from one message stops the retries already scheduled for others to
// the same endpoint.
func TestGoneStopsOtherPendingRetries(t *testing.T) {
	var gone atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if gone.Load() {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	gate := make(chan time.Time)
	d, wl, _ := newDispatcher(t, Config{Clock: gateClock{gate}})
	ep := Endpoint{URL: rc.URL, Secrets: []string{mustSecret(t)}, Key: "k"}
	first := testMessage()
	if err := d.Enqueue(t.Context(), ep, first); err != nil {
		t.Fatal(err)
	}
	mustWait(t, wl.all) // first: 503, waiting at the gate
	gone.Store(true)
	if err := d.Enqueue(t.Context(), ep, testMessage()); err != nil {
		t.Fatal(err)
	}
	if a := mustWait(t, wl.final); a.Outcome != OutcomeDisabled || a.StatusCode != 410 {
		t.Fatalf("second message %+v", a)
	}
	<-wl.all
	before := len(rc.Requests())
	gate <- testStart // let the first message's retry run
	a := mustWait(t, wl.final)
	if a.MessageID != first.ID || a.Outcome != OutcomeDisabled || a.StatusCode != 0 || len(rc.Requests()) != before {
		t.Fatalf("first message after 410: %+v, %d requests (was %d)", a, len(rc.Requests()), before)
	}
}

type gateClock struct{ gate chan time.Time }

func (gateClock) Now() time.Time                         { return testStart }
func (g gateClock) After(time.Duration) <-chan time.Time { return g.gate }

func TestNewDispatcherConfig(t *testing.T) {
	base := Config{Client: loopbackClient(), Log: NewMemLog(0, 0), Logger: slog.New(slog.DiscardHandler)}
	if _, err := NewDispatcher(base); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no client":      func(c *Config) { c.Client = nil },
		"no log":         func(c *Config) { c.Log = nil },
		"no logger":      func(c *Config) { c.Logger = nil },
		"negative scale": func(c *Config) { c.TimeScale = -1 },
		"empty schedule": func(c *Config) { c.Schedule = []time.Duration{} },
		"jitter ≥ 1":     func(c *Config) { c.JitterFraction = 1 },
	} {
		cfg := base
		mod(&cfg)
		if _, err := NewDispatcher(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestMemLogBounded(t *testing.T) {
	l := NewMemLog(3, 2)
	for i := range 5 {
		_ = l.Record(t.Context(), "a", Attempt{Number: i + 1})
	}
	got := l.List("a")
	if len(got) != 3 || got[0].Number != 3 || got[2].Number != 5 {
		t.Fatalf("List(a) = %+v", got)
	}
	_ = l.Record(t.Context(), "b", Attempt{})
	_ = l.Record(t.Context(), "a", Attempt{Number: 6}) // a is now the most recent
	_ = l.Record(t.Context(), "c", Attempt{})          // evicts b
	if l.List("b") != nil || len(l.List("a")) != 3 || len(l.List("c")) != 1 {
		t.Fatalf("eviction: a=%d b=%d c=%d", len(l.List("a")), len(l.List("b")), len(l.List("c")))
	}
}

func TestSecrets(t *testing.T) {
	a, b := mustSecret(t), mustSecret(t)
	if a == b || !strings.HasPrefix(a, SecretPrefix) {
		t.Fatalf("secrets %q %q", a, b)
	}
	key, err := ParseSecret(a)
	if err != nil || len(key) != 32 {
		t.Fatalf("ParseSecret: %d bytes, %v", len(key), err)
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65))} {
		if _, err := ParseSecret(bad); !errors.Is(err, ErrBadSecret) {
			t.Errorf("ParseSecret(%q): %v", bad, err)
		}
	}
	if _, err := NewSigner(); !errors.Is(err, ErrBadSecret) {
		t.Errorf("NewSigner(): %v", err)
	}
	s, _ := NewSigner(a, a, b)
	sig, _ := s.Sign("msg_1", testStart, []byte("{}"))
	if n := len(strings.Fields(sig)); n != 2 {
		t.Errorf("duplicate secrets signed twice: %q", sig)
	}
}

func BenchmarkSign(b *testing.B) {
	for _, n := range []int{len(vectorBody), 1 << 10, 16 << 10} {
		body := bytes.Repeat([]byte("x"), n)
		for _, secrets := range [][]string{{vectorSecret}, {vectorSecret, "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32))}} {
			b.Run(fmt.Sprintf("body=%dB/secrets=%d", n, len(secrets)), func(b *testing.B) {
				s, err := NewSigner(secrets...)
				if err != nil {
					b.Fatal(err)
				}
				at := time.Unix(vectorTS, 0)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Sign(vectorID, at, body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDeliver measures end-to-end throughput, enqueue to recorded
// 2xx, against a receiver on 127.0.0.1 that verifies nothing and answers
// 204 at once.
func BenchmarkDeliver(b *testing.B) {
	for _, workers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			rc := newReceiver(b, status(http.StatusNoContent))
			var done atomic.Int64
			all := make(chan struct{})
			var target atomic.Int64
			log := logFunc(func(a Attempt) {
				if a.Final && done.Add(1) == target.Load() {
					close(all)
				}
			})
			client := loopbackClient()
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = workers
			d, _, _ := newDispatcher(b, Config{Client: client, Log: log, Workers: workers, MaxPending: b.N + 1})
			ep := Endpoint{URL: rc.URL, Secrets: []string{vectorSecret}}
			target.Store(int64(b.N))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := d.Enqueue(context.Background(), ep, testMessage()); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-all:
			case <-time.After(time.Minute):
				b.Fatalf("%d of %d delivered after a minute", done.Load(), b.N)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

type logFunc func(Attempt)

func (f logFunc) Record(_ context.Context, _ string, a Attempt) error { f(a); return nil }

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://example.com/hooks":               "https://example.com/hooks",
		"https://example.com/hooks?token=abc&x=1": "https://example.com/hooks?redacted",
		"https://user:pass@example.com/hooks":     "https://redacted@example.com/hooks",
		"https://example.com/hooks#frag":          "https://example.com/hooks#redacted",
		"https://example.com/hooks?":              "https://example.com/hooks?redacted",
		"http://[::1]:8080/a b?secret=1":          "http://[::1]:8080/a%20b?redacted",
		"http://example.com/%zz":                  "(unparsable URL)",
	} {
		if got := RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
		if got := RedactURL(raw); strings.Contains(got, "abc") || strings.Contains(got, "pass") || strings.Contains(got, "secret") {
			t.Errorf("RedactURL(%q) = %q keeps a secret", raw, got)
		}
	}
}
