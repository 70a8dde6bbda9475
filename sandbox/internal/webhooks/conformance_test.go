package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
)

// TestConformance has one subtest per row R24–R31 of ASYNC-CONFORMANCE.md
// that this package implements.
func TestConformance(t *testing.T) {
	t.Run("R24_headers_present", testHeadersPresent)
	t.Run("R25_known_answer_vector", testKnownAnswer)
	t.Run("R26_same_id_new_timestamp", testSameIDNewTimestamp)
	t.Run("R27_only_2xx_success_no_redirects_410_disables_retry_after_honoured", testResponses)
	t.Run("R28_schedule", testSchedule)
	t.Run("R29_payload_shape_and_size", testPayload)
	t.Run("R30_verify_tolerance_and_constant_time_check", testVerify)
	t.Run("R31_blocked_addresses", testBlocked)
}

func testHeadersPresent(t *testing.T) {
	rc := newReceiver(t, status(http.StatusNoContent))
	d, wl, clk := newDispatcher(t, Config{})
	current, previous := mustSecret(t), mustSecret(t)
	msg := testMessage()
	if err := d.Enqueue(t.Context(), Endpoint{URL: rc.URL, Secrets: []string{current, previous}}, msg); err != nil {
		t.Fatal(err)
	}
	if a := mustWait(t, wl.final); a.Outcome != OutcomeDelivered {
		t.Fatalf("outcome %s (%s)", a.Outcome, a.Error)
	}
	req := rc.Requests()[0]
	if got := req.Header.Get("webhook-id"); got != msg.ID {
		t.Errorf("webhook-id %q, want %q", got, msg.ID)
	}
	if got := req.Header.Get("webhook-timestamp"); got != strconv.FormatInt(clk.Now().Unix(), 10) {
		t.Errorf("webhook-timestamp %q, want unix seconds %d", got, clk.Now().Unix())
	}
	sig := req.Header.Get("webhook-signature")
	if !regexp.MustCompile(`^v1,[A-Za-z0-9+/]{43}=( v1,[A-Za-z0-9+/]{43}=)*$`).MatchString(sig) {
		t.Errorf("webhook-signature %q is not a space-separated list of v1,<base64>", sig)
	}
	if n := len(strings.Fields(sig)); n != 2 {
		t.Errorf("%d signatures during rotation, want 2 (current and previous secret)", n)
	}
	for i, sec := range []string{current, previous} {
		r, err := Verify(sec, req.Header, req.Body, clk.Now(), 0)
		if err != nil || r.MatchedIndex != i {
			t.Errorf("secret %d: matched %d, %v", i, r.MatchedIndex, err)
		}
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

func testKnownAnswer(t *testing.T) {
	s, err := NewSigner(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Sign(vectorID, time.Unix(vectorTS, 0), []byte(vectorBody))
	if err != nil || got != vectorSig {
		t.Fatalf("Sign = %q, %v; want %q", got, err, vectorSig)
	}
	h := http.Header{}
	h.Set("webhook-id", vectorID)
	h.Set("webhook-timestamp", strconv.Itoa(vectorTS))
	h.Set("webhook-signature", "v1,bm90IHRoaXMgb25l "+vectorSig)
	r, err := Verify(vectorSecret, h, []byte(vectorBody), time.Unix(vectorTS+10, 0), 0)
	if err != nil || !r.Valid || r.MatchedIndex != 1 || r.Expected != vectorSig {
		t.Fatalf("Verify = %+v, %v", r, err)
	}

	// The body sent is byte-identical to the signed one: check a real
	// delivery with the library itself.
	rc := newReceiver(t, status(http.StatusOK))
	d, wl, _ := newDispatcher(t, Config{})
	msg := testMessage()
	want, _ := msg.Payload()
	if err := d.Enqueue(t.Context(), Endpoint{URL: rc.URL, Secrets: []string{vectorSecret}}, msg); err != nil {
		t.Fatal(err)
	}
	mustWait(t, wl.final)
	req := rc.Requests()[0]
	if !bytes.Equal(req.Body, want) {
		t.Fatalf("sent %s, want %s", req.Body, want)
	}
	wh, _ := standardwebhooks.NewWebhook(vectorSecret)
	if err := wh.VerifyIgnoringTimestamp(req.Body, req.Header); err != nil {
		t.Fatalf("library verification of a real delivery: %v", err)
	}
}

func testSameIDNewTimestamp(t *testing.T) {
	const failures = 3
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= failures {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	d, wl, _ := newDispatcher(t, Config{})
	msg := testMessage()
	if err := d.Enqueue(t.Context(), Endpoint{URL: rc.URL, Secrets: []string{mustSecret(t)}, Key: "key_1"}, msg); err != nil {
		t.Fatal(err)
	}
	if a := mustWait(t, wl.final); a.Outcome != OutcomeDelivered || a.Number != failures+1 {
		t.Fatalf("final attempt %+v", a)
	}
	reqs := rc.Requests()
	if len(reqs) != failures+1 {
		t.Fatalf("%d requests, want %d", len(reqs), failures+1)
	}
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
		if !bytes.Equal(r.Body, reqs[0].Body) {
			t.Errorf("attempt %d: body changed", i+1)
		}
	}
	if len(sigs) != len(reqs) {
		t.Errorf("%d distinct signatures for %d attempts; each attempt is signed afresh", len(sigs), len(reqs))
	}
	log := wl.List("key_1")
	var outcomes []string
	for _, a := range log {
		outcomes = append(outcomes, a.Outcome)
		if a.Outcome == OutcomeRetrying && !a.NextAttemptAt.After(a.At) {
			t.Errorf("attempt %d: NextAttemptAt %v not after At %v", a.Number, a.NextAttemptAt, a.At)
		}
	}
	want := []string{OutcomeRetrying, OutcomeRetrying, OutcomeRetrying, OutcomeDelivered}
	if !slices.Equal(outcomes, want) {
		t.Errorf("log outcomes %v, want %v", outcomes, want)
	}
}

func testResponses(t *testing.T) {
	type answer = func(int, http.ResponseWriter, *http.Request)
	redirectTarget := newReceiver(t, status(http.StatusOK))
	twoAttempts := []time.Duration{0, 5 * time.Second}
	tests := []struct {
		name       string
		answer     answer
		closed     bool // the receiver is gone: connection refused
		wantStatus []int
		wantOut    []string
		wantDelays []time.Duration
		wantErr    string
	}{
		{name: "200_delivered", answer: status(200), wantStatus: []int{200}, wantOut: []string{OutcomeDelivered}},
		{name: "204_delivered", answer: status(204), wantStatus: []int{204}, wantOut: []string{OutcomeDelivered}},
		{name: "202_delivered", answer: status(202), wantStatus: []int{202}, wantOut: []string{OutcomeDelivered}},
		{
			name: "301_is_a_failure_and_not_followed",
			answer: func(_ int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, redirectTarget.URL, http.StatusMovedPermanently)
			},
			wantStatus: []int{301, 301}, wantOut: []string{OutcomeRetrying, OutcomeFailed},
			wantDelays: []time.Duration{5 * time.Second}, wantErr: "redirects are not followed",
		},
		{name: "410_disables", answer: status(410), wantStatus: []int{410}, wantOut: []string{OutcomeDisabled}, wantErr: "410 Gone"},
		{name: "500_retried", answer: status(500), wantStatus: []int{500, 500}, wantOut: []string{OutcomeRetrying, OutcomeFailed}, wantDelays: []time.Duration{5 * time.Second}},
		{name: "400_retried_per_standard_webhooks", answer: status(400), wantStatus: []int{400, 400}, wantOut: []string{OutcomeRetrying, OutcomeFailed}, wantDelays: []time.Duration{5 * time.Second}},
		{
			name: "429_retry_after_seconds_honoured",
			answer: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", "3600")
					w.WriteHeader(429)
				}
			},
			wantStatus: []int{429, 200}, wantOut: []string{OutcomeRetrying, OutcomeDelivered}, wantDelays: []time.Duration{time.Hour},
		},
		{
			name: "503_retry_after_http_date_honoured",
			answer: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", testStart.Add(2*time.Hour).Format(http.TimeFormat))
					w.WriteHeader(503)
				}
			},
			wantStatus: []int{503, 200}, wantOut: []string{OutcomeRetrying, OutcomeDelivered}, wantDelays: []time.Duration{2 * time.Hour},
		},
		{
			name: "retry_after_shorter_than_schedule_ignored",
			answer: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(429)
				}
			},
			wantStatus: []int{429, 200}, wantOut: []string{OutcomeRetrying, OutcomeDelivered}, wantDelays: []time.Duration{5 * time.Second},
		},
		{
			name: "timeout_retried",
			answer: func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					<-r.Context().Done()
				}
			},
			wantStatus: []int{0, 200}, wantOut: []string{OutcomeRetrying, OutcomeDelivered}, wantDelays: []time.Duration{5 * time.Second}, wantErr: "no response within",
		},
		{name: "connection_refused_retried", closed: true, wantStatus: []int{0, 0}, wantOut: []string{OutcomeRetrying, OutcomeFailed}, wantDelays: []time.Duration{5 * time.Second}, wantErr: "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var url string
			if tt.closed {
				rc := newReceiver(t, status(200))
				url = rc.URL
				rc.Close()
			} else {
				url = newReceiver(t, tt.answer).URL
			}
			d, wl, clk := newDispatcher(t, Config{Schedule: twoAttempts, AttemptTimeout: 100 * time.Millisecond, MinAttemptTimeout: time.Millisecond})
			ep := Endpoint{URL: url, Secrets: []string{mustSecret(t)}, Key: "ep"}
			if err := d.Enqueue(t.Context(), ep, testMessage()); err != nil {
				t.Fatal(err)
			}
			mustWait(t, wl.final)
			var statuses []int
			var outcomes []string
			for _, a := range wl.List("ep") {
				statuses, outcomes = append(statuses, a.StatusCode), append(outcomes, a.Outcome)
			}
			if !slices.Equal(statuses, tt.wantStatus) || !slices.Equal(outcomes, tt.wantOut) {
				t.Fatalf("statuses %v outcomes %v, want %v %v", statuses, outcomes, tt.wantStatus, tt.wantOut)
			}
			if got := clk.Delays(); !slices.Equal(got, tt.wantDelays) {
				t.Errorf("delays %v, want %v", got, tt.wantDelays)
			}
			if first := wl.List("ep")[0]; !strings.Contains(first.Error, tt.wantErr) {
				t.Errorf("error %q does not mention %q", first.Error, tt.wantErr)
			}
			if tt.name == "410_disables" {
				if _, ok := d.Disabled("ep"); !ok {
					t.Fatal("endpoint not disabled")
				}
				if err := d.Enqueue(t.Context(), ep, testMessage()); !errors.Is(err, ErrEndpointDisabled) {
					t.Fatalf("Enqueue after 410: %v, want ErrEndpointDisabled", err)
				}
				d.Enable("ep")
				if err := d.Enqueue(t.Context(), ep, testMessage()); err != nil {
					t.Fatalf("Enqueue after Enable: %v", err)
				}
				mustWait(t, wl.final)
			}
		})
	}
	if n := len(redirectTarget.Requests()); n != 0 {
		t.Errorf("redirect target received %d requests; redirects must not be followed", n)
	}
}

func testSchedule(t *testing.T) {
	always503 := status(http.StatusServiceUnavailable)
	run := func(t *testing.T, cfg Config) ([]time.Duration, []Attempt) {
		t.Helper()
		rc := newReceiver(t, always503)
		d, wl, clk := newDispatcher(t, cfg)
		if err := d.Enqueue(t.Context(), Endpoint{URL: rc.URL, Secrets: []string{mustSecret(t)}, Key: "k"}, testMessage()); err != nil {
			t.Fatal(err)
		}
		if a := mustWait(t, wl.final); a.Outcome != OutcomeFailed || a.Number != 10 || !a.NextAttemptAt.IsZero() {
			t.Fatalf("final attempt %+v", a)
		}
		return clk.Delays(), wl.List("k")
	}
	standard := StandardSchedule()[1:]

	t.Run("standard", func(t *testing.T) {
		delays, log := run(t, Config{})
		if !slices.Equal(delays, standard) {
			t.Fatalf("delays %v, want %v", delays, standard)
		}
		for i, a := range log[:len(log)-1] {
			if a.Number != i+1 || a.NextAttemptAt.Sub(a.At) != delays[i] {
				t.Errorf("attempt %d: number %d, next-at in %v, want %v", i+1, a.Number, a.NextAttemptAt.Sub(a.At), delays[i])
			}
		}
	})
	t.Run("compressed_by_time_scale", func(t *testing.T) {
		delays, _ := run(t, Config{TimeScale: 0.001})
		for i, d := range delays {
			if want := standard[i] / 1000; d != want {
				t.Errorf("delay %d: %v, want %v", i+1, d, want)
			}
		}
	})
	t.Run("jitter_within_10_percent", func(t *testing.T) {
		delays, _ := run(t, Config{JitterFraction: 0.1, Rand: rand.New(rand.NewPCG(1, 2))})
		moved := 0
		for i, d := range delays {
			lo, hi := standard[i]*9/10, standard[i]*11/10
			if d < lo || d > hi {
				t.Errorf("delay %d: %v outside [%v, %v]", i+1, d, lo, hi)
			}
			if d != standard[i] {
				moved++
			}
		}
		if moved < len(delays)/2 {
			t.Errorf("only %d of %d delays jittered", moved, len(delays))
		}
		again, _ := run(t, Config{JitterFraction: 0.1, Rand: rand.New(rand.NewPCG(1, 2))})
		if !slices.Equal(delays, again) {
			t.Error("the same seed gave different delays")
		}
	})
}

func testPayload(t *testing.T) {
	msg := NewMessage("import.partial", testStart, map[string]any{"import_id": "imp_1", "rejected": []int{3}})
	if !strings.HasPrefix(msg.ID, "msg_") || len(msg.ID) < 20 {
		t.Errorf("id %q", msg.ID)
	}
	b, err := msg.Payload()
	if err != nil {
		t.Fatal(err)
	}
	var shape map[string]json.RawMessage
	if err := json.Unmarshal(b, &shape); err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range shape {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []string{"data", "timestamp", "type"}) {
		t.Errorf("keys %v", keys)
	}
	var p struct {
		Type      string
		Timestamp string
	}
	_ = json.Unmarshal(b, &p)
	if ts, err := time.Parse(time.RFC3339, p.Timestamp); err != nil || !ts.Equal(testStart) || p.Type != "import.partial" {
		t.Errorf("type %q timestamp %q (%v)", p.Type, p.Timestamp, err)
	}
	if !bytes.HasPrefix(b, []byte(`{"type":"import.partial","timestamp":"2026-03-01T12:00:00Z","data":{`)) {
		t.Errorf("payload %s", b)
	}

	for _, typ := range []string{"", "import", "Import.Complete", "import..complete", "import.complete.", ".import", "import complete", "import.2x"} {
		if _, err := NewMessage(typ, testStart, nil).Payload(); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("type %q: %v, want ErrInvalidMessage", typ, err)
		}
	}
	for _, typ := range []string{"import.complete", "import.failed", "export.ready", "job.step_done.v2"} {
		if _, err := NewMessage(typ, testStart, nil).Payload(); err != nil {
			t.Errorf("type %q: %v", typ, err)
		}
	}

	overhead := len(`{"type":"import.complete","timestamp":"2026-03-01T12:00:00Z","data":""}`)
	fits := NewMessage("import.complete", testStart, strings.Repeat("x", PayloadLimit-1-overhead))
	if b, err := fits.Payload(); err != nil || len(b) != PayloadLimit-1 {
		t.Errorf("%d-byte payload: %v", len(b), err)
	}
	tooBig := NewMessage("import.complete", testStart, strings.Repeat("x", PayloadLimit-overhead))
	if _, err := tooBig.Payload(); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("%d-byte payload: %v, want ErrPayloadTooLarge", PayloadLimit, err)
	}
	d, _, _ := newDispatcher(t, Config{})
	if err := d.Enqueue(t.Context(), Endpoint{URL: "http://127.0.0.1:1/", Secrets: []string{mustSecret(t)}}, tooBig); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("Enqueue too large: %v", err)
	}
}

func testVerify(t *testing.T) {
	secret := mustSecret(t)
	s, _ := NewSigner(secret)
	body := []byte(`{"type":"import.complete","timestamp":"2026-03-01T12:00:00Z","data":{}}`)
	headers := func(at time.Time, b []byte) http.Header {
		sig, _ := s.Sign("msg_1", at, b)
		h := http.Header{}
		h.Set("webhook-id", "msg_1")
		h.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
		h.Set("webhook-signature", sig)
		return h
	}
	tests := []struct {
		name    string
		h       http.Header
		body    []byte
		secret  string
		wantErr error
	}{
		{"valid", headers(testStart, body), body, secret, nil},
		{"4_min_old_accepted", headers(testStart.Add(-4*time.Minute), body), body, secret, nil},
		{"6_min_old_rejected", headers(testStart.Add(-6*time.Minute), body), body, secret, ErrMessageTooOld},
		{"6_min_ahead_rejected", headers(testStart.Add(6*time.Minute), body), body, secret, ErrMessageTooNew},
		{"body_changed", headers(testStart, body), append(slices.Clone(body), ' '), secret, ErrNoMatchingSignature},
		{"wrong_secret", headers(testStart, body), body, mustSecret(t), ErrNoMatchingSignature},
		{"missing_headers", http.Header{}, body, secret, ErrMissingHeaders},
		{"bad_timestamp", func() http.Header { h := headers(testStart, body); h.Set("webhook-timestamp", "2026-03-01"); return h }(), body, secret, ErrInvalidTimestamp},
		{"bad_secret", headers(testStart, body), body, "hunter2", ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Verify(tt.secret, tt.h, tt.body, testStart, 5*time.Minute)
			if tt.wantErr == nil && (err != nil || !r.Valid) || tt.wantErr != nil && (!errors.Is(err, tt.wantErr) || r.Valid) {
				t.Fatalf("Verify: valid %v, %v; want %v", r.Valid, err, tt.wantErr)
			}
			if len(r.Steps) == 0 {
				t.Fatal("empty report")
			}
			for _, st := range r.Steps {
				if st.Detail == "" {
					t.Errorf("step %s has no detail", st.Name)
				}
			}
		})
	}
	// The report of a changed body still shows expected and received.
	r, _ := Verify(secret, headers(testStart, body), []byte("{}"), testStart, 0)
	if r.Expected == "" || len(r.Received) != 1 || r.Received[0].Matched || r.MatchedIndex != -1 {
		t.Errorf("report %+v", r)
	}
}

func testBlocked(t *testing.T) {
	for _, s := range []string{"10.0.0.1", "127.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1"} {
		err := safedial.Policy{}.Check(netip.AddrPortFrom(netip.MustParseAddr(s), 443))
		if !errors.Is(err, safedial.ErrBlockedAddress) {
			t.Errorf("%s: %v, want ErrBlockedAddress", s, err)
		}
	}

	// Checked when the endpoint is registered (a literal address)…
	d, _, _ := newDispatcher(t, Config{CheckURL: safedial.Policy{}.ValidateURL})
	for _, u := range []string{"http://10.0.0.1/hook", "http://127.0.0.1:8080/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[::ffff:127.0.0.1]/"} {
		err := d.Enqueue(t.Context(), Endpoint{URL: u, Secrets: []string{mustSecret(t)}}, testMessage())
		if !errors.Is(err, safedial.ErrBlockedAddress) || !errors.Is(err, ErrBadEndpoint) {
			t.Errorf("Enqueue %s: %v, want ErrBadEndpoint wrapping ErrBlockedAddress", u, err)
		}
	}

	// …and, whatever passed that check, when connecting: the receiver is
	// on 127.0.0.1, reached by address and by a name that resolves to it.
	rc := newReceiver(t, status(200))
	port := rc.Listener.Addr().(*net.TCPAddr).Port
	strict, wl, _ := newDispatcher(t, Config{Client: safedial.Policy{}.Client()})
	for _, u := range []string{rc.URL, "http://localhost:" + strconv.Itoa(port) + "/"} {
		if err := strict.Enqueue(t.Context(), Endpoint{URL: u, Secrets: []string{mustSecret(t)}, Key: u}, testMessage()); err != nil {
			t.Fatal(err)
		}
		a := mustWait(t, wl.final)
		if a.Outcome != OutcomeFailed || a.Number != 1 || !strings.Contains(a.Error, "blocked address") {
			t.Errorf("%s: attempt %+v, want one failed attempt mentioning the blocked address", u, a)
		}
	}
	if n := len(rc.Requests()); n != 0 {
		t.Fatalf("receiver got %d requests; loopback must be refused without the allow option", n)
	}

	// The operator's allow option (and the built-in inbox) let it through.
	allowed, wl2, _ := newDispatcher(t, Config{Client: loopbackClient()})
	if err := allowed.Enqueue(t.Context(), Endpoint{URL: rc.URL, Secrets: []string{mustSecret(t)}}, testMessage()); err != nil {
		t.Fatal(err)
	}
	if a := mustWait(t, wl2.final); a.Outcome != OutcomeDelivered {
		t.Fatalf("allowed: %+v", a)
	}
}
