package callbacks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/imports"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/outbox"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
	"github.com/accepted-dev/accepted/sandbox/internal/simulate"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// newService is a service on an outbox on db (nil: an outbox that is
// never asked to deliver).
func newService(t *testing.T, db sqldb.DB, public string) *Service {
	t.Helper()
	if db == nil {
		db = dbtest.Backends()[0].Open(t, dbtest.Logger(t))
	}
	ob, err := outbox.New(outbox.Config{DB: db, Client: safedial.Policy{Allow: netip.Addr.IsLoopback}.Client(), Logger: dbtest.Logger(t),
		TimeScale: 0.001, Secrets: func(context.Context, string) ([]string, error) { return []string{testSecret}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Outbox: ob, PublicURL: public, Catalog: problems.New("https://docs.example"), Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInboxURLs(t *testing.T) {
	s := newService(t, nil, "http://127.0.0.1:8080/")
	id := "inb_" + strings.Repeat("a", 26)
	if got := s.InboxURL(id); got != "http://127.0.0.1:8080/v1/sandbox/inboxes/"+id {
		t.Errorf("InboxURL %q", got)
	}
	for raw, want := range map[string]bool{
		"http://127.0.0.1:8080/v1/sandbox/inboxes/" + id:        true,
		"http://localhost:8080/v1/sandbox/inboxes/" + id:        true, // a loopback alias of the same port
		"http://[::1]:8080/v1/sandbox/inboxes/" + id:            true,
		"http://LOCALHOST:8080/v1/sandbox/inboxes/" + id:        true,
		"http://127.0.0.1:9090/v1/sandbox/inboxes/" + id:        false, // another port
		"https://127.0.0.1:8080/v1/sandbox/inboxes/" + id:       false, // another scheme
		"http://127.0.0.1:8080/v1/sandbox/inboxes/" + id + "?x": false,
		"http://u@127.0.0.1:8080/v1/sandbox/inboxes/" + id:      false,
		"http://127.0.0.1:8080/v1/sandbox/inboxes/inb_short":    false,
		"http://127.0.0.1:8080/v1/sandbox/keys":                 false,
		"http://10.0.0.1:8080/v1/sandbox/inboxes/" + id:         false,
	} {
		if got, ok := s.InboxID(raw); ok != want || ok && got != id {
			t.Errorf("InboxID(%q) = %q, %v; want %v", raw, got, ok, want)
		}
	}
	// Inbox URLs pass the callback check though they are on loopback;
	// nothing else private does.
	if err := s.CheckCallback("http://localhost:8080/v1/sandbox/inboxes/" + id); err != nil {
		t.Errorf("inbox URL refused: %v", err)
	}
	for _, u := range []string{"http://127.0.0.1:8080/v1/sandbox/keys", "http://10.0.0.1/hook", "http://169.254.169.254/"} {
		if err := s.CheckCallback(u); !errors.Is(err, safedial.ErrBlockedAddress) {
			t.Errorf("CheckCallback(%q) = %v, want ErrBlockedAddress", u, err)
		}
	}
	if got := s.LogName("http://127.0.0.1:8080/v1/sandbox/inboxes/" + id); got != "inbox inb_aaaa…" {
		t.Errorf("LogName of an inbox: %q", got)
	}
	if got := s.LogName("https://example.com/hook?token=secret"); strings.Contains(got, "secret") {
		t.Errorf("LogName kept a token: %q", got)
	}
	// A server that learns its port once it listens.
	if err := s.SetPublicURL("http://127.0.0.1:43210"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.InboxID("http://localhost:43210/v1/sandbox/inboxes/" + id); !ok {
		t.Error("the new public URL is not used")
	}
	for _, bad := range []string{"", "ftp://x", "/relative", "http://"} {
		if err := s.SetPublicURL(bad); err == nil {
			t.Errorf("SetPublicURL(%q) accepted", bad)
		}
	}
}

// sandbox is the job engine with the service's OnFinish, and a River
// queue running both, on one database.
type sandbox struct {
	t      *testing.T
	db     sqldb.DB
	engine *jobs.Engine
	svc    *Service
}

func newSandbox(t *testing.T, db sqldb.DB) *sandbox {
	t.Helper()
	log := dbtest.Logger(t)
	ob, err := outbox.New(outbox.Config{DB: db, Client: safedial.Policy{Allow: netip.Addr.IsLoopback}.Client(), Logger: log,
		TimeScale: 0.0001, MinAttemptTimeout: 5 * time.Second, // a slow moment is not a failed attempt
		Secrets: func(context.Context, string) ([]string, error) { return []string{testSecret}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Outbox: ob, PublicURL: "https://sandbox.example.com", Catalog: problems.New("https://docs.example"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := jobs.New(jobs.Config{DB: db, Logger: log, Kinds: map[jobs.Kind]jobs.Work{imports.Kind: imports.Work()},
		OnFinish: []func(context.Context, sqldb.Tx, jobs.Job) error{svc.OnFinish}, MaxSnooze: 10 * time.Millisecond, SweepEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	workers := river.NewWorkers()
	if err := engine.Register(workers); err != nil {
		t.Fatal(err)
	}
	if err := ob.Register(workers); err != nil {
		t.Fatal(err)
	}
	if err := engine.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dbtest.Wait)
		defer cancel()
		if err := engine.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	dbtest.Queue(t, db, log, workers, []string{jobs.QueueJobs, jobs.QueueMaintenance, outbox.Queue}, append(engine.PeriodicJobs(), ob.PeriodicJobs()...))
	return &sandbox{t: t, db: db, engine: engine, svc: svc}
}

// importJob submits an import of rows (SKUs; "SKU=-1" for a negative
// quantity) to callback, as the API does.
func (s *sandbox) importJob(owner, callback string, sc simulate.Scenario, skus ...string) jobs.Job {
	s.t.Helper()
	in := imports.Input{CallbackURL: callback, Scenario: sc}
	for _, sku := range skus {
		q := 5
		if name, _, ok := strings.Cut(sku, "="); ok {
			sku, q = name, -1
		}
		in.Rows = append(in.Rows, imports.Row{SKU: sku, Name: "Product " + sku, Quantity: q, PriceCents: 100})
	}
	b, _ := json.Marshal(in)
	plan, err := imports.Plan(in, 0.001)
	if err != nil {
		s.t.Fatal(err)
	}
	j, err := s.engine.Submit(context.Background(), jobs.Spec{Kind: imports.Kind, Owner: owner, Input: b, Plan: plan})
	if err != nil {
		s.t.Fatal(err)
	}
	return j
}

// waitStatus polls the import's webhook status until cond holds.
func (s *sandbox) waitStatus(owner, jobID, callback string, cond func(Status) bool) Status {
	s.t.Helper()
	var st Status
	dbtest.WaitFor(s.t, "the webhook of "+jobID, func() (bool, string) {
		var err error
		st, err = s.svc.Deliveries(context.Background(), owner, jobID, callback)
		if err != nil {
			return false, err.Error()
		}
		return cond(st), fmt.Sprintf("%+v", st)
	})
	return st
}

func final(st Status) bool { return st.Sent && st.State != outbox.StateSending }

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, answer func(n int) int) (url string, got func() []received) {
	t.Helper()
	var mu sync.Mutex
	var all []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		all = append(all, received{r.Header.Clone(), b})
		n := len(all)
		mu.Unlock()
		w.WriteHeader(answer(n))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook", func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), all...)
	}
}

// TestImportWebhooks follows imports from their job's end to their
// webhook, on every backend: the event of each outcome, its size bound,
// its absolute links, the delivery log and a redelivery.
func TestImportWebhooks(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		s := newSandbox(t, db)
		url, got := newReceiver(t, func(int) int { return http.StatusNoContent })
		event := func(jobID string) (ImportEvent, received) {
			t.Helper()
			st := s.waitStatus("key_a", jobID, url, final)
			if st.State != webhooks.OutcomeDelivered || len(st.Attempts) != 1 || st.EventType == "" {
				t.Fatalf("status %+v", st)
			}
			for _, r := range got() {
				if r.header.Get(webhooks.HeaderID) == st.MessageID {
					var ev ImportEvent
					if err := json.Unmarshal(r.body, &ev); err != nil {
						t.Fatal(err)
					}
					if rep, err := webhooks.Verify(testSecret, r.header, r.body, time.Now(), 0); err != nil || !rep.Valid {
						t.Errorf("the delivery does not verify: %v", err)
					}
					if ev.Type != st.EventType {
						t.Errorf("type %q, logged as %q", ev.Type, st.EventType)
					}
					return ev, r
				}
			}
			t.Fatalf("no delivery with webhook-id %s", st.MessageID)
			return ImportEvent{}, received{}
		}

		j := s.importJob("key_a", url, simulate.Scenario{}, "A-1", "A-2")
		ev, _ := event(j.ID)
		d := ev.Data
		if ev.Type != imports.EventComplete || d.ImportID != ImportID(j.ID) || d.JobID != j.ID || d.Status != "succeeded" || d.TotalRows != 2 || d.Imported != 2 ||
			d.ResultURL != "https://sandbox.example.com/v1/imports/"+ImportID(j.ID) || d.StatusURL != "https://sandbox.example.com/v1/jobs/"+j.ID || d.Error != nil {
			t.Errorf("import.complete: %+v", ev)
		}
		if end, _ := s.engine.Get(ctx, "key_a", j.ID); !ev.Timestamp.Equal(end.FinishedAt) {
			t.Errorf("timestamp %v, want the job's end %v", ev.Timestamp, end.FinishedAt)
		}

		j = s.importJob("key_a", url, simulate.Scenario{}, "B-1", "B-1", "B-2=-1", "B-3")
		if ev, _ := event(j.ID); ev.Type != imports.EventPartial || ev.Data.Imported != 2 || ev.Data.RejectedCount != 2 || len(ev.Data.Rejected) != 2 ||
			ev.Data.Rejected[0].Row != 2 || !strings.Contains(ev.Data.Rejected[0].Reason, "duplicate of row 1") {
			t.Errorf("import.partial: %+v", ev)
		}

		many := make([]string, imports.MaxRows)
		for i := range many {
			many[i] = fmt.Sprintf("OLD-%s-%04d", strings.Repeat("X", 50), i)
		}
		j = s.importJob("key_a", url, simulate.Scenario{}, many...)
		ev, r := event(j.ID)
		if ev.Type != imports.EventFailed || ev.Data.RejectedCount != imports.MaxRows || len(ev.Data.Rejected) != MaxRejectedInEvent || ev.Data.Imported != 0 || ev.Data.ResultURL == "" {
			t.Errorf("import.failed by rejections: %d rejected rows, %+v", len(ev.Data.Rejected), ev.Data.RejectedCount)
		}
		if len(r.body) >= webhooks.PayloadLimit {
			t.Errorf("payload is %d bytes, want under %d", len(r.body), webhooks.PayloadLimit)
		}

		j = s.importJob("key_a", url, simulate.Scenario{Outcome: simulate.OutcomeFail, FailCode: problems.SourceDataInvalid, FailAfter: 0.5}, "C-1")
		if ev, _ := event(j.ID); ev.Type != imports.EventFailed || ev.Data.Status != "failed" || ev.Data.Error == nil ||
			ev.Data.Error.Code != problems.SourceDataInvalid || ev.Data.ResultURL != "" || ev.Data.TotalRows != 1 {
			t.Errorf("import.failed by its job: %+v", ev)
		}

		// Cancelled: import.failed, status canceled.
		j = s.importJob("key_a", url, simulate.Scenario{Duration: time.Hour}, "D-1")
		if _, err := s.engine.Cancel(ctx, "key_a", j.ID); err != nil {
			t.Fatal(err)
		}
		if ev, _ := event(j.ID); ev.Type != imports.EventFailed || ev.Data.Status != "canceled" || ev.Data.Error != nil {
			t.Errorf("cancelled: %+v", ev)
		}

		// Without a callback: no message.
		j = s.importJob("key_a", "", simulate.Scenario{}, "E-1")
		waitEnd(t, s.engine, j)
		if st, err := s.svc.Deliveries(ctx, "key_a", j.ID, ""); err != nil || st.Sent {
			t.Errorf("an import without a callback: %+v %v", st, err)
		}
		if _, err := s.svc.Redeliver(ctx, "key_a", j.ID); !errors.Is(err, outbox.ErrNotSent) {
			t.Errorf("redelivery without a callback: %v", err)
		}

		// Redelivery: same id, one attempt, manual.
		j = s.importJob("key_a", url, simulate.Scenario{}, "F-1")
		st := s.waitStatus("key_a", j.ID, url, final)
		if _, err := s.svc.Redeliver(ctx, "key_b", j.ID); !errors.Is(err, outbox.ErrNotSent) {
			t.Errorf("another owner's redelivery: %v", err)
		}
		id, err := s.svc.Redeliver(ctx, "key_a", j.ID)
		if err != nil || id != st.MessageID {
			t.Fatalf("Redeliver: %q %v", id, err)
		}
		st = s.waitStatus("key_a", j.ID, url, func(st Status) bool { return final(st) && len(st.Attempts) == 2 })
		if a := st.Attempts[1]; !a.Manual || a.Number != 1 || a.Outcome != webhooks.OutcomeDelivered {
			t.Errorf("redelivery: %+v", a)
		}
	})
}

// TestGoneAndEnable: a 410 disables the URL for its owner; Enable (a new
// import naming it) lets it receive again.
func TestGoneAndEnable(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		s := newSandbox(t, db)
		var mu sync.Mutex
		answer := http.StatusGone
		url, _ := newReceiver(t, func(int) int { mu.Lock(); defer mu.Unlock(); return answer })
		j := s.importJob("key_a", url, simulate.Scenario{}, "A-1")
		if st := s.waitStatus("key_a", j.ID, url, final); st.State != webhooks.OutcomeDisabled || !st.Disabled {
			t.Fatalf("after a 410: %+v", st)
		}
		if st, _ := s.svc.Deliveries(ctx, "key_b", j.ID, url); st.Disabled || st.Sent {
			t.Errorf("another owner sees %+v", st)
		}
		mu.Lock()
		answer = http.StatusOK
		mu.Unlock()
		if err := s.svc.Enable(ctx, "key_a", url); err != nil {
			t.Fatal(err)
		}
		j = s.importJob("key_a", url, simulate.Scenario{}, "A-2")
		if st := s.waitStatus("key_a", j.ID, url, final); st.State != webhooks.OutcomeDelivered || st.Disabled {
			t.Errorf("after Enable: %+v", st)
		}
	})
}

func waitEnd(t *testing.T, e *jobs.Engine, j jobs.Job) {
	t.Helper()
	dbtest.WaitFor(t, "the end of "+j.ID, func() (bool, string) {
		got, err := e.Get(context.Background(), j.Owner, j.ID)
		return err == nil && got.Status.Terminal(), fmt.Sprintf("%s %v", got.Status, err)
	})
}

func TestNewConfig(t *testing.T) {
	s := newService(t, nil, "http://localhost:8080")
	if _, err := New(Config{Outbox: s.cfg.Outbox, PublicURL: "http://x", Catalog: nil}); err == nil {
		t.Error("no catalog accepted")
	}
	if _, err := New(Config{Outbox: nil, PublicURL: "http://x", Catalog: s.cfg.Catalog}); err == nil {
		t.Error("no outbox accepted")
	}
	if _, err := New(Config{Outbox: s.cfg.Outbox, PublicURL: "not a url", Catalog: s.cfg.Catalog}); err == nil {
		t.Error("a bad public URL accepted")
	}
}

func TestSameHost(t *testing.T) {
	pub, _ := url.Parse("http://127.0.0.1:8080")
	for raw, want := range map[string]bool{
		"http://127.0.0.1:8080/x": true,
		"http://localhost:8080/x": true,
		"http://LOCALHOST:8080/x": true,
		"http://[::1]:8080/x":     true,
		"http://127.0.0.1:9090/x": false, // another port: another server
		"http://localhost/x":      false,
		"http://10.0.0.1:8080/x":  false,
		"http://example.com:8080": false,
	} {
		u, _ := url.Parse(raw)
		if got := sameHost(u, pub); got != want {
			t.Errorf("sameHost(%s, %s) = %v, want %v", raw, pub, got, want)
		}
	}
	pub, _ = url.Parse("https://sandbox.example.com")
	if u, _ := url.Parse("https://localhost/x"); sameHost(u, pub) {
		t.Error("localhost is not a public host's alias")
	}
}
