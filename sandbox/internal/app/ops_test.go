package app

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/accepted-dev/accepted/sandbox/internal/telemetry"
)

// newServingWithOps runs a sandbox as serve does, with the operator
// listeners cfg asks for, and waits until they listen.
func newServingWithOps(t *testing.T, cfg Config) *serving {
	t.Helper()
	sv := runServing(t, cfg, nil, "")
	t.Cleanup(func() {
		sv.sigterm()
		select {
		case err := <-sv.stopped:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return 20 s after SIGTERM")
		}
	})
	waitFor(t, "the public listener", func() bool {
		res, err := http.Get(sv.srv.URL + "/healthz")
		if err == nil {
			_ = res.Body.Close()
		}
		return err == nil
	})
	for name, addr := range map[string]string{"metrics": cfg.Ops.MetricsAddr, "riverui": cfg.Ops.RiverUIAddr} {
		if addr != "" {
			waitFor(t, "the "+name+" listener", func() bool { return sv.s.OpsAddr(name) != "" })
		}
	}
	return sv
}

// scrape reads the metrics listener: each series ("name{labels}") with its
// value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scraping: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s, want 200 in the text format", res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsListener(t *testing.T) {
	cfg := testConfig()
	cfg.Ops.MetricsAddr = "127.0.0.1:0"
	sv := newServingWithOps(t, cfg)
	addr := sv.s.OpsAddr("metrics")

	// Never on the public listener.
	res, err := http.Get(sv.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the public listener: %d, want 404", res.StatusCode)
	}
	// Go's profiles: on the operators' listener, never on the public one.
	for _, c := range []struct {
		url  string
		want int
	}{{sv.srv.URL + "/debug/pprof/", http.StatusNotFound}, {"http://" + addr + "/debug/pprof/", http.StatusOK}, {"http://" + addr + "/debug/pprof/goroutine?debug=1", http.StatusOK}} {
		res, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d", c.url, res.StatusCode, c.want)
		}
	}

	before := scrape(t, addr)
	for _, series := range []string{"accepted_jobs_queued", "accepted_jobs_running", "accepted_webhook_outbox_depth", "accepted_webhook_dead_letters", "accepted_event_streams_open"} {
		if _, ok := before[series]; !ok {
			t.Errorf("the first scrape has no %s", series)
		}
	}
	if before["accepted_database_up"] != 1 {
		t.Errorf("accepted_database_up = %v, want 1", before["accepted_database_up"])
	}

	key := sv.key(t)
	// A report that succeeds, one that stalls, an import whose webhook
	// goes to the built-in inbox.
	done := sv.mustStart(t, key, "/v1/reports", reportBody(nil))
	stalled := sv.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"outcome": "stall", "duration_seconds": 10}))
	in := sv.mustInbox(t, key)
	imp := sv.mustStart(t, key, "/v1/imports", importBody(in.URL, rows("A", "B")))
	sv.mustFollow(t, key, done.Header.Get("Location"))
	sv.mustFollow(t, key, imp.Header.Get("Location"))
	sv.mustInboxDeliveries(t, key, in.ID, 1, nil)
	waitFor(t, "the stalled job to be failed", func() bool {
		return sv.do(t, http.MethodGet, stalled.Header.Get("Location"), key, nil).json(t)["status"] == "failed"
	})
	// Polling past the poll policy's burst (20) is refused.
	limited := false
	for range 40 {
		if sv.do(t, http.MethodGet, done.Header.Get("Location"), key, nil).StatusCode == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("40 polls at once were never refused")
	}

	var after map[string]float64
	want := map[string]float64{
		`accepted_jobs_accepted_total{kind="report"}`:                                       2,
		`accepted_jobs_accepted_total{kind="import"}`:                                       1,
		`accepted_jobs_finished_total{kind="report",status="succeeded"}`:                    1,
		`accepted_jobs_finished_total{kind="report",status="failed"}`:                       1,
		`accepted_jobs_finished_total{kind="import",status="succeeded"}`:                    1,
		`accepted_jobs_stalled_total{kind="report"}`:                                        1,
		`accepted_webhook_attempts_total{outcome="delivered"}`:                              1,
		`accepted_rate_limited_total{policy="poll"}`:                                        1,
		`accepted_jobs_queued`:                                                              0,
		`accepted_jobs_running`:                                                             0,
		`accepted_webhook_outbox_depth`:                                                     0,
		`accepted_webhook_dead_letters`:                                                     0,
		`accepted_http_request_duration_seconds_count{code="202",route="POST /v1/reports"}`: 2,
	}
	waitFor(t, "the metrics to count what happened", func() bool {
		after = scrape(t, addr)
		for series, v := range want {
			if after[series] != v {
				return false
			}
		}
		return true
	})
	for series, v := range want {
		if after[series] != v {
			t.Errorf("%s = %v, want %v", series, after[series], v)
		}
	}
	if after[`accepted_http_request_duration_seconds_count{code="200",route="GET /v1/jobs/{id}"}`] < 1 {
		t.Errorf("polls are not timed under their route pattern: %v", after)
	}
	for series := range after {
		if strings.Contains(series, "job_") {
			t.Errorf("a series is labelled with a raw path: %s", series)
		}
	}
}

// recordingTracing records every span, sampled, in memory.
func recordingTracing() (*telemetry.Tracing, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	return &telemetry.Tracing{Provider: tp, Propagator: telemetry.Propagator(), Exporter: "memory", Shutdown: tp.Shutdown}, rec
}

func TestTraceFromRequestToWorkerAndWebhook(t *testing.T) {
	tracing, rec := recordingTracing()
	ts := newSandbox(t, nil, func(_ *Config, d *Deps) { d.Tracing = tracing })
	key := ts.key(t)
	in := ts.mustInbox(t, key)

	r := ts.mustStart(t, key, "/v1/imports", importBody(in.URL, rows("A")))
	traceID := r.Header.Get(telemetry.TraceIDHeader)
	if len(traceID) != 32 {
		t.Fatalf("the 202 has Trace-Id %q, want 32 hex digits", traceID)
	}
	if got := r.json(t)["trace_id"]; got != traceID {
		t.Errorf("the job's trace_id is %v, the response's Trace-Id %s", got, traceID)
	}
	polls := ts.mustFollow(t, key, r.Header.Get("Location"))
	last := polls[len(polls)-1]
	if last.Header.Get(telemetry.TraceIDHeader) == traceID {
		t.Errorf("a poll answered with the POST's trace id: each request has its own trace")
	}
	got := ts.do(t, http.MethodGet, r.Header.Get("Location"), key, nil, "Accept", "application/json")
	if id := got.json(t)["trace_id"]; got.StatusCode == http.StatusOK && id != traceID {
		t.Errorf("a later read of the job says trace_id %v, want the POST's %s", id, traceID)
	}

	d := ts.mustInboxDeliveries(t, key, in.ID, 1, nil)[0]
	sc := trace.SpanContextFromContext(telemetry.Propagator().Extract(context.Background(), headerCarrier(d.header("Traceparent"))))
	if sc.TraceID().String() != traceID {
		t.Errorf("the webhook's traceparent %q is not in the POST's trace %s", d.header("Traceparent"), traceID)
	}

	// The POST's span, the runs of the job's River job, and the run that
	// delivered the webhook, all in one trace, each run a child.
	var post, work, deliver sdktrace.ReadOnlySpan
	waitFor(t, "the spans of the delivery to end", func() bool {
		post, work, deliver = nil, nil, nil
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID().String() != traceID {
				continue
			}
			switch s.Name() {
			case "POST /v1/imports":
				post = s
			case "river.work/accepted_job":
				work = s
			case "river.work/accepted_webhook":
				deliver = s
			}
		}
		return post != nil && work != nil && deliver != nil
	})
	if work.Parent().TraceID() != post.SpanContext().TraceID() || !work.Parent().IsValid() {
		t.Errorf("the worker's span is not a child in the POST's trace: parent %v", work.Parent())
	}
	if deliver.Parent().TraceID().String() != traceID {
		t.Errorf("the delivery's span is not in the POST's trace")
	}

	// A request that sends a traceparent continues that trace.
	const sent = "0af7651916cd43dd8448eb211c80319c"
	r2 := ts.mustStartWith(t, key, "/v1/reports", reportBody(nil), "traceparent", "00-"+sent+"-b7ad6b7169203331-01")
	if r2.Header.Get(telemetry.TraceIDHeader) != sent || r2.json(t)["trace_id"] != sent {
		t.Errorf("with a traceparent: Trace-Id %q, trace_id %v, want %s", r2.Header.Get(telemetry.TraceIDHeader), r2.json(t)["trace_id"], sent)
	}

	// Problems carry it too, from Huma and from the server's own routes.
	for _, path := range []string{"/v1/jobs/job_unknown", "/v1/nothing-here"} {
		p := ts.do(t, http.MethodGet, path, key, nil)
		if id := p.Header.Get(telemetry.TraceIDHeader); id == "" || p.json(t)["trace_id"] != id {
			t.Errorf("GET %s: %d, Trace-Id %q, problem trace_id %v: want the same id in both", path, p.StatusCode, id, p.json(t)["trace_id"])
		}
	}
}

// headerCarrier reads a traceparent.
type headerCarrier string

func (c headerCarrier) Get(key string) string {
	if strings.EqualFold(key, "traceparent") {
		return string(c)
	}
	return ""
}
func (headerCarrier) Set(string, string) {}
func (headerCarrier) Keys() []string     { return []string{"traceparent"} }

func TestTraceIDWithoutExporter(t *testing.T) {
	ts := newSandbox(t, nil)
	r := ts.do(t, http.MethodGet, "/healthz", "", nil)
	if id := r.Header.Get(telemetry.TraceIDHeader); len(id) != 32 || id == strings.Repeat("0", 32) {
		t.Errorf("without an exporter, Trace-Id is %q: want an id all the same", id)
	}
}

func TestRiverUIRefusesToStartWithoutCredentials(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"ACCEPTED_RIVERUI_ADDR": "127.0.0.1:0"}, "ACCEPTED_RIVERUI_USER and ACCEPTED_RIVERUI_PASSWORD"},
		{map[string]string{"ACCEPTED_RIVERUI_ADDR": "127.0.0.1:0", "ACCEPTED_RIVERUI_USER": "ops", "ACCEPTED_RIVERUI_PASSWORD": "short"}, "at least 12 characters"},
		{map[string]string{"ACCEPTED_METRICS_ADDR": "127.0.0.1:8080"}, "must differ from -addr"},
	} {
		var stderr strings.Builder
		code := Main(context.Background(), []string{"serve", "-database", "memory"}, func(k string) string { return tc.env[k] }, io.Discard, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("serve with %v: exit %d, %q; want a refusal naming %q", tc.env, code, stderr.String(), tc.want)
		}
	}
}

func TestRiverUIBehindBasicAuth(t *testing.T) {
	cfg := testConfig()
	cfg.Ops = Ops{RiverUIAddr: "127.0.0.1:0", RiverUIUser: "ops", RiverUIPassword: "correct horse battery"}
	sv := newServingWithOps(t, cfg)
	base := "http://" + sv.s.OpsAddr("riverui")
	get := func(path, user, pass string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, c := range [][2]string{{"", ""}, {"ops", "wrong"}, {"nobody", "correct horse battery"}} {
		if res, _ := get("/riverui/", c[0], c[1]); res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("River UI as %q/%q: %d, want 401 with a Basic challenge", c[0], c[1], res.StatusCode)
		}
	}
	if res, body := get("/riverui/", "ops", "correct horse battery"); res.StatusCode != http.StatusOK || !strings.Contains(body, "<html") {
		t.Errorf("River UI with the password: %d, want its page", res.StatusCode)
	}
	key := sv.key(t)
	sv.mustFollow(t, key, sv.mustStart(t, key, "/v1/reports", reportBody(nil)).Header.Get("Location"))
	if res, body := get("/riverui/api/queues", "ops", "correct horse battery"); res.StatusCode != http.StatusOK || !strings.Contains(body, `"jobs"`) {
		t.Errorf("River UI's queue list: %d %s, want the sandbox's queues (on SQLite)", res.StatusCode, body)
	}
	if res, _ := http.Get(sv.srv.URL + "/riverui/"); res != nil {
		_ = res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET /riverui/ on the public listener: %d, want 404", res.StatusCode)
		}
	}
}
