package app

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
)

// jobList is GET /v1/jobs as a client reads it.
type jobList struct {
	Jobs          []map[string]any `json:"jobs"`
	NextPageToken *string          `json:"next_page_token"`
}

func (l jobList) ids() []string {
	out := make([]string, len(l.Jobs))
	for i, j := range l.Jobs {
		out[i], _ = j["id"].(string)
	}
	return out
}

// mustList GETs a list (path with its query) and reads it into v, failing
// on anything but 200 with a next_page_token field.
func (ts *testSandbox) mustList(t testing.TB, key, path string, v any) response {
	t.Helper()
	r := ts.do(t, http.MethodGet, path, key, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.StatusCode, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, r.body)
	}
	if !strings.Contains(string(r.body), `"next_page_token":`) {
		t.Errorf("GET %s: no next_page_token field (empty on the last page): %s", path, r.body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET %s: Cache-Control %q, want no-store", path, r.Header.Get("Cache-Control"))
	}
	return r
}

// mustRefuse checks that path answers a 422 validation problem about
// location (a prefix of one of its errors' locations).
func (ts *testSandbox) mustRefuse(t testing.TB, key, path, location string) map[string]any {
	t.Helper()
	r := ts.do(t, http.MethodGet, path, key, nil)
	if r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("GET %s: %d, want 422\n%s", path, r.StatusCode, r.body)
	}
	p := r.json(t)
	if p["code"] != problems.ValidationFailed {
		t.Errorf("GET %s: code %v, want %s", path, p["code"], problems.ValidationFailed)
	}
	found := false
	for _, e := range asSlice(p["errors"]) {
		if loc, _ := e.(map[string]any)["location"].(string); strings.HasPrefix(loc, location) {
			found = true
		}
	}
	if !found {
		t.Errorf("GET %s: no error at %s in %s", path, location, r.body)
	}
	return p
}

// TestConformanceJobList checks GET /v1/jobs on every backend: a key sees
// its own jobs only, newest first, each the body GET /v1/jobs/{id}
// answers; each filter in both its forms; page_size bounds; pages that
// neither repeat nor skip while jobs are accepted; and bad filters and
// page tokens refused with a problem a person can act on.
func TestConformanceJobList(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testJobList(t, backend) })
	}
}

func testJobList(t *testing.T, backend string) {
	ts := newSandbox(t, nil, withBackend(backend), withoutLimits)
	a, b, nobody := ts.key(t), ts.key(t), ts.key(t)
	start := func(key, path string, body any) string {
		t.Helper()
		return ts.mustStart(t, key, path, body).json(t)["id"].(string)
	}
	follow := func(key, id string) { t.Helper(); ts.mustFollow(t, key, "/v1/jobs/"+id) }
	report := start(a, "/v1/reports", reportBody(map[string]any{"duration_seconds": 0}))
	follow(a, report)
	failed := start(a, "/v1/reports", reportBody(map[string]any{"duration_seconds": 0, "outcome": "fail", "fail_code": "upstream_unavailable"}))
	follow(a, failed)
	export := start(a, "/v1/exports", map[string]any{"format": "csv", "from": "2026-01-01", "to": "2026-01-02", "simulate": map[string]any{"duration_seconds": 0}})
	follow(a, export)
	imp := start(a, "/v1/imports", importBody("", rows("A-1")))
	follow(a, imp)
	canceled := start(a, "/v1/reports", reportBody(map[string]any{"duration_seconds": 600}))
	if r := ts.do(t, http.MethodDelete, "/v1/jobs/"+canceled, a, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d %s", r.StatusCode, r.body)
	}
	running := start(a, "/v1/reports", reportBody(map[string]any{"duration_seconds": 600}))
	theirs := start(b, "/v1/reports", reportBody(map[string]any{"duration_seconds": 0}))
	all := []string{running, canceled, imp, export, failed, report}

	t.Run("isolation_per_key_newest_first_same_objects", func(t *testing.T) {
		var l jobList
		ts.mustList(t, a, "/v1/jobs", &l)
		if !slices.Equal(l.ids(), all) || l.NextPageToken == nil || *l.NextPageToken != "" {
			t.Fatalf("key A's list: %v (next %v), want %v and an empty next_page_token", l.ids(), l.NextPageToken, all)
		}
		for _, j := range l.Jobs {
			id := j["id"].(string)
			if id == running {
				continue // its estimate moves between two reads
			}
			var one map[string]any
			if err := json.Unmarshal(ts.do(t, http.MethodGet, "/v1/jobs/"+id, a, nil).body, &one); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(j, one) {
				t.Errorf("listed job %s differs from GET /v1/jobs/%s:\n%v\n%v", id, id, j, one)
			}
		}
		ts.mustList(t, b, "/v1/jobs", &l)
		if !slices.Equal(l.ids(), []string{theirs}) {
			t.Errorf("key B's list: %v, want only %s", l.ids(), theirs)
		}
		ts.mustList(t, nobody, "/v1/jobs", &l)
		if len(l.Jobs) != 0 || l.Jobs == nil || *l.NextPageToken != "" {
			t.Errorf("a new key's list: %s, want an empty array and an empty token", ts.do(t, http.MethodGet, "/v1/jobs", nobody, nil).body)
		}
		if r := ts.do(t, http.MethodGet, "/v1/jobs", "", nil); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("without a key: %d, want 401", r.StatusCode)
		}
	})

	t.Run("filters", func(t *testing.T) {
		for _, c := range []struct {
			query string
			want  []string
		}{
			{"status=failed", []string{failed}},
			{"status=succeeded,canceled", []string{canceled, imp, export, report}},
			{"status=succeeded&status=canceled", []string{canceled, imp, export, report}},
			{"status=canceled,succeeded,canceled", []string{canceled, imp, export, report}},
			{"status=queued,processing", []string{running}},
			{"kind=export", []string{export}},
			{"kind=import&kind=export", []string{imp, export}},
			{"kind=report&status=succeeded", []string{report}},
			{"kind=import&status=failed", []string{}},
		} {
			var l jobList
			ts.mustList(t, a, "/v1/jobs?"+c.query, &l)
			if !slices.Equal(l.ids(), c.want) {
				t.Errorf("?%s: %v, want %v", c.query, l.ids(), c.want)
			}
		}
		// Dead letters, part one: failed jobs are findable, with their error.
		var l jobList
		ts.mustList(t, a, "/v1/jobs?status=failed", &l)
		if e, _ := l.Jobs[0]["error"].(map[string]any); e["code"] != "upstream_unavailable" || e["type"] == "" {
			t.Errorf("a failed job in the list: error %v, want upstream_unavailable from the catalog", l.Jobs[0]["error"])
		}
		for _, q := range []string{"status=done", "status=failed,done", "status=FAILED", "status=failed&status=", "kind=pdf", "kind=report,"} {
			p := ts.mustRefuse(t, a, "/v1/jobs?"+q, "query.")
			if d, _ := p["detail"].(string); !strings.Contains(d, "one or more of") {
				t.Errorf("?%s: detail %q does not say what is allowed", q, d)
			}
		}
	})

	// 21 more jobs on a key of their own: more than a default page.
	paged := ts.key(t)
	var mine []string
	for range 21 {
		mine = append(mine, start(paged, "/v1/reports", reportBody(map[string]any{"duration_seconds": 600})))
	}
	slices.Reverse(mine) // newest first

	t.Run("page_size_bounds", func(t *testing.T) {
		var l jobList
		ts.mustList(t, paged, "/v1/jobs", &l)
		if len(l.Jobs) != 20 || *l.NextPageToken == "" {
			t.Errorf("default page: %d jobs, next %q; want 20 and a token", len(l.Jobs), *l.NextPageToken)
		}
		for size, want := range map[string]int{"1": 1, "21": 21, "100": 21} {
			ts.mustList(t, paged, "/v1/jobs?page_size="+size, &l)
			if len(l.Jobs) != want || (*l.NextPageToken == "") != (want == 21) {
				t.Errorf("page_size=%s: %d jobs, next %q; want %d", size, len(l.Jobs), *l.NextPageToken, want)
			}
		}
		for _, size := range []string{"0", "-1", "101", "1000", "ten"} {
			ts.mustRefuse(t, paged, "/v1/jobs?page_size="+size, "query.page_size")
		}
	})

	t.Run("pagination_stable_under_inserts", func(t *testing.T) {
		var seen []string
		// Filtered by kind, not status: a job whose status changes
		// between pages (a stall under a loaded machine) would leave a
		// status filter, which is not what this test is about.
		path := "/v1/jobs?page_size=4&kind=report"
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("more than 10 pages: %v", seen)
			}
			var l jobList
			ts.mustList(t, paged, path, &l)
			seen = append(seen, l.ids()...)
			// A job accepted between two pages is newer than all of them.
			start(paged, "/v1/reports", reportBody(map[string]any{"duration_seconds": 600}))
			if *l.NextPageToken == "" {
				break
			}
			// The page size may change between pages (AIP-158); the filters may not.
			path = "/v1/jobs?page_size=" + []string{"4", "5"}[pages%2] + "&kind=report&page_token=" + url.QueryEscape(*l.NextPageToken)
		}
		if !slices.Equal(seen, mine) {
			t.Errorf("paged while jobs were accepted:\n%v\nwant each of the first 21 once, newest first:\n%v", seen, mine)
		}
	})

	t.Run("bad_page_token", func(t *testing.T) {
		var l jobList
		ts.mustList(t, paged, "/v1/jobs?page_size=2&kind=report", &l)
		token := *l.NextPageToken
		flipped := []byte(token)
		if i := len(flipped) / 2; flipped[i] == 'A' {
			flipped[i] = 'B'
		} else {
			flipped[i] = 'A'
		}
		for _, c := range []struct{ what, key, query, says string }{
			{"garbage", paged, "page_token=bm90LWEtdG9rZW4", "is not a page token"},
			{"not base64url", paged, "page_token=" + url.QueryEscape("a+b/c="), ""},
			{"changed", paged, "page_token=" + string(flipped) + "&kind=report", ""},
			{"another key's", a, "page_token=" + token + "&kind=report", "not given out by this list to this API key"},
			{"other filters", paged, "page_token=" + token, "other filters"},
			{"too long", paged, "page_token=" + strings.Repeat("A", 129), ""},
		} {
			p := ts.mustRefuse(t, c.key, "/v1/jobs?"+c.query, "query.page_token")
			if d, _ := p["detail"].(string); !strings.Contains(d, c.says) {
				t.Errorf("%s token: detail %q, want it to say %q", c.what, d, c.says)
			}
		}
	})
}

// deadLetterList is GET /v1/webhooks/dead-letters as a client reads it.
type deadLetterList struct {
	DeadLetters []struct {
		MessageID   string    `json:"message_id"`
		EventType   string    `json:"event_type"`
		JobID       string    `json:"job_id"`
		ImportID    string    `json:"import_id"`
		CallbackURL string    `json:"callback_url"`
		State       string    `json:"state"`
		Attempts    int       `json:"attempts"`
		GaveUpAt    time.Time `json:"gave_up_at"`
		LastError   string    `json:"last_error"`
		LastAttempt *struct {
			Number     int    `json:"number"`
			StatusCode int    `json:"status_code"`
			Outcome    string `json:"outcome"`
		} `json:"last_attempt"`
		Links struct{ Deliveries, Redeliver, Job string } `json:"links"`
	} `json:"dead_letters"`
	NextPageToken *string `json:"next_page_token"`
}

// TestWebhookDeadLetters checks GET /v1/webhooks/dead-letters on every
// backend: a webhook whose every attempt failed (the whole retry schedule,
// played on a fake clock) and one whose URL answered 410 are listed with
// their last error, newest first, for their key only, a page at a time;
// the redeliver link sends one again, which takes it off the list.
func TestWebhookDeadLetters(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testDeadLetters(t, backend) })
	}
}

func testDeadLetters(t *testing.T, backend string) {
	fake := clock.NewFake(time.Now())
	// Kept past the 76 hours of the whole schedule.
	keep := func(c *Config, _ *Deps) { c.Retention = 30 * 24 * time.Hour }
	ts := newSandbox(t, nil, withBackend(backend), withFakeClock(fake), withScale(1), withoutLimits, keep)
	key, other := ts.key(t), ts.key(t)
	behave := func(ib testInbox, b map[string]any) {
		t.Helper()
		if r := ts.do(t, http.MethodPut, "/v1/sandbox/inboxes/"+ib.ID+"/behaviour", key, b); r.StatusCode != 200 {
			t.Fatalf("behaviour: %d %s", r.StatusCode, r.body)
		}
	}
	startImport := func(ib testInbox) string {
		t.Helper()
		body := importBody(ib.URL, rows("A-1"))
		body["simulate"] = map[string]any{"duration_seconds": 0}
		return ts.mustStart(t, key, "/v1/imports", body).json(t)["import_id"].(string)
	}
	// The retry schedule on a fake clock: whenever the next attempt waits,
	// the clock jumps to it.
	tick := func(id string) func() {
		return func() {
			l := ts.deliveryLog(t, key, id)
			if n := len(l.Attempts); n > 0 && l.State == "sending" {
				if next := l.Attempts[n-1].NextAttemptAt; next != nil && next.After(fake.Now()) {
					fake.Set(*next)
				}
			}
		}
	}

	failing := ts.mustInbox(t, key)
	behave(failing, map[string]any{"status": 503, "count": 10})
	exhausted := startImport(failing)
	log := ts.mustDeliveryLog(t, key, exhausted, finalState, tick(exhausted))
	if log.State != "failed" || len(log.Attempts) != 10 {
		t.Fatalf("delivery log after the schedule: %s with %d attempts, want failed after 10", log.State, len(log.Attempts))
	}
	fake.Advance(time.Second) // the next one gives up later
	gone := ts.mustInbox(t, key)
	behave(gone, map[string]any{"status": 410, "count": 1})
	disabled := startImport(gone)
	ts.mustDeliveryLog(t, key, disabled, finalState, nil)

	var l deadLetterList
	ts.mustList(t, key, "/v1/webhooks/dead-letters", &l)
	if len(l.DeadLetters) != 2 || *l.NextPageToken != "" {
		t.Fatalf("dead letters: %+v, want 2 on one page", l)
	}
	d410, d503 := l.DeadLetters[0], l.DeadLetters[1]
	deliveries := "/v1/imports/" + exhausted + "/deliveries"
	if d503.ImportID != exhausted || d503.MessageID != log.MessageID || d503.State != "failed" || d503.Attempts != 10 || d503.EventType != "import.complete" ||
		!strings.Contains(d503.LastError, "503") || d503.LastAttempt == nil || d503.LastAttempt.StatusCode != 503 || d503.LastAttempt.Number != 10 ||
		d503.Links.Redeliver != deliveries || d503.Links.Deliveries != deliveries || d503.Links.Job != "/v1/jobs/"+d503.JobID || d503.CallbackURL != failing.URL {
		t.Errorf("the exhausted webhook: %+v", d503)
	}
	if d410.ImportID != disabled || d410.State != "disabled" || !strings.Contains(d410.LastError, "410") || d410.Links.Redeliver == "" || !d410.GaveUpAt.After(d503.GaveUpAt) {
		t.Errorf("the disabled webhook (newest first): %+v", d410)
	}

	// Another key sees none of them.
	ts.mustList(t, other, "/v1/webhooks/dead-letters", &l)
	if len(l.DeadLetters) != 0 || l.DeadLetters == nil {
		t.Errorf("another key's dead letters: %+v", l)
	}

	// A page at a time.
	ts.mustList(t, key, "/v1/webhooks/dead-letters?page_size=1", &l)
	if len(l.DeadLetters) != 1 || l.DeadLetters[0].ImportID != disabled || *l.NextPageToken == "" {
		t.Fatalf("first page of one: %+v", l)
	}
	token := *l.NextPageToken
	ts.mustList(t, key, "/v1/webhooks/dead-letters?page_size=1&page_token="+token, &l)
	if len(l.DeadLetters) != 1 || l.DeadLetters[0].ImportID != exhausted || *l.NextPageToken != "" {
		t.Fatalf("second page of one: %+v", l)
	}
	ts.mustRefuse(t, other, "/v1/webhooks/dead-letters?page_token="+token, "query.page_token")
	ts.mustRefuse(t, key, "/v1/jobs?page_token="+token, "query.page_token") // another list's
	ts.mustRefuse(t, key, "/v1/webhooks/dead-letters?page_size=101", "query.page_size")

	// Redeliver the exhausted one (its inbox now answers 204): it leaves the list.
	r := ts.do(t, http.MethodPost, d503.Links.Redeliver, key, nil, "Idempotency-Key", "dead-letter-1")
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", d503.Links.Redeliver, r.StatusCode, r.body)
	}
	ts.mustDeliveryLog(t, key, exhausted, func(l deliveryLog) bool { return l.State == "delivered" }, nil)
	ts.mustList(t, key, "/v1/webhooks/dead-letters", &l)
	if len(l.DeadLetters) != 1 || l.DeadLetters[0].ImportID != disabled {
		t.Errorf("after redelivering one: %+v, want only the disabled one", l)
	}
}
