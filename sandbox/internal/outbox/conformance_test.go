package outbox

import (
	"bytes"
	"cmp"
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// TestConformance has one subtest per row of ASYNC-CONFORMANCE.md that
// the outbox implements, on every backend: retries keep the id (R26), what
// each answer does to the next attempt (R27), the schedule (R28), and
// refused addresses (R31, at connect time). The webhooks package checks
// one attempt's headers, signature and payload (R24, R25, R29, R30).
//
// Each case has a database of its own, so that cases run in parallel and
// no outbox sees another's messages (two on one database are two
// replicas, sharing the work).
func TestConformance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		t.Run("R26_same_id_new_timestamp", func(t *testing.T) { t.Parallel(); testSameIDNewTimestamp(t, b) })
		t.Run("R27_only_2xx_success_no_redirects_410_disables_retry_after_honoured", func(t *testing.T) { t.Parallel(); testResponses(t, b) })
		t.Run("R28_schedule", func(t *testing.T) { t.Parallel(); testSchedule(t, b) })
		t.Run("R31_blocked_address_fails_at_once", func(t *testing.T) { t.Parallel(); testBlocked(t, b) })
	})
}

func testSameIDNewTimestamp(t *testing.T, b dbtest.Backend) {
	const failures = 3
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= failures {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	e := newEnv(t, b.Open(t, dbtest.Logger(t)), nil)
	msg, job := e.enqueue("key_1", rc.URL)
	l := e.final("key_1", job)
	if l.State != webhooks.OutcomeDelivered || len(l.Attempts) != failures+1 || l.MessageID != msg.ID {
		t.Fatalf("log %s", describe(l))
	}
	reqs := rc.Requests()
	if len(reqs) != failures+1 {
		t.Fatalf("%d requests, want %d", len(reqs), failures+1)
	}
	want, _ := msg.Payload()
	var lastTS int64
	sigs := map[string]bool{}
	for i, r := range reqs {
		if id := r.Header.Get("webhook-id"); id != msg.ID {
			t.Errorf("attempt %d: webhook-id %q, want %q", i+1, id, msg.ID)
		}
		ts, _ := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
		if ts <= lastTS {
			t.Errorf("attempt %d: timestamp %d not after %d", i+1, ts, lastTS)
		}
		lastTS = ts
		sigs[r.Header.Get("webhook-signature")] = true
		if !bytes.Equal(r.Body, want) {
			t.Errorf("attempt %d: body %s, want the stored payload %s", i+1, r.Body, want)
		}
		if rep, err := webhooks.Verify(testSecret, r.Header, r.Body, time.Unix(ts, 0), 0); err != nil || !rep.Valid {
			t.Errorf("attempt %d does not verify: %v", i+1, err)
		}
	}
	if len(sigs) != len(reqs) {
		t.Errorf("%d distinct signatures for %d attempts; each attempt is signed afresh", len(sigs), len(reqs))
	}
	var outcomes []string
	for i, a := range l.Attempts {
		outcomes = append(outcomes, a.Outcome)
		if a.Number != i+1 || a.MessageID != msg.ID || a.URL != rc.URL || a.Manual {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
		if a.Outcome == webhooks.OutcomeRetrying && !a.NextAttemptAt.After(a.At) {
			t.Errorf("attempt %d: NextAttemptAt %v not after At %v", a.Number, a.NextAttemptAt, a.At)
		}
	}
	if want := []string{"retrying", "retrying", "retrying", "delivered"}; !slices.Equal(outcomes, want) {
		t.Errorf("log outcomes %v, want %v", outcomes, want)
	}
}

func testResponses(t *testing.T, b dbtest.Backend) {
	type answer = func(int, http.ResponseWriter, *http.Request)
	redirectTarget := newReceiver(t, status(http.StatusOK))
	twoAttempts := []time.Duration{0, 5 * time.Second}
	tests := []struct {
		name       string
		answer     answer
		closed     bool          // the receiver is gone: connection refused
		timeout    time.Duration // the attempt timeout; 5 s when 0
		wantStatus []int
		wantOut    []string
		wantDelays []time.Duration
		wantErr    string
	}{
		{name: "200_delivered", answer: status(200), wantStatus: []int{200}, wantOut: []string{"delivered"}},
		{name: "204_delivered", answer: status(204), wantStatus: []int{204}, wantOut: []string{"delivered"}},
		{name: "202_delivered", answer: status(202), wantStatus: []int{202}, wantOut: []string{"delivered"}},
		{
			name: "301_is_a_failure_and_not_followed",
			answer: func(_ int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, redirectTarget.URL, http.StatusMovedPermanently)
			},
			wantStatus: []int{301, 301}, wantOut: []string{"retrying", "failed"},
			wantDelays: []time.Duration{5 * time.Second}, wantErr: "redirects are not followed",
		},
		{name: "410_disables", answer: status(410), wantStatus: []int{410}, wantOut: []string{"disabled"}, wantErr: "410 Gone"},
		{name: "500_retried", answer: status(500), wantStatus: []int{500, 500}, wantOut: []string{"retrying", "failed"}, wantDelays: []time.Duration{5 * time.Second}},
		{name: "400_retried_per_standard_webhooks", answer: status(400), wantStatus: []int{400, 400}, wantOut: []string{"retrying", "failed"}, wantDelays: []time.Duration{5 * time.Second}},
		{
			name: "429_retry_after_seconds_honoured",
			answer: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", "3600")
					w.WriteHeader(429)
				}
			},
			wantStatus: []int{429, 200}, wantOut: []string{"retrying", "delivered"}, wantDelays: []time.Duration{time.Hour},
		},
		{
			name: "503_retry_after_http_date_honoured",
			answer: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", testStart.Add(2*time.Hour).Format(http.TimeFormat))
					w.WriteHeader(503)
				}
			},
			wantStatus: []int{503, 200}, wantOut: []string{"retrying", "delivered"}, wantDelays: []time.Duration{2 * time.Hour},
		},
		{
			name: "retry_after_beyond_the_cap_capped",
			answer: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", "999999")
					w.WriteHeader(503)
				}
			},
			wantStatus: []int{503, 200}, wantOut: []string{"retrying", "delivered"}, wantDelays: []time.Duration{24 * time.Hour},
		},
		{
			name: "retry_after_shorter_than_schedule_ignored",
			answer: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(429)
				}
			},
			wantStatus: []int{429, 200}, wantOut: []string{"retrying", "delivered"}, wantDelays: []time.Duration{5 * time.Second},
		},
		{
			name: "timeout_retried",
			answer: func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					<-r.Context().Done()
				}
			},
			timeout:    100 * time.Millisecond,
			wantStatus: []int{0, 200}, wantOut: []string{"retrying", "delivered"}, wantDelays: []time.Duration{5 * time.Second}, wantErr: "no response within 100ms",
		},
		{name: "connection_refused_retried", closed: true, wantStatus: []int{0, 0}, wantOut: []string{"retrying", "failed"}, wantDelays: []time.Duration{5 * time.Second}, wantErr: "refused"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// An outbox per case, on a clock of its own at testStart.
			e := newEnv(t, b.Open(t, dbtest.Logger(t)), func(c *Config) {
				c.Schedule, c.AttemptTimeout, c.MinAttemptTimeout = twoAttempts, cmp.Or(tt.timeout, 5*time.Second), time.Millisecond
			})
			var recv *receiver
			if tt.closed {
				recv = newReceiver(t, status(200))
				recv.Close()
			} else {
				recv = newReceiver(t, tt.answer)
			}
			url, owner := recv.URL, "key_"+strconv.Itoa(i)
			_, job := e.enqueue(owner, url)
			l := e.final(owner, job)
			var statuses []int
			var outcomes []string
			for _, a := range l.Attempts {
				statuses, outcomes = append(statuses, a.StatusCode), append(outcomes, a.Outcome)
			}
			if !slices.Equal(statuses, tt.wantStatus) || !slices.Equal(outcomes, tt.wantOut) {
				t.Fatalf("statuses %v outcomes %v, want %v %v", statuses, outcomes, tt.wantStatus, tt.wantOut)
			}
			if got := delays(l); !slices.Equal(got, tt.wantDelays) {
				t.Errorf("delays %v, want %v", got, tt.wantDelays)
			}
			if first := l.Attempts[0]; !strings.Contains(first.Error, tt.wantErr) {
				t.Errorf("error %q does not mention %q", first.Error, tt.wantErr)
			}
			if l.State != tt.wantOut[len(tt.wantOut)-1] {
				t.Errorf("state %s, want the last outcome", l.State)
			}
			_, disabled, err := e.o.Disabled(context.Background(), owner, url)
			if err != nil || disabled != (tt.name == "410_disables") {
				t.Errorf("disabled %v, %v", disabled, err)
			}
			if tt.name != "410_disables" {
				return
			}
			// Disabled for this owner: the next message is not sent…
			before := len(recv.Requests())
			_, job2 := e.enqueue(owner, url)
			if l := e.final(owner, job2); l.State != "disabled" || len(l.Attempts) != 1 || l.Attempts[0].StatusCode != 0 ||
				!strings.Contains(l.Attempts[0].Error, "not sent") {
				t.Fatalf("a message to a disabled endpoint: %s", describe(l))
			}
			if after := len(recv.Requests()); after != before {
				t.Errorf("%d requests to a disabled endpoint", after-before)
			}
			// …but another owner's is.
			_, job3 := e.enqueue("key_other", url)
			if l := e.final("key_other", job3); l.State != "disabled" || l.Attempts[0].StatusCode != 410 {
				t.Errorf("another owner's message: %s", describe(l))
			}
			if err := e.o.Enable(context.Background(), owner, url); err != nil {
				t.Fatal(err)
			}
			if _, disabled, _ := e.o.Disabled(context.Background(), owner, url); disabled {
				t.Error("still disabled after Enable")
			}
		})
	}
	t.Cleanup(func() { // after the parallel cases
		if n := len(redirectTarget.Requests()); n != 0 {
			t.Errorf("redirect target received %d requests; redirects must not be followed", n)
		}
	})
}

func testSchedule(t *testing.T, b dbtest.Backend) {
	always503 := status(http.StatusServiceUnavailable)
	run := func(t *testing.T, mod func(*Config)) ([]time.Duration, Log) {
		t.Helper()
		rc := newReceiver(t, always503)
		e := newEnv(t, b.Open(t, dbtest.Logger(t)), mod)
		_, job := e.enqueue("key_k", rc.URL)
		l := e.final("key_k", job)
		last := l.Attempts[len(l.Attempts)-1]
		if l.State != "failed" || last.Outcome != "failed" || last.Number != 10 || !last.NextAttemptAt.IsZero() || len(rc.Requests()) != 10 {
			t.Fatalf("log %s; %d requests", describe(l), len(rc.Requests()))
		}
		return delays(l), l
	}
	standard := webhooks.StandardSchedule()[1:]

	t.Run("standard", func(t *testing.T) {
		t.Parallel()
		got, l := run(t, nil)
		if !slices.Equal(got, standard) {
			t.Fatalf("delays %v, want %v", got, standard)
		}
		// Each attempt happened when it was due, on the outbox's clock.
		for i, a := range l.Attempts[1:] {
			if want := l.Attempts[i].NextAttemptAt; !a.At.Equal(want) {
				t.Errorf("attempt %d at %v, due at %v", a.Number, a.At, want)
			}
		}
	})
	// The delays the schedule is built from: scaled, jittered within
	// ±10%, the same for the same seed. Each case above recorded what
	// nextDelay answered; checked here without a delivery per delay.
	policy := func(t *testing.T, mod func(*Config)) []time.Duration {
		t.Helper()
		cfg := Config{DB: b.Open(t, dbtest.Logger(t)), Client: loopbackClient(), JitterFraction: -1,
			Secrets: func(context.Context, string) ([]string, error) { return nil, nil }}
		mod(&cfg)
		o, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var out []time.Duration
		for n := 1; n < len(o.cfg.Schedule); n++ {
			out = append(out, o.nextDelay(n, 0))
		}
		return out
	}
	t.Run("compressed_by_time_scale", func(t *testing.T) {
		t.Parallel()
		got := policy(t, func(c *Config) { c.TimeScale = 0.001 })
		for i, d := range got {
			if want := standard[i] / 1000; d != want {
				t.Errorf("delay %d: %v, want %v", i+1, d, want)
			}
		}
	})
	t.Run("jitter_within_10_percent", func(t *testing.T) {
		t.Parallel()
		seeded := func(c *Config) { c.JitterFraction, c.Rand = 0.1, rand.New(rand.NewPCG(1, 2)) }
		got := policy(t, seeded)
		moved := 0
		for i, d := range got {
			lo, hi := standard[i]*9/10, standard[i]*11/10
			if d < lo || d > hi {
				t.Errorf("delay %d: %v outside [%v, %v]", i+1, d, lo, hi)
			}
			if d != standard[i] {
				moved++
			}
		}
		if moved < len(got)/2 {
			t.Errorf("only %d of %d delays jittered", moved, len(got))
		}
		if again := policy(t, seeded); !slices.Equal(got, again) {
			t.Error("the same seed gave different delays")
		}
		// And end to end: what a delivery recorded is jittered too.
		recorded, _ := run(t, seeded)
		if !slices.Equal(recorded, got) {
			t.Errorf("recorded delays %v, want the seeded policy's %v", recorded, got)
		}
	})
}

func testBlocked(t *testing.T, b dbtest.Backend) {
	rc := newReceiver(t, status(200))
	e := newEnv(t, b.Open(t, dbtest.Logger(t)), func(c *Config) { c.Client = safedial.Policy{}.Client() })
	_, job := e.enqueue("key_b", rc.URL)
	l := e.final("key_b", job)
	if l.State != "failed" || len(l.Attempts) != 1 || l.Attempts[0].Number != 1 || !strings.Contains(l.Attempts[0].Error, "blocked address") {
		t.Errorf("log %s, want one failed attempt mentioning the blocked address", describe(l))
	}
	if n := len(rc.Requests()); n != 0 {
		t.Fatalf("receiver got %d requests; loopback must be refused without the allow option", n)
	}
}
