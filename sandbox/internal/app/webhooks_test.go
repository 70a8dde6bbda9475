package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/api"
	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/ratelimit"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// testInbox is a built-in inbox as POST /v1/sandbox/inboxes answers it.
type testInbox struct{ ID, URL, Secret string }

func (ts *testSandbox) mustInbox(t testing.TB, key string) testInbox {
	t.Helper()
	r := ts.do(t, http.MethodPost, "/v1/sandbox/inboxes", key, nil)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/sandbox/inboxes: %d %s", r.StatusCode, r.body)
	}
	b := r.json(t)
	return testInbox{ID: b["id"].(string), URL: b["url"].(string), Secret: b["secret"].(string)}
}

// rows builds import rows, one per SKU, quantity 5 unless the SKU is
// followed by "=<quantity>".
func rows(skus ...string) []map[string]any {
	out := make([]map[string]any, len(skus))
	for i, s := range skus {
		q := 5
		if sku, qs, ok := strings.Cut(s, "="); ok {
			s = sku
			q, _ = strconv.Atoi(qs)
		}
		out[i] = map[string]any{"sku": s, "name": "Product " + s, "quantity": q, "price_cents": 1290}
	}
	return out
}

func importBody(callback string, r []map[string]any) map[string]any {
	b := map[string]any{"rows": r}
	if callback != "" {
		b["callback_url"] = callback
	}
	return b
}

// getPatiently GETs path, waiting out rate limits for up to 10 s.
func (ts *testSandbox) getPatiently(t testing.TB, path, key string) response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := ts.do(t, http.MethodGet, path, key, nil)
		if r.StatusCode != http.StatusTooManyRequests {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: still 429 after 10 s", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// withoutLimits lifts the rate limits, for tests that poll a lot.
func withoutLimits(_ *Config, d *Deps) { d.Policies = noRateLimits() }

// noRateLimits are policies no test or benchmark reaches, for those that
// are not about rate limits.
func noRateLimits() []ratelimit.Policy {
	return []ratelimit.Policy{{Name: api.PolicyPoll, Rate: 1e9, Burst: 1e9}, {Name: api.PolicyStart, Rate: 1e9, Burst: 1e9}, {Name: api.PolicyKeys, Rate: 1e9, Burst: 1e9}}
}

// inboxDelivery is one delivery as the inbox lists it.
type inboxDelivery struct {
	ID           string              `json:"id"`
	ReceivedAt   time.Time           `json:"received_at"`
	Headers      map[string][]string `json:"headers"`
	Body         string              `json:"body"`
	Answered     int                 `json:"answered"`
	Verification struct {
		Valid  bool   `json:"valid"`
		Secret string `json:"secret"`
		Error  string `json:"error"`
	} `json:"verification"`
}

func (d inboxDelivery) header(name string) string { return http.Header(d.Headers).Get(name) }

func (ts *testSandbox) inboxDeliveries(t testing.TB, key, id string) []inboxDelivery {
	t.Helper()
	r := ts.getPatiently(t, "/v1/sandbox/inboxes/"+id+"/deliveries", key)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("inbox deliveries: %d %s", r.StatusCode, r.body)
	}
	var out struct{ Deliveries []inboxDelivery }
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Deliveries
}

// mustInboxDeliveries waits until the inbox holds at least n deliveries,
// calling tick (if not nil) between looks, and returns them newest first.
func (ts *testSandbox) mustInboxDeliveries(t testing.TB, key, id string, n int, tick func()) []inboxDelivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds := ts.inboxDeliveries(t, key, id)
		if len(ds) >= n {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("inbox %s has %d deliveries after 10 s, want %d", id, len(ds), n)
		}
		if tick != nil {
			tick()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deliveryLog is GET /v1/imports/{id}/deliveries.
type deliveryLog struct {
	State     string `json:"state"`
	MessageID string `json:"message_id"`
	EventType string `json:"event_type"`
	Disabled  bool   `json:"endpoint_disabled"`
	Attempts  []struct {
		Number        int        `json:"number"`
		At            time.Time  `json:"at"`
		StatusCode    int        `json:"status_code"`
		Error         string     `json:"error"`
		NextAttemptAt *time.Time `json:"next_attempt_at"`
		Outcome       string     `json:"outcome"`
		Manual        bool       `json:"manual"`
	} `json:"attempts"`
}

func (ts *testSandbox) deliveryLog(t testing.TB, key, importID string) deliveryLog {
	t.Helper()
	r := ts.getPatiently(t, "/v1/imports/"+importID+"/deliveries", key)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("delivery log: %d %s", r.StatusCode, r.body)
	}
	var l deliveryLog
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// mustDeliveryLog waits until the import's delivery log satisfies cond.
func (ts *testSandbox) mustDeliveryLog(t testing.TB, key, importID string, cond func(deliveryLog) bool, tick func()) deliveryLog {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := ts.deliveryLog(t, key, importID)
		if cond(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery log of %s never got there: %+v", importID, l)
		}
		if tick != nil {
			tick()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sign is an independent Standard Webhooks signer, to check the sandbox's.
func sign(secret, id, timestamp string, body []byte) string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.", id, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func finalState(l deliveryLog) bool {
	return l.State == "delivered" || l.State == "failed" || l.State == "disabled"
}

// TestImports covers the import flow over a real listener: the 202 and
// what it adds, the monitor's 303 to the result, every outcome with its
// per-row reasons, and schema problems refused before any job exists.
func TestImports(t *testing.T) {
	ts := newSandbox(t, nil, withoutLimits)
	key := ts.key(t)

	t.Run("complete", func(t *testing.T) {
		r := ts.mustStart(t, key, "/v1/imports", importBody("", rows("A-1", "A-2", "A-3")))
		b := r.json(t)
		id, job := b["import_id"].(string), b["id"].(string)
		if b["kind"] != "import" || id != "imp_"+strings.TrimPrefix(job, "job_") {
			t.Errorf("kind %v import_id %q job %q", b["kind"], id, job)
		}
		if _, ok := b["estimated_duration"].(float64); !ok {
			t.Errorf("no estimated_duration: %s", r.body)
		}
		if ev, ok := b["webhook_events"].([]any); !ok || len(ev) != 0 {
			t.Errorf("webhook_events without a callback = %v, want []", b["webhook_events"])
		}
		if g := ts.do(t, http.MethodGet, "/v1/imports/"+id, key, nil); g.StatusCode != http.StatusConflict && g.StatusCode != http.StatusOK {
			t.Errorf("GET import early: %d", g.StatusCode)
		}
		polls := ts.mustFollow(t, key, r.Header.Get("Location"))
		last := polls[len(polls)-1]
		if last.StatusCode != http.StatusSeeOther || last.Header.Get("Location") != "/v1/imports/"+id {
			t.Fatalf("monitor ended %d Location %q", last.StatusCode, last.Header.Get("Location"))
		}
		res := ts.do(t, http.MethodGet, "/v1/imports/"+id, key, nil).json(t)
		if res["total_rows"] != 3.0 || res["imported"] != 3.0 || len(res["rejected"].([]any)) != 0 || res["outcome"] != "import.complete" {
			t.Errorf("result %v", res)
		}
	})

	t.Run("partial_with_per_row_reasons", func(t *testing.T) {
		r := ts.mustStart(t, key, "/v1/imports", importBody("", rows("B-1", "B-2", "B-1", "OLD-9", "B-3=-4", "B-4")))
		ts.mustFollow(t, key, r.Header.Get("Location"))
		res := ts.do(t, http.MethodGet, "/v1/imports/"+r.json(t)["import_id"].(string), key, nil).json(t)
		if res["imported"] != 3.0 || res["outcome"] != "import.partial" {
			t.Fatalf("result %v", res)
		}
		want := []struct {
			row    float64
			reason string
		}{{3, "duplicate of row 1"}, {4, "discontinued"}, {5, "below zero"}}
		rej := res["rejected"].([]any)
		if len(rej) != len(want) {
			t.Fatalf("rejected %v", rej)
		}
		for i, w := range want {
			r := rej[i].(map[string]any)
			if r["row"] != w.row || !strings.Contains(r["reason"].(string), w.reason) {
				t.Errorf("rejected[%d] = %v, want row %v with %q", i, r, w.row, w.reason)
			}
		}
	})

	t.Run("failed_when_every_row_is_rejected", func(t *testing.T) {
		r := ts.mustStart(t, key, "/v1/imports", importBody("", rows("OLD-1", "OLD-2")))
		ts.mustFollow(t, key, r.Header.Get("Location"))
		res := ts.do(t, http.MethodGet, "/v1/imports/"+r.json(t)["import_id"].(string), key, nil).json(t)
		if res["imported"] != 0.0 || res["outcome"] != "import.failed" {
			t.Errorf("result %v", res)
		}
	})

	t.Run("failed_job_has_no_result", func(t *testing.T) {
		body := importBody("", rows("C-1"))
		body["simulate"] = map[string]any{"outcome": "fail", "fail_code": problems.UpstreamUnavailable}
		r := ts.mustStart(t, key, "/v1/imports", body)
		polls := ts.mustFollow(t, key, r.Header.Get("Location"))
		if st := polls[len(polls)-1].json(t)["status"]; st != "failed" {
			t.Fatalf("status %v", st)
		}
		g := ts.do(t, http.MethodGet, "/v1/imports/"+r.json(t)["import_id"].(string), key, nil)
		if g.StatusCode != http.StatusConflict || g.json(t)["code"] != problems.ResultNotReady {
			t.Errorf("GET failed import: %d %s", g.StatusCode, g.body)
		}
	})

	t.Run("schema_problems_refused_at_once", func(t *testing.T) {
		before, _ := ts.s.JobCount(context.Background())
		many := make([]string, 1001)
		for i := range many {
			many[i] = fmt.Sprintf("S-%d", i)
		}
		cases := []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"no rows", importBody("", rows()), 422, problems.ValidationFailed},
			{"rows null", map[string]any{"rows": nil}, 422, problems.ValidationFailed},
			{"too many rows", importBody("", rows(many...)), 422, problems.ValidationFailed},
			{"bad sku", importBody("", rows("no spaces allowed")), 422, problems.ValidationFailed},
			{"missing price", map[string]any{"rows": []map[string]any{{"sku": "A", "name": "A", "quantity": 1}}}, 422, problems.ValidationFailed},
			{"callback not a URL", importBody("ftp://example.com/x", rows("A")), 422, problems.ValidationFailed},
			{"body over 256 KiB", `{"rows":[{"sku":"A","name":"` + strings.Repeat("x", 260<<10) + `"}]}`, 413, problems.RequestTooLarge},
		}
		for _, c := range cases {
			r := ts.do(t, http.MethodPost, "/v1/imports", key, c.body)
			if r.StatusCode != c.status || r.json(t)["code"] != c.code {
				t.Errorf("%s: %d %s, want %d %s", c.name, r.StatusCode, r.body, c.status, c.code)
			}
		}
		if after, _ := ts.s.JobCount(context.Background()); after != before {
			t.Errorf("%d jobs created by refused requests", after-before)
		}
		// A full import fits the body limit.
		big := make([]string, 1000)
		for i := range big {
			big[i] = fmt.Sprintf("BIG-%04d", i)
		}
		ts.mustStart(t, key, "/v1/imports", importBody("", rows(big...)))
	})
}

// TestWebhookConformance checks rows R24-R31 of ASYNC-CONFORMANCE.md at the
// HTTP level, on every database backend: imports deliver signed webhooks
// to the built-in inbox and to httptest receivers.
func TestWebhookConformance(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testWebhookConformance(t, backend) })
	}
}

func testWebhookConformance(t *testing.T, backend string) {
	seen := newProblemLog()
	on := withBackend(backend)
	ts := newSandbox(t, seen, withoutLimits, on)

	t.Run("R24_every_delivery_has_the_three_headers", func(t *testing.T) {
		key := ts.key(t)
		ib := ts.mustInbox(t, key)
		r := ts.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1", "A-2")))
		if ev := r.json(t)["webhook_events"].([]any); len(ev) != 3 || ev[0] != "import.complete" {
			t.Errorf("webhook_events %v", ev)
		}
		d := ts.mustInboxDeliveries(t, key, ib.ID, 1, nil)[0]
		if !regexp.MustCompile(`^msg_[A-Za-z0-9]+$`).MatchString(d.header("webhook-id")) {
			t.Errorf("webhook-id %q", d.header("webhook-id"))
		}
		if ts, err := strconv.ParseInt(d.header("webhook-timestamp"), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
			t.Errorf("webhook-timestamp %q is not recent unix seconds", d.header("webhook-timestamp"))
		}
		if !regexp.MustCompile(`^v1,[A-Za-z0-9+/]+=*( v1,[A-Za-z0-9+/]+=*)*$`).MatchString(d.header("webhook-signature")) {
			t.Errorf("webhook-signature %q", d.header("webhook-signature"))
		}
		if d.Answered != http.StatusNoContent {
			t.Errorf("inbox answered %d", d.Answered)
		}
	})

	t.Run("R25_signature_verifies_over_the_exact_body", func(t *testing.T) {
		// The known-answer vector, with the independent signer and the sandbox's.
		const vSecret, vID, vTS, vBody, vWant = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", `{"test": 2432232314}`, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
		if got := sign(vSecret, vID, vTS, []byte(vBody)); got != vWant {
			t.Fatalf("test signer: %s, want %s", got, vWant)
		}
		s, err := webhooks.NewSigner(vSecret)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Sign(vID, time.Unix(1614265330, 0), []byte(vBody)); got != vWant {
			t.Errorf("sandbox signer: %s, want %s", got, vWant)
		}

		key := ts.key(t)
		ib := ts.mustInbox(t, key)
		secret := ts.do(t, http.MethodGet, "/v1/webhooks/secret", key, nil).json(t)["secret"].(string)
		if secret != ib.Secret || !strings.HasPrefix(secret, "whsec_") {
			t.Errorf("inbox secret %q, key secret %q", ib.Secret, secret)
		}
		r := ts.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1")))
		d := ts.mustInboxDeliveries(t, key, ib.ID, 1, nil)[0]
		want := sign(secret, d.header("webhook-id"), d.header("webhook-timestamp"), []byte(d.Body))
		if d.header("webhook-signature") != want {
			t.Errorf("signature %q, want %q", d.header("webhook-signature"), want)
		}
		if !d.Verification.Valid || d.Verification.Secret != "current" {
			t.Errorf("inbox verification %+v", d.Verification)
		}
		// The receiver can trust what it reads: the import is finished.
		var p struct {
			Type string
			Data struct {
				ImportID  string `json:"import_id"`
				ResultURL string `json:"result_url"`
			}
		}
		if err := json.Unmarshal([]byte(d.Body), &p); err != nil {
			t.Fatal(err)
		}
		if p.Type != "import.complete" || p.Data.ImportID != r.json(t)["import_id"] || !strings.HasSuffix(p.Data.ResultURL, "/v1/imports/"+p.Data.ImportID) {
			t.Errorf("payload %s", d.Body)
		}
		if g := ts.do(t, http.MethodGet, "/v1/imports/"+p.Data.ImportID, key, nil); g.StatusCode != http.StatusOK {
			t.Errorf("GET the import named by the webhook: %d", g.StatusCode)
		}
	})

	t.Run("R26_same_id_and_rising_timestamps_across_retries", func(t *testing.T) {
		// A fake clock, so the schedule's 5 s and 5 min pass at once and
		// the timestamps (whole seconds) really rise: whenever a retry
		// waits, the clock jumps to when it is due, as a fake scheduler.
		fake := clock.NewFake(time.Now())
		fs := newSandbox(t, seen, withFakeClock(fake), withScale(1), withoutLimits, on)
		key := fs.key(t)
		ib := fs.mustInbox(t, key)
		if r := fs.do(t, http.MethodPut, "/v1/sandbox/inboxes/"+ib.ID+"/behaviour", key, map[string]any{"status": 503, "count": 2}); r.StatusCode != 200 {
			t.Fatalf("behaviour: %d %s", r.StatusCode, r.body)
		}
		body := importBody(ib.URL, rows("A-1"))
		body["simulate"] = map[string]any{"duration_seconds": 0}
		id := fs.mustStart(t, key, "/v1/imports", body).json(t)["import_id"].(string)
		fs.mustInboxDeliveries(t, key, ib.ID, 1, nil)
		tick := func() {
			l := fs.deliveryLog(t, key, id)
			if n := len(l.Attempts); n > 0 && l.State == "sending" {
				if next := l.Attempts[n-1].NextAttemptAt; next != nil && next.After(fake.Now()) {
					fake.Set(*next)
				}
			}
		}
		ds := fs.mustInboxDeliveries(t, key, ib.ID, 3, tick)
		// Newest first.
		wantAnswers := []int{204, 503, 503}
		for i, d := range ds {
			if d.header("webhook-id") != ds[0].header("webhook-id") {
				t.Errorf("delivery %d has webhook-id %q, want %q", i, d.header("webhook-id"), ds[0].header("webhook-id"))
			}
			if d.Answered != wantAnswers[i] || !d.Verification.Valid {
				t.Errorf("delivery %d answered %d, verified %v (%s)", i, d.Answered, d.Verification.Valid, d.Verification.Error)
			}
			if i > 0 {
				newer, _ := strconv.ParseInt(d.header("webhook-timestamp"), 10, 64)
				older, _ := strconv.ParseInt(ds[i-1].header("webhook-timestamp"), 10, 64)
				if older <= newer {
					t.Errorf("timestamps do not rise: %d then %d", newer, older)
				}
			}
		}
		l := fs.mustDeliveryLog(t, key, id, finalState, nil)
		if l.State != "delivered" || len(l.Attempts) != 3 || l.MessageID != ds[0].header("webhook-id") {
			t.Fatalf("delivery log %+v", l)
		}
		for i, a := range l.Attempts {
			if a.Number != i+1 || (i < 2 && (a.StatusCode != 503 || a.Outcome != "retrying" || a.NextAttemptAt == nil)) {
				t.Errorf("attempt %d: %+v", i+1, a)
			}
			if i > 0 && !a.At.After(l.Attempts[i-1].At) {
				t.Errorf("attempt %d at %s, not after %s", i+1, a.At, l.Attempts[i-1].At)
			}
		}
		if gap := l.Attempts[1].At.Sub(l.Attempts[0].At); gap < 4*time.Second || gap > 6*time.Second {
			t.Errorf("second attempt %s after the first, want about 5 s (R28)", gap)
		}
	})

	t.Run("R27_only_2xx_succeeds_3xx_is_not_followed_410_disables_Retry_After_is_honoured", func(t *testing.T) {
		key := ts.key(t)
		ib := ts.mustInbox(t, key)
		put := func(b map[string]any) {
			if r := ts.do(t, http.MethodPut, "/v1/sandbox/inboxes/"+ib.ID+"/behaviour", key, b); r.StatusCode != 200 {
				t.Fatalf("behaviour: %d %s", r.StatusCode, r.body)
			}
		}
		// 3xx: a failure, not followed, retried.
		put(map[string]any{"status": 301, "count": 1})
		id := ts.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1"))).json(t)["import_id"].(string)
		l := ts.mustDeliveryLog(t, key, id, finalState, nil)
		if l.State != "delivered" || len(l.Attempts) != 2 || l.Attempts[0].StatusCode != 301 || !strings.Contains(l.Attempts[0].Error, "not followed") {
			t.Errorf("after a 301: %+v", l)
		}

		// Retry-After longer than the schedule's 5 s replaces it.
		put(map[string]any{"status": 429, "count": 1, "retry_after": 3600})
		id = ts.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1"))).json(t)["import_id"].(string)
		l = ts.mustDeliveryLog(t, key, id, func(l deliveryLog) bool { return len(l.Attempts) > 0 }, nil)
		a := l.Attempts[0]
		scaled := time.Duration(3600 * float64(time.Second) * ts.s.cfg.TimeScale)
		if a.StatusCode != 429 || a.NextAttemptAt == nil || a.NextAttemptAt.Sub(a.At) < scaled {
			t.Errorf("after 429 with Retry-After 3600: %+v, want the next attempt %s later", a, scaled)
		}
		ts.mustDeliveryLog(t, key, id, finalState, nil)

		// 410: disabled for this key, nothing more is sent.
		put(map[string]any{"status": 410, "count": 1})
		id = ts.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1"))).json(t)["import_id"].(string)
		l = ts.mustDeliveryLog(t, key, id, finalState, nil)
		if l.State != "disabled" || !l.Disabled || len(l.Attempts) != 1 || l.Attempts[0].StatusCode != 410 {
			t.Fatalf("after a 410: %+v", l)
		}
		n := len(ts.inboxDeliveries(t, key, ib.ID))
		time.Sleep(50 * time.Millisecond)
		if m := len(ts.inboxDeliveries(t, key, ib.ID)); m != n {
			t.Errorf("%d deliveries after the 410", m-n)
		}
		// A redelivery re-enables the URL: same message id, delivered.
		rd := ts.do(t, http.MethodPost, "/v1/imports/"+id+"/deliveries", key, nil)
		if rd.StatusCode != http.StatusAccepted || rd.Header.Get("Location") != "/v1/imports/"+id+"/deliveries" {
			t.Fatalf("redeliver: %d %s", rd.StatusCode, rd.body)
		}
		l2 := ts.mustDeliveryLog(t, key, id, func(l deliveryLog) bool { return len(l.Attempts) == 2 && finalState(l) }, nil)
		if l2.State != "delivered" || l2.Disabled || !l2.Attempts[1].Manual || l2.MessageID != l.MessageID {
			t.Errorf("after redelivery: %+v", l2)
		}
		if d := ts.inboxDeliveries(t, key, ib.ID)[0]; d.header("webhook-id") != l.MessageID {
			t.Errorf("redelivered webhook-id %q, want %q", d.header("webhook-id"), l.MessageID)
		}
	})

	t.Run("R27_against_httptest_receivers", func(t *testing.T) {
		open := newSandbox(t, seen, withoutLimits, on, func(c *Config, _ *Deps) { c.AllowPrivateCallbacks = true })
		key := open.key(t)
		var mu sync.Mutex
		hits := map[string]int{}
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits[r.URL.Path]++
			n := hits[r.URL.Path]
			mu.Unlock()
			switch {
			case r.URL.Path == "/redirect":
				http.Redirect(w, r, "/ok", http.StatusFound)
			case r.URL.Path == "/gone":
				w.WriteHeader(http.StatusGone)
			case r.URL.Path == "/slow" && n == 1:
				time.Sleep(400 * time.Millisecond) // past the attempt timeout (250 ms floor)
			case r.URL.Path == "/flaky" && n < 3:
				w.WriteHeader(http.StatusInternalServerError)
			}
		}))
		t.Cleanup(recv.Close)
		cases := []struct {
			path, state string
			attempts    int
		}{
			{"/ok", "delivered", 1},
			{"/flaky", "delivered", 3},
			{"/slow", "delivered", 2},
			{"/gone", "disabled", 1},
		}
		for _, c := range cases {
			id := open.mustStart(t, key, "/v1/imports", importBody(recv.URL+c.path, rows("A-1"))).json(t)["import_id"].(string)
			l := open.mustDeliveryLog(t, key, id, finalState, nil)
			if l.State != c.state || len(l.Attempts) != c.attempts {
				t.Errorf("%s: %+v, want %s after %d attempts", c.path, l, c.state, c.attempts)
			}
		}
		// A redirect is a failure and is never followed: /ok is not hit by it.
		mu.Lock()
		okBefore := hits["/ok"]
		mu.Unlock()
		id := open.mustStart(t, key, "/v1/imports", importBody(recv.URL+"/redirect", rows("A-1"))).json(t)["import_id"].(string)
		l := open.mustDeliveryLog(t, key, id, func(l deliveryLog) bool { return len(l.Attempts) >= 2 }, nil)
		if l.Attempts[0].StatusCode != http.StatusFound || l.Attempts[0].Outcome != "retrying" {
			t.Errorf("redirect: %+v", l.Attempts[0])
		}
		mu.Lock()
		if hits["/ok"] != okBefore {
			t.Error("the redirect was followed")
		}
		mu.Unlock()
	})

	t.Run("R28_retry_schedule_is_documented", func(t *testing.T) {
		op := ts.s.API().OpenAPI().Webhooks["import.complete"].Post
		for _, step := range []string{"immediately", "5 s", "5 min", "30 min", "2 h", "5 h", "10 h", "14 h", "20 h", "24 h", "Retry-After", "410"} {
			if !strings.Contains(op.Description, step) {
				t.Errorf("webhook description does not mention %q", step)
			}
		}
		if got := webhooks.StandardSchedule(); len(got) != 10 || got[1] != 5*time.Second || got[9] != 24*time.Hour {
			t.Errorf("schedule %v", got)
		}
	})

	t.Run("R29_payload_shape_and_size", func(t *testing.T) {
		key := ts.key(t)
		ib := ts.mustInbox(t, key)
		skus := make([]string, 1000)
		for i := range skus {
			skus[i] = fmt.Sprintf("OLD-%s-%04d", strings.Repeat("X", 50), i)
		}
		ts.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows(skus...)))
		d := ts.mustInboxDeliveries(t, key, ib.ID, 1, nil)[0]
		if len(d.Body) >= webhooks.PayloadLimit {
			t.Errorf("payload is %d bytes, want under %d", len(d.Body), webhooks.PayloadLimit)
		}
		var p map[string]any
		if err := json.Unmarshal([]byte(d.Body), &p); err != nil {
			t.Fatal(err)
		}
		if len(p) != 3 || p["type"] != "import.failed" {
			t.Errorf("payload keys/type: %v", p["type"])
		}
		if _, err := time.Parse(time.RFC3339, p["timestamp"].(string)); err != nil {
			t.Errorf("timestamp: %v", err)
		}
		data := p["data"].(map[string]any)
		for _, k := range []string{"import_id", "job_id", "status", "total_rows", "imported", "rejected_count", "rejected", "status_url", "result_url"} {
			if _, ok := data[k]; !ok {
				t.Errorf("data has no %s", k)
			}
		}
		if data["rejected_count"] != 1000.0 || len(data["rejected"].([]any)) != 20 || data["imported"] != 0.0 {
			t.Errorf("data counts: rejected_count %v, %d rejected rows, imported %v", data["rejected_count"], len(data["rejected"].([]any)), data["imported"])
		}
	})

	t.Run("R29_partial_and_failed_outcomes", func(t *testing.T) {
		key := ts.key(t)
		ib := ts.mustInbox(t, key)
		ts.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1", "A-1", "A-2=-1")))
		failing := importBody(ib.URL, rows("A-1"))
		failing["simulate"] = map[string]any{"outcome": "fail", "fail_code": problems.SourceDataInvalid}
		ts.mustStart(t, key, "/v1/imports", failing)
		ds := ts.mustInboxDeliveries(t, key, ib.ID, 2, nil)
		byType := map[string]map[string]any{}
		for _, d := range ds {
			var p struct {
				Type string
				Data map[string]any
			}
			if err := json.Unmarshal([]byte(d.Body), &p); err != nil {
				t.Fatal(err)
			}
			byType[p.Type] = p.Data
		}
		part := byType["import.partial"]
		if part == nil || part["imported"] != 1.0 || part["rejected_count"] != 2.0 ||
			!strings.Contains(part["rejected"].([]any)[0].(map[string]any)["reason"].(string), "duplicate of row 1") {
			t.Errorf("import.partial data: %v", part)
		}
		failed := byType["import.failed"]
		if failed == nil || failed["status"] != "failed" || failed["error"].(map[string]any)["code"] != problems.SourceDataInvalid {
			t.Errorf("import.failed data: %v", failed)
		}
	})

	t.Run("R31_private_callback_urls_refused_when_sent", func(t *testing.T) {
		key := ts.key(t)
		before, _ := ts.s.JobCount(context.Background())
		for _, u := range []string{"http://10.0.0.1/hook", "http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data", "http://localhost:8080/hook", "https://[::1]/hook", "http://192.168.1.10/hook"} {
			r := ts.do(t, http.MethodPost, "/v1/imports", key, importBody(u, rows("A-1")))
			if r.StatusCode != 422 || r.json(t)["code"] != problems.CallbackURLBlocked {
				t.Errorf("%s: %d %s, want 422 %s", u, r.StatusCode, r.body, problems.CallbackURLBlocked)
			}
		}
		if after, _ := ts.s.JobCount(context.Background()); after != before {
			t.Errorf("%d jobs created for refused callback URLs", after-before)
		}
		// The built-in inbox is always allowed, though its URL is on loopback here.
		ib := ts.mustInbox(t, key)
		if !strings.HasPrefix(ib.URL, "http://127.0.0.1") {
			t.Fatalf("inbox URL %s", ib.URL)
		}
		ts.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1")))
		ts.mustInboxDeliveries(t, key, ib.ID, 1, nil)
	})

	t.Run("R31_private_addresses_refused_when_connecting", func(t *testing.T) {
		got := make(chan struct{})
		var once sync.Once
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
			once.Do(func() { close(got) })
		}))
		t.Cleanup(recv.Close)
		// A host that passed the parse-time check but resolves to loopback
		// when connecting (DNS rebinding): let every URL through the first check.
		passAll := func(c *Config, d *Deps) { d.CheckCallback = func(string) error { return nil } }
		closed := newSandbox(t, seen, withoutLimits, on, passAll)
		key := closed.key(t)
		id := closed.mustStart(t, key, "/v1/imports", importBody(recv.URL+"/hook", rows("A-1"))).json(t)["import_id"].(string)
		l := closed.mustDeliveryLog(t, key, id, finalState, nil)
		if l.State != "failed" || len(l.Attempts) != 1 || !strings.Contains(l.Attempts[0].Error, "refused to connect") || !strings.Contains(l.Attempts[0].Error, "loopback") {
			t.Errorf("connect-time refusal: %+v", l)
		}

		open := newSandbox(t, seen, withoutLimits, on, func(c *Config, _ *Deps) { c.AllowPrivateCallbacks = true })
		key = open.key(t)
		id = open.mustStart(t, key, "/v1/imports", importBody(recv.URL+"/hook", rows("A-1"))).json(t)["import_id"].(string)
		if l := open.mustDeliveryLog(t, key, id, finalState, nil); l.State != "delivered" {
			t.Errorf("with -allow-private-callbacks: %+v", l)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the receiver got nothing within 10 s")
		}
	})

	t.Run("secret_rotation_signs_with_both_during_grace", func(t *testing.T) {
		key := ts.key(t)
		ib := ts.mustInbox(t, key)
		old := ib.Secret
		rot := ts.do(t, http.MethodPost, "/v1/webhooks/secret/rotate", key, nil)
		if rot.StatusCode != 200 {
			t.Fatalf("rotate: %d %s", rot.StatusCode, rot.body)
		}
		b := rot.json(t)
		if b["secret"] == old || b["previous_secret"] != old || b["previous_expires_at"] == nil || b["grace_seconds"] != 86400.0 || rot.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("after rotation: %s", rot.body)
		}
		ts.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1")))
		d := ts.mustInboxDeliveries(t, key, ib.ID, 1, nil)[0]
		sigs := strings.Fields(d.header("webhook-signature"))
		id, stamp := d.header("webhook-id"), d.header("webhook-timestamp")
		if len(sigs) != 2 || sigs[0] != sign(b["secret"].(string), id, stamp, []byte(d.Body)) || sigs[1] != sign(old, id, stamp, []byte(d.Body)) {
			t.Errorf("signatures %q, want new then previous", sigs)
		}
		if !d.Verification.Valid || d.Verification.Secret != "current" {
			t.Errorf("verification %+v", d.Verification)
		}
		if g := ts.do(t, http.MethodGet, "/v1/webhooks/secret", key, nil).json(t); g["secret"] != b["secret"] || g["previous_secret"] != old {
			t.Errorf("GET secret after rotation: %v", g)
		}
	})

	t.Run("per_key_isolation", func(t *testing.T) {
		key, other := ts.key(t), ts.key(t)
		ib := ts.mustInbox(t, key)
		id := ts.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1"))).json(t)["import_id"].(string)
		ts.mustInboxDeliveries(t, key, ib.ID, 1, nil)
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/imports/" + id}, {"GET", "/v1/imports/" + id + "/deliveries"}, {"POST", "/v1/imports/" + id + "/deliveries"},
			{"GET", "/v1/sandbox/inboxes/" + ib.ID}, {"GET", "/v1/sandbox/inboxes/" + ib.ID + "/deliveries"},
		} {
			if r := ts.do(t, c.method, c.path, other, nil); r.StatusCode != 404 {
				t.Errorf("other key %s %s: %d", c.method, c.path, r.StatusCode)
			}
		}
		if r := ts.do(t, "PUT", "/v1/sandbox/inboxes/"+ib.ID+"/behaviour", other, map[string]any{"status": 500, "count": 1}); r.StatusCode != 404 {
			t.Errorf("other key PUT behaviour: %d", r.StatusCode)
		}
		if ts.do(t, "GET", "/v1/webhooks/secret", other, nil).json(t)["secret"] == ib.Secret {
			t.Error("two keys share a signing secret")
		}
	})

	t.Run("webhook_problems", func(t *testing.T) { webhookProblems(t, ts) })
}

// onOneDatabase runs sandboxes as replicas of one service: one database,
// one public URL (so each recognises the inbox URLs of all).
func onOneDatabase(db sqldb.DB) func(*Config, *Deps) {
	return func(c *Config, d *Deps) { d.DB, c.PublicURL = db, "http://sandbox.test" }
}

// TestWebhooksSurviveRestarts (R41, and R38 for what webhooks keep):
// secrets, inboxes and a webhook waiting for its retry live in the
// database, so a sandbox started on it after another stopped delivers the
// retry, with the same webhook-id, signed with the same secret.
func TestWebhooksSurviveRestarts(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			db := newTestDB(t, backend)
			a := newSandbox(t, nil, withoutLimits, onOneDatabase(db))
			key := a.key(t)
			ib := a.mustInbox(t, key)
			// The first attempt fails with a Retry-After of an hour: 3.6 s
			// at the tests' time scale, time enough to stop the sandbox.
			if r := a.do(t, http.MethodPut, "/v1/sandbox/inboxes/"+ib.ID+"/behaviour", key, map[string]any{"status": 503, "count": 1, "retry_after": 3600}); r.StatusCode != 200 {
				t.Fatalf("behaviour: %d %s", r.StatusCode, r.body)
			}
			id := a.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1"))).json(t)["import_id"].(string)
			first := a.mustDeliveryLog(t, key, id, func(l deliveryLog) bool { return len(l.Attempts) == 1 }, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.s.Close(ctx); err != nil {
				t.Fatalf("stopping the first sandbox: %v", err)
			}

			b := newSandbox(t, nil, withoutLimits, onOneDatabase(db))
			if g := b.do(t, http.MethodGet, "/v1/webhooks/secret", key, nil).json(t); g["secret"] != ib.Secret {
				t.Errorf("the secret after a restart: %v, want %s", g["secret"], ib.Secret)
			}
			ds := b.mustInboxDeliveries(t, key, ib.ID, 2, nil)
			if ds[0].header("webhook-id") != first.MessageID || ds[1].header("webhook-id") != first.MessageID {
				t.Errorf("webhook-ids %q, %q; want %q on both", ds[1].header("webhook-id"), ds[0].header("webhook-id"), first.MessageID)
			}
			if ds[0].Answered != 204 || ds[1].Answered != 503 || !ds[0].Verification.Valid || ds[0].Verification.Secret != "current" {
				t.Errorf("deliveries: %+v", ds)
			}
			l := b.mustDeliveryLog(t, key, id, finalState, nil)
			if l.State != "delivered" || len(l.Attempts) != 2 || l.Attempts[1].Number != 2 || l.Attempts[0].Outcome != "retrying" {
				t.Errorf("delivery log after the restart: %+v", l)
			}
		})
	}
}

// TestInboxStreamAcrossReplicas (R40): a stream on one replica hears a
// delivery another replica received.
func TestInboxStreamAcrossReplicas(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			db := newTestDB(t, backend)
			a := newSandbox(t, nil, withoutLimits, onOneDatabase(db))
			b := newSandbox(t, nil, withoutLimits, onOneDatabase(db))
			key := a.key(t)
			ib := a.mustInbox(t, key)
			s := a.openStream(t, key, "/v1/sandbox/inboxes/"+ib.ID+"/events")
			if it := s.await(t, func(it streamItem) bool { return it.event != "" }, func() {}); it.event != "ready" || it.id != "0" {
				t.Fatalf("first event %+v", it)
			}
			r := b.do(t, http.MethodPost, "/v1/sandbox/inboxes/"+ib.ID, "", `{"type":"hand.made","timestamp":"2026-01-31T09:30:00Z","data":{}}`)
			if r.StatusCode != http.StatusNoContent {
				t.Fatalf("delivery to the other replica: %d %s", r.StatusCode, r.body)
			}
			it := s.await(t, func(it streamItem) bool { return it.event == "delivery" }, func() {})
			if it.id != "1" || !strings.Contains(it.data, "hand.made") {
				t.Errorf("delivery event %+v", it)
			}
			// And a webhook sent by either replica reaches it too.
			b.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1")))
			it = s.await(t, func(it streamItem) bool { return it.event == "delivery" }, func() {})
			if it.id != "2" || !strings.Contains(it.data, "import.complete") {
				t.Errorf("webhook event %+v", it)
			}
		})
	}
}

// webhookProblems triggers, and checks, the catalog entries of imports,
// webhooks and the inbox; TestConformance runs it too, so that its R16
// sees them.
func webhookProblems(t *testing.T, ts *testSandbox) {
	t.Helper()
	key := ts.key(t)
	check := func(r response, status int, code string) {
		t.Helper()
		if r.StatusCode != status || r.json(t)["code"] != code {
			t.Errorf("%s %s: %d %s, want %d %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.body, status, code)
		}
	}
	check(ts.do(t, http.MethodPost, "/v1/imports", key, importBody("http://169.254.169.254/", rows("A-1"))), 422, problems.CallbackURLBlocked)

	plain := ts.mustStart(t, key, "/v1/imports", importBody("", rows("A-1"))).json(t)["import_id"].(string)
	check(ts.do(t, http.MethodPost, "/v1/imports/"+plain+"/deliveries", key, nil), 409, problems.WebhookNotSent)

	ib := ts.mustInbox(t, key)
	ts.do(t, http.MethodPut, "/v1/sandbox/inboxes/"+ib.ID+"/behaviour", key, map[string]any{"status": 503, "count": 1, "retry_after": 3600})
	id := ts.mustStart(t, key, "/v1/imports", importBody(ib.URL, rows("A-1"))).json(t)["import_id"].(string)
	l := ts.mustDeliveryLog(t, key, id, func(l deliveryLog) bool { return len(l.Attempts) > 0 }, nil)
	if l.State == "sending" {
		check(ts.do(t, http.MethodPost, "/v1/imports/"+id+"/deliveries", key, nil), 409, problems.WebhookDeliveryPending)
	} else {
		t.Errorf("the delivery should wait an hour (scaled) for its retry: %+v", l)
	}

	ts.do(t, http.MethodPut, "/v1/sandbox/inboxes/"+ib.ID+"/behaviour", key, map[string]any{"status": 503, "count": 1, "retry_after": 5})
	r := ts.do(t, http.MethodPost, "/v1/sandbox/inboxes/"+ib.ID, "", `{"type":"hand.made","timestamp":"2026-01-31T09:30:00Z","data":{}}`)
	check(r, 503, problems.InboxSimulatedFailure)
	if r.Header.Get("Retry-After") != "5" {
		t.Errorf("inbox told to fail: Retry-After %q", r.Header.Get("Retry-After"))
	}
	if d := ts.inboxDeliveries(t, key, ib.ID)[0]; d.Answered != 503 || d.Verification.Valid {
		t.Errorf("an unsigned hand-made delivery: answered %d, valid %v", d.Answered, d.Verification.Valid)
	}
}

// BenchmarkWebhookThroughput measures imports completing to deliveries
// recorded by the built-in inbox: each import is an instant job whose
// import.complete webhook is stored in the outbox with the job's end, then
// delivered by a River worker: signed, sent in-process, verified and
// stored by the inbox.
func BenchmarkWebhookThroughput(b *testing.B) {
	s, key := benchSandbox(b)
	call := func(method, path string, body any) *httptest.ResponseRecorder {
		var rd io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = strings.NewReader(string(raw))
		}
		req := httptest.NewRequest(method, path, rd)
		req.Header.Set("Authorization", "Bearer "+key)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	rec := call(http.MethodPost, "/v1/sandbox/inboxes", nil)
	var ib struct{ ID, URL string }
	if err := json.Unmarshal(rec.Body.Bytes(), &ib); err != nil || rec.Code != http.StatusCreated {
		b.Fatalf("inbox: %d %s", rec.Code, rec.Body)
	}
	body := importBody(ib.URL, rows("A-1", "A-2", "OLD-3"))
	body["simulate"] = map[string]any{"duration_seconds": 0}
	received := func() int {
		var v struct{ Received int }
		_ = json.Unmarshal(call(http.MethodGet, "/v1/sandbox/inboxes/"+ib.ID, nil).Body.Bytes(), &v)
		return v.Received
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if r := call(http.MethodPost, "/v1/imports", body); r.Code != http.StatusAccepted {
			b.Fatalf("import %d: %d %s", i, r.Code, r.Body)
		}
		// Stay well under one key's bounds: 1,000 unfinished jobs, and
		// 1,000 webhooks being delivered (beyond it one is stored unsent).
		if i%250 == 249 {
			deadline := time.Now().Add(time.Minute)
			for received() < i-500 {
				if time.Now().After(deadline) {
					b.Fatalf("only %d of %d deliveries after a minute", received(), i)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for received() < b.N {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d deliveries after a minute", received(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}
