package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/accepted-dev/accepted/sandbox/internal/api"
	"github.com/accepted-dev/accepted/sandbox/internal/callbacks"
	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/inbox"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/outbox"
	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
	"github.com/accepted-dev/accepted/sandbox/internal/secrets"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// publicURL is cfg.PublicURL, or http://<addr> with a wildcard host
// replaced by localhost.
func publicURL(cfg Config) string {
	if cfg.PublicURL != "" {
		return strings.TrimRight(cfg.PublicURL, "/")
	}
	return listenURL(cfg.Addr, cfg.Addr)
}

// listenURL is http://host:port for a server asked to listen on addr that
// listens on actual: the host of addr (localhost for a wildcard) and the
// port of actual, which differs when addr asked for port 0.
func listenURL(addr, actual string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if _, p, err := net.SplitHostPort(actual); err == nil {
		port = p
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// webhookParts are the pieces behind imports' webhooks, all on the
// database: the signing secrets, the built-in inboxes, the outbox that
// delivers (River workers; its client checks addresses at connect time,
// R31, and serves the built-in inbox in-process), the service that makes
// an ended import's webhook, and the API's view of them.
type webhookParts struct {
	secrets *secrets.Store
	inboxes *inbox.Store
	outbox  *outbox.Outbox
	service *callbacks.Service
	api     *api.Webhooks
}

// Sizes of the webhook parts.
const (
	// webhookWorkers is how many deliveries run at once on a replica.
	webhookWorkers = 32
	// webhookSnoozeFakeClock: on a clock other than the wall clock (a
	// test's fake, which only moves when the test moves it) a delivery
	// waiting for its retry looks at the clock this often.
	webhookSnoozeFakeClock = 20 * time.Millisecond
)

// newWebhooks builds the webhook parts on d.DB (s gives the error
// catalog). handler is the server's whole HTTP surface, read when an
// inbox delivery is made (after New has set it). Build them before the job
// engine, whose OnFinish must include the parts' onFinish; then register
// their River workers (register), give River their queue (webhookQueue),
// start them with the server (start) and close them after River stopped
// (close).
func newWebhooks(cfg Config, d Deps, s *Server, handler func() http.Handler) (*webhookParts, error) {
	log := d.Logger.With("component", "webhooks")
	p := &webhookParts{secrets: secrets.New(d.DB, d.Clock, secrets.DefaultGrace)}
	var err error
	shares := cfg.Shares.withDefaults()
	p.inboxes, err = inbox.New(inbox.Config{DB: d.DB, Clock: d.Clock, Logger: log, Secrets: p.secrets.Active,
		MaxBytes: shares.InboxBytes, TTL: shares.InboxTTL})
	if err != nil {
		return nil, err
	}

	policy := safedial.Policy{}
	if cfg.AllowPrivateCallbacks {
		policy.Allow = func(netip.Addr) bool { return true }
	}
	client := policy.Client()
	// Every attempt carries the traceparent of the run that makes it, in
	// the trace of the request that started the job.
	client.Transport = otelhttp.NewTransport(&inboxTransport{parts: p, handler: handler, next: client.Transport},
		otelhttp.WithTracerProvider(s.tracing.Provider), otelhttp.WithPropagators(s.tracing.Propagator))
	var maxSnooze time.Duration
	if d.Clock != clock.Real() {
		maxSnooze = webhookSnoozeFakeClock
	}
	p.outbox, err = outbox.New(outbox.Config{
		DB: d.DB, Client: client, Secrets: p.secrets.Active, Clock: d.Clock, Logger: log,
		TimeScale: cfg.TimeScale, Retention: cfg.Retention, MaxSnooze: maxSnooze,
		MaxPendingPerNetwork:   shares.WebhooksPerNetwork,
		MaxInFlightPerEndpoint: shares.WebhookWorkersPerEndpoint, MaxInFlightPerNetwork: shares.WebhookWorkersPerNetwork,
		UserAgent: "Accepted-Sandbox-Webhooks/1 (+https://www.standardwebhooks.com)",
		// Late: the service is made below, with this outbox.
		Name:      func(u string) string { return p.service.LogName(u) },
		OnAttempt: func(a webhooks.Attempt) { s.metrics.WebhookAttempt(a.Outcome) },
	})
	if err != nil {
		return nil, fmt.Errorf("building the webhook outbox: %w", err)
	}
	check := policy.ValidateURL
	if d.CheckCallback != nil {
		check = d.CheckCallback
	}
	p.service, err = callbacks.New(callbacks.Config{
		Outbox: p.outbox, PublicURL: publicURL(cfg), CheckCallback: check,
		Catalog: s.catalog, Clock: d.Clock, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	p.api = &api.Webhooks{Service: p.service, Secrets: p.secrets, Inboxes: p.inboxes}
	return p, nil
}

// onFinish is the job engine's hook (add it to jobs.Config.OnFinish): the
// webhook of an import that ends is stored, and queued, in the transaction
// that ends it.
func (p *webhookParts) onFinish(ctx context.Context, tx sqldb.Tx, j jobs.Job) error {
	return p.service.OnFinish(ctx, tx, j)
}

// register adds the outbox's River workers to workers and answers its
// periodic jobs, for river.Config.PeriodicJobs.
func (p *webhookParts) register(workers *river.Workers) ([]*river.PeriodicJob, error) {
	if err := p.outbox.Register(workers); err != nil {
		return nil, err
	}
	return p.outbox.PeriodicJobs(), nil
}

// webhookQueue is the River queue that deliveries run in, for
// river.Config.Queues. A delivery's run can last the attempt timeout
// (10 s at time scale 1) plus 30 s: RescueStuckJobsAfter must be longer.
func webhookQueue() (string, river.QueueConfig) {
	return outbox.Queue, river.QueueConfig{MaxWorkers: webhookWorkers, FetchPollInterval: 50 * time.Millisecond}
}

// start follows inbox deliveries, from every replica, for the inboxes'
// event streams, until ctx ends or close.
func (p *webhookParts) start(ctx context.Context) error {
	if err := p.inboxes.Start(ctx); err != nil {
		return fmt.Errorf("starting the inboxes: %w", err)
	}
	return nil
}

// setPublicURL is where clients reach the sandbox, once it listens: inbox
// URLs and the links inside webhooks start with it.
func (p *webhookParts) setPublicURL(u string) error { return p.service.SetPublicURL(u) }

// close ends the inboxes' event streams. Webhooks waiting for a retry stay
// in the database: the next start, or another replica, delivers them.
func (p *webhookParts) close(context.Context, *slog.Logger) error {
	p.inboxes.Close()
	return nil
}

// inboxTransport delivers to the sandbox's own inbox URLs in-process,
// through the server's handler: they are real HTTP requests with real
// headers, but they do not depend on the network, the listener's address or
// the allow-list, so the built-in inbox always works (R31). Every other URL
// goes to next, the safedial transport.
type inboxTransport struct {
	parts   *webhookParts
	handler func() http.Handler
	next    http.RoundTripper
}

func (t *inboxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, ok := t.parts.service.InboxID(req.URL.String()); !ok {
		return t.next.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, inbox.MaxBody+1))
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the webhook body: %w", err)
		}
		body = b
	}
	// The inbox is the sandbox's own: it answers whatever the attempt's
	// deadline, which is there for remote receivers. Its write may wait
	// for the database (SQLite's one writer), and that wait must not turn
	// into a failed delivery; inboxTimeout bounds it.
	// It is the sandbox's own request: no visitor's rate limit applies.
	ctx, cancel := context.WithTimeout(api.FromSandbox(context.WithoutCancel(req.Context())), inboxTimeout)
	defer cancel()
	in := req.Clone(ctx)
	// As a server would see it: canonical header names, a path-only URL.
	in.Header = make(http.Header, len(req.Header)+1)
	for k, vs := range req.Header {
		for _, v := range vs {
			in.Header.Add(k, v)
		}
	}
	in.Header.Set("Content-Length", strconv.Itoa(len(body)))
	in.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath}
	in.RequestURI = req.URL.RequestURI()
	in.Host = req.URL.Host
	in.RemoteAddr = "in-process:0"
	in.Body = io.NopCloser(bytes.NewReader(body))
	in.ContentLength = int64(len(body))
	rec := &recorder{header: http.Header{}}
	t.handler().ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())), ContentLength: int64(rec.body.Len()),
		Request: req,
	}, nil
}

// inboxTimeout bounds an in-process delivery to the built-in inbox.
const inboxTimeout = 10 * time.Second

// recorder is the ResponseWriter of an in-process delivery.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if r.body.Len() < 64<<10 {
		r.body.Write(b[:min(len(b), 64<<10-r.body.Len())])
	}
	return len(b), nil
}
