package webhooks

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
)

// The secret and vector of Standard Webhooks' own test suite (R25).
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// stepClock is a fake scheduler: After records the delay, moves the clock
// forward by it and fires at once, so a 76-hour schedule runs in
// milliseconds and the test reads back exactly what was asked for.
type stepClock struct {
	mu     sync.Mutex
	now    time.Time
	delays []time.Duration
}

func newStepClock() *stepClock { return &stepClock{now: testStart} }

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delays = append(c.delays, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *stepClock) Delays() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.delays...)
}

// stuckClock never fires: deliveries wait for their retry until Close.
type stuckClock struct{}

func (stuckClock) Now() time.Time                       { return testStart }
func (stuckClock) After(time.Duration) <-chan time.Time { return nil }

// waitLog is a MemLog that also reports each attempt on a channel.
type waitLog struct {
	*MemLog
	all, final chan Attempt
}

func newWaitLog() *waitLog {
	return &waitLog{MemLog: NewMemLog(0, 0), all: make(chan Attempt, 4096), final: make(chan Attempt, 4096)}
}

func (l *waitLog) Record(ctx context.Context, key string, a Attempt) error {
	_ = l.MemLog.Record(ctx, key, a)
	l.all <- a
	if a.Final {
		l.final <- a
	}
	return nil
}

func mustWait(t testing.TB, ch <-chan Attempt) Attempt {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no attempt recorded within 10 s")
		return Attempt{}
	}
}

// loopbackClient is the safedial client allowing 127.0.0.1, where the
// httptest receivers listen.
func loopbackClient() *http.Client {
	return safedial.Policy{Allow: netip.Addr.IsLoopback}.Client()
}

// newDispatcher returns a Dispatcher on a stepClock with no jitter, unless
// cfg says otherwise, closed when the test ends.
func newDispatcher(t testing.TB, cfg Config) (*Dispatcher, *waitLog, *stepClock) {
	t.Helper()
	clk := newStepClock()
	wl := newWaitLog()
	if cfg.Client == nil {
		cfg.Client = loopbackClient()
	}
	if cfg.Clock == nil {
		cfg.Clock = clk
	}
	if cfg.Log == nil {
		cfg.Log = wl
	}
	if cfg.JitterFraction == 0 {
		cfg.JitterFraction = -1
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	d, err := NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = d.Close(ctx)
	})
	return d, wl, clk
}

type captured struct {
	Header http.Header
	Body   []byte
}

type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []captured
}

func (r *receiver) Requests() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.reqs...)
}

// newReceiver starts a receiver on 127.0.0.1; answer is called with the
// 1-based number of the request.
func newReceiver(t testing.TB, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, captured{r.Header.Clone(), body})
		n := len(rc.reqs)
		rc.mu.Unlock()
		answer(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

func mustSecret(t testing.TB) string {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testMessage() Message {
	return NewMessage("import.complete", testStart, map[string]any{"import_id": "imp_123", "imported": 42})
}
