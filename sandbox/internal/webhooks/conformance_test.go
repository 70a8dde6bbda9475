package webhooks

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
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

// TestConformance has one subtest per row of ASYNC-CONFORMANCE.md that
// this package implements on its own: the message, its signature and one
// attempt. Retries (R26, R28) and what an answer does to the next attempt
// (R27's 410 and Retry-After) belong to the outbox, which tests them.
func TestConformance(t *testing.T) {
	t.Run("R24_headers_present", testHeadersPresent)
	t.Run("R25_known_answer_vector", testKnownAnswer)
	t.Run("R27_one_attempt_only_2xx_success_no_redirects_retry_after_read", testResponses)
	t.Run("R29_payload_shape_and_size", testPayload)
	t.Run("R30_verify_tolerance_and_constant_time_check", testVerify)
	t.Run("R31_blocked_addresses", testBlocked)
}

func testHeadersPresent(t *testing.T) {
	rc := newReceiver(t, status(http.StatusNoContent))
	current, previous := mustSecret(t), mustSecret(t)
	msg := testMessage()
	res := NewSender(loopbackClient(), "").Send(t.Context(), request(t, rc.URL, msg, mustSigner(t, current, previous)))
	if !res.Delivered() || res.Status != http.StatusNoContent || res.Err != "" {
		t.Fatalf("result %+v", res)
	}
	req := rc.Requests()[0]
	if got := req.Header.Get("webhook-id"); got != msg.ID {
		t.Errorf("webhook-id %q, want %q", got, msg.ID)
	}
	if got := req.Header.Get("webhook-timestamp"); got != strconv.FormatInt(testStart.Unix(), 10) {
		t.Errorf("webhook-timestamp %q, want unix seconds %d", got, testStart.Unix())
	}
	sig := req.Header.Get("webhook-signature")
	if !regexp.MustCompile(`^v1,[A-Za-z0-9+/]{43}=( v1,[A-Za-z0-9+/]{43}=)*$`).MatchString(sig) {
		t.Errorf("webhook-signature %q is not a space-separated list of v1,<base64>", sig)
	}
	if n := len(strings.Fields(sig)); n != 2 {
		t.Errorf("%d signatures during rotation, want 2 (current and previous secret)", n)
	}
	for i, sec := range []string{current, previous} {
		r, err := Verify(sec, req.Header, req.Body, testStart, 0)
		if err != nil || r.MatchedIndex != i {
			t.Errorf("secret %d: matched %d, %v", i, r.MatchedIndex, err)
		}
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if ua := req.Header.Get("User-Agent"); ua != "Accepted-Webhooks/1" {
		t.Errorf("User-Agent %q", ua)
	}
}

func testKnownAnswer(t *testing.T) {
	s := mustSigner(t, vectorSecret)
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
	msg := testMessage()
	want, _ := msg.Payload()
	if res := NewSender(loopbackClient(), "").Send(t.Context(), request(t, rc.URL, msg, s)); !res.Delivered() {
		t.Fatalf("result %+v", res)
	}
	req := rc.Requests()[0]
	if !bytes.Equal(req.Body, want) {
		t.Fatalf("sent %s, want %s", req.Body, want)
	}
	wh, _ := standardwebhooks.NewWebhook(vectorSecret)
	if err := wh.VerifyIgnoringTimestamp(req.Body, req.Header); err != nil {
		t.Fatalf("library verification of a real delivery: %v", err)
	}
}

func testResponses(t *testing.T) {
	type answer = func(int, http.ResponseWriter, *http.Request)
	redirectTarget := newReceiver(t, status(http.StatusOK))
	tests := []struct {
		name       string
		answer     answer
		closed     bool          // the receiver is gone: connection refused
		timeout    time.Duration // the attempt timeout; 5 s when 0
		wantStatus int
		delivered  bool
		retryAfter time.Duration
		wantErr    string
	}{
		{name: "200_delivered", answer: status(200), wantStatus: 200, delivered: true},
		{name: "204_delivered", answer: status(204), wantStatus: 204, delivered: true},
		{name: "202_delivered", answer: status(202), wantStatus: 202, delivered: true},
		{
			name: "301_is_a_failure_and_not_followed",
			answer: func(_ int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, redirectTarget.URL, http.StatusMovedPermanently)
			},
			wantStatus: 301, wantErr: "redirects are not followed",
		},
		{name: "410_is_a_failure", answer: status(410), wantStatus: 410, wantErr: "410 Gone"},
		{name: "500_is_a_failure", answer: status(500), wantStatus: 500, wantErr: "500"},
		{name: "400_is_a_failure", answer: status(400), wantStatus: 400, wantErr: "400"},
		{
			name: "429_retry_after_seconds_read",
			answer: func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(429)
			},
			wantStatus: 429, retryAfter: time.Hour, wantErr: "429",
		},
		{
			name: "503_retry_after_http_date_read",
			answer: func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", testStart.Add(2*time.Hour).Format(http.TimeFormat))
				w.WriteHeader(503)
			},
			wantStatus: 503, retryAfter: 2 * time.Hour, wantErr: "503",
		},
		{
			name: "retry_after_ignored_on_success",
			answer: func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "60")
				w.WriteHeader(200)
			},
			wantStatus: 200, delivered: true,
		},
		{
			name: "timeout",
			answer: func(_ int, w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			},
			timeout: 100 * time.Millisecond, wantErr: "no response within 100ms",
		},
		{name: "connection_refused", closed: true, wantErr: "refused"},
	}
	sender := NewSender(loopbackClient(), "")
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
			req := request(t, url, testMessage(), mustSigner(t, mustSecret(t)))
			req.Timeout = cmp.Or(tt.timeout, 5*time.Second)
			res := sender.Send(t.Context(), req)
			if res.Status != tt.wantStatus || res.Delivered() != tt.delivered || res.RetryAfter != tt.retryAfter || res.Blocked || res.Canceled {
				t.Fatalf("result %+v, want status %d delivered %v Retry-After %v", res, tt.wantStatus, tt.delivered, tt.retryAfter)
			}
			if !strings.Contains(res.Err, tt.wantErr) || tt.wantErr == "" && res.Err != "" {
				t.Errorf("error %q does not mention %q", res.Err, tt.wantErr)
			}
		})
	}
	if n := len(redirectTarget.Requests()); n != 0 {
		t.Errorf("redirect target received %d requests; redirects must not be followed", n)
	}

	// A sender that is stopping makes no attempt it would have to record.
	hang := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if res := sender.Send(ctx, request(t, hang.URL, testMessage(), mustSigner(t, mustSecret(t)))); !res.Canceled {
		t.Errorf("cut short by its context: %+v, want Canceled", res)
	}
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

	// Whatever passed the parse-time check is checked again when
	// connecting: the receiver is on 127.0.0.1, reached by address and by
	// a name that resolves to it.
	rc := newReceiver(t, status(200))
	port := rc.Listener.Addr().(*net.TCPAddr).Port
	strict := NewSender(safedial.Policy{}.Client(), "")
	for _, u := range []string{rc.URL, "http://localhost:" + strconv.Itoa(port) + "/"} {
		res := strict.Send(t.Context(), request(t, u, testMessage(), mustSigner(t, mustSecret(t))))
		if !res.Blocked || res.Status != 0 || !strings.Contains(res.Err, "blocked address") {
			t.Errorf("%s: %+v, want a refusal mentioning the blocked address", u, res)
		}
	}
	if n := len(rc.Requests()); n != 0 {
		t.Fatalf("receiver got %d requests; loopback must be refused without the allow option", n)
	}

	// The operator's allow option (and the built-in inbox) let it through.
	if res := NewSender(loopbackClient(), "").Send(t.Context(), request(t, rc.URL, testMessage(), mustSigner(t, mustSecret(t)))); !res.Delivered() {
		t.Fatalf("allowed: %+v", res)
	}
}
