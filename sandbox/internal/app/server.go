// Package app assembles the sandbox: configuration, the job engine, the API,
// the static site, and the HTTP server, plus the `serve` and `openapi`
// commands that sandbox/main.go hands off to. Tests start the same Server on
// 127.0.0.1:0 that production runs.
package app

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/accepted-dev/accepted/internal/staticfiles"
	"github.com/accepted-dev/accepted/sandbox/internal/api"
	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/exports"
	"github.com/accepted-dev/accepted/sandbox/internal/idempotency"
	"github.com/accepted-dev/accepted/sandbox/internal/imports"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/keys"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/ratelimit"
	"github.com/accepted-dev/accepted/sandbox/internal/reports"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/telemetry"
)

// Version of the API, as published in the spec.
const Version = "1.0.0"

// Server is one sandbox: its engine, its API and its HTTP handler, on a
// database it is given.
type Server struct {
	cfg     Config
	log     *slog.Logger
	clock   clock.Clock
	db      sqldb.DB
	queue   sqldb.Queue
	engine  *jobs.Engine
	idem    *idempotency.Store
	catalog *problems.Catalog
	api     huma.API
	limiter *ratelimit.Limiter
	keys    *keys.Store
	handler http.Handler
	// shortcut answers the common poll ahead of Huma (api.Register).
	shortcut func(http.Handler) http.Handler
	hooks    *webhookParts // imports' webhooks, secrets and inboxes (webhooks.go)
	metrics  *telemetry.Metrics
	tracing  *telemetry.Tracing
	ops      opsServers // the operator's listeners (ops.go)

	draining atomic.Bool // a shutdown began: /readyz answers 503
}

// Deps are what a Server takes from outside; zero values get defaults,
// but for DB.
type Deps struct {
	// DB is where everything lives, migrated (OpenDatabase, then Migrate).
	DB     sqldb.DB
	Logger *slog.Logger
	Clock  clock.Clock
	// Site is the built static site; nil serves the API only.
	Site fs.FS
	// Policies replaces the rate-limit policies (DefaultPolicies, with
	// Config.RateLimits' rates); Config.RateLimits.Off still lifts them.
	Policies []ratelimit.Policy
	// CheckCallback replaces the parse-time check of callback URLs (tests
	// of the connect-time check let through what a DNS-rebinding host would).
	CheckCallback func(raw string) error
	// River tunes the job queue (tests make it poll faster); nil keeps
	// the defaults of RiverConfig.
	River func(*river.Config)
	// Fault injects failures at named points, for tests (api.Deps.Fault).
	Fault func(point string) error
	// Registry is where the metrics are registered (served by
	// -metrics-addr); nil makes a registry of the Server's own.
	Registry *prometheus.Registry
	// Tracing traces requests, job runs and webhooks (telemetry.FromEnv);
	// nil records no spans but still gives every request a trace id.
	Tracing *telemetry.Tracing

	backend string // tests: the database newSandbox opens when DB is nil
}

// DefaultPolicies are the sandbox's rate limits: polling may be brisk,
// starting jobs less so, and key creation (per client network) is rare.
func DefaultPolicies() []ratelimit.Policy {
	return []ratelimit.Policy{
		{Name: api.PolicyPoll, Rate: 10, Burst: 20},
		{Name: api.PolicyStart, Rate: 5, Burst: 20},
		{Name: api.PolicyKeys, Rate: 0.5, Burst: 10},
	}
}

// apiLimiter is the limiter the API applies: none with -rate-limits off
// (a nil *ratelimit.Limiter in the interface would not read as none).
func apiLimiter(l *ratelimit.Limiter, r RateLimits) api.Limiter {
	if r.Off {
		return nil
	}
	return l
}

// idempotencyTTL is how long Idempotency-Key records are kept.
const idempotencyTTL = 24 * time.Hour

// New builds a sandbox on d.DB. It starts nothing: call Start (or Run).
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.DB == nil {
		return nil, errors.New("app: Deps.DB is nil: open the database with OpenDatabase")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = clock.Real()
	}
	if d.Policies == nil {
		d.Policies = cfg.RateLimits.policies()
	}
	d.Policies = cfg.Shares.inboxPolicies(d.Policies)
	shares := cfg.Shares.withDefaults()
	s := &Server{cfg: cfg, log: d.Logger, clock: d.Clock, db: d.DB, catalog: problems.New(cfg.DocsBase), tracing: d.Tracing}
	if s.tracing == nil {
		s.tracing = telemetry.Untraced()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s.metrics = telemetry.NewMetrics(d.Registry)
	var err error
	// Imports' webhooks, signing secrets and the built-in inbox (webhooks.go).
	s.hooks, err = newWebhooks(cfg, d, s, func() http.Handler { return s.handler })
	if err != nil {
		return nil, err
	}
	s.engine, err = jobs.New(jobs.Config{
		DB: d.DB, Clock: d.Clock, Logger: d.Logger.With("component", "jobs"),
		Workers: cfg.Workers, QueueSize: cfg.QueueSize, Retention: cfg.Retention, MaxUnfinishedPerOwner: cfg.MaxJobsPerKey,
		MaxUnfinishedPerNetwork: shares.JobsPerNetwork, GuaranteedPerOwner: shares.GuaranteedJobs,
		Kinds:    map[jobs.Kind]jobs.Work{reports.Kind: reports.Work(), exports.Kind: exports.Work(), imports.Kind: imports.Work()},
		OnFinish: []func(context.Context, sqldb.Tx, jobs.Job) error{s.hooks.onFinish, s.countFinish},
		// A fake clock moves only when a test says: a job waiting for its
		// next step looks at it often, so it notices promptly.
		MaxSnooze: maxSnooze(d.Clock),
		// River's rescuer runs every 30 s on the leader, whose lease lasts
		// up to 15 s after it died.
		RescueGrace: RiverConfig(cfg, d.Logger).RescueStuckJobsAfter + 45*time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("building the job engine: %w", err)
	}
	s.limiter, err = ratelimit.New(ratelimit.Config{
		Clock: d.Clock, Logger: d.Logger.With("component", "ratelimit"),
		Policies: d.Policies, MaxConcurrent: cfg.MaxStreams,
		MaxConcurrentPerNetwork: shares.StreamsPerNetwork, MaxConcurrentTotal: shares.StreamsTotal,
	})
	if err != nil {
		return nil, fmt.Errorf("building the rate limiter: %w", err)
	}
	s.idem = idempotency.New(d.DB, idempotency.Config{TTL: idempotencyTTL, Clock: d.Clock, Logger: d.Logger.With("component", "idempotency")})
	s.keys, err = keys.NewStore(keys.Config{
		DB: d.DB, Now: d.Clock.Now, Logger: d.Logger.With("component", "keys"),
		Max: cfg.MaxKeys, MaxPerNetwork: shares.KeysPerNetwork, TTL: shares.KeyTTL,
		// What belongs only to a deleted key: its inboxes (secrets and
		// disabled endpoints the key store deletes itself).
		OnDelete: []func(context.Context, sqldb.Tx, string) error{s.hooks.inboxes.DropOwner},
	})
	if err != nil {
		return nil, fmt.Errorf("building the key store: %w", err)
	}

	workers := river.NewWorkers()
	if err := s.engine.Register(workers); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &housekeepingWorker{s: s}); err != nil {
		return nil, fmt.Errorf("registering River workers: %w", err)
	}
	hookJobs, err := s.hooks.register(workers)
	if err != nil {
		return nil, err
	}
	rc := RiverConfig(cfg, d.Logger)
	rc.Workers = workers
	rc.PeriodicJobs = append(append(s.engine.PeriodicJobs(), housekeepingJob()), hookJobs...)
	name, qc := webhookQueue()
	rc.Queues[name] = qc
	// Job runs and deliveries join the trace of whatever queued them.
	rc.Middleware = append(rc.Middleware, telemetry.NewRiverMiddleware(s.tracing.Provider, s.tracing.Propagator))
	if d.River != nil {
		d.River(rc)
	}
	if s.queue, err = d.DB.NewQueue(rc); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	s.api = humago.New(mux, api.Config("Accepted sandbox", Version))
	describe(s.api.OpenAPI(), cfg, publicURL(cfg))
	s.shortcut = api.Register(s.api, api.Deps{
		Engine: countingEngine{s.engine, s.metrics}, Keys: s.keys, Catalog: s.catalog,
		Clock: d.Clock, Logger: d.Logger.With("component", "api"), Scale: cfg.TimeScale,
		Limiter: countingLimiterOf(apiLimiter(s.limiter, cfg.RateLimits), s.metrics), Retention: cfg.Retention, Webhooks: s.hooks.api,
		Idempotency: s.idem, IdempotencyTTL: idempotencyTTL, Fault: d.Fault,
	})
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	s.metrics.SetDepths(s.depths)
	// Outermost: the request's span (continuing a traceparent sent), then
	// its Trace-Id header and its metrics, by the route the mux matched.
	s.handler = s.tracing.Server(behindProxies(cfg.TrustedProxies, telemetry.Observe(s.metrics, s.routes(mux, d.Site))),
		func(r *http.Request) string { return cmp.Or(r.Pattern, r.Method) })
	return s, nil
}

// maxSnooze is how long a job waiting for its next step goes unlooked-at:
// the engine's default on the wall clock; briefly on a fake clock, which
// moves only when a test says, so the job notices promptly.
func maxSnooze(clk clock.Clock) time.Duration {
	if clk == clock.Real() {
		return 0
	}
	return 10 * time.Millisecond
}

// RiverConfig is how the sandbox runs River: a queue for job steps as
// wide as -workers, one for maintenance; fetching often enough that a
// step due now starts within tens of milliseconds; River's own rows of
// finished jobs kept an hour (the jobs table keeps what clients read).
func RiverConfig(cfg Config, log *slog.Logger) *river.Config {
	return &river.Config{
		Logger: log.With("component", "river"),
		Queues: map[string]river.QueueConfig{
			jobs.QueueJobs:        {MaxWorkers: cfg.Workers, FetchPollInterval: 50 * time.Millisecond},
			jobs.QueueMaintenance: {MaxWorkers: 2},
		},
		FetchCooldown:               10 * time.Millisecond,
		FetchPollInterval:           200 * time.Millisecond,
		CompletedJobRetentionPeriod: time.Hour,
		CancelledJobRetentionPeriod: time.Hour,
		// A step takes milliseconds, a webhook attempt at most its timeout
		// (10 s, scaled): a River job running longer than this lost its
		// worker with its replica, and River's rescuer (every 30 s, on the
		// leader) hands it to another.
		JobTimeout:           jobs.RunTimeout,
		RescueStuckJobsAfter: max(30*time.Second, time.Duration(float64(10*time.Second)*cfg.TimeScale)+20*time.Second),
	}
}

// localURL is where `make run` serves the sandbox, named in the spec's
// servers so that a reader of any copy knows how to run one of their own.
const localURL = "http://localhost:8080"

// describe fills in what the spec says about the API as a whole: who
// publishes it under which license, and the servers it is reached at. The
// first server is where this sandbox answers (-public-url, or the address
// it listens on, which is where the spec is served from); a published
// sandbox also names a local one.
func describe(oapi *huma.OpenAPI, cfg Config, self string) {
	oapi.Info.Contact = &huma.Contact{Name: "Accepted", URL: strings.TrimRight(cfg.DocsBase, "/") + "/"}
	// A URL rather than an SPDX identifier: OpenAPI 3.0, which the
	// downgraded copy is, has no identifier field.
	oapi.Info.License = &huma.License{Name: "MIT", URL: "https://opensource.org/license/mit"}
	local := &huma.Server{URL: self, Description: "A sandbox on your own machine (make run serves one here)"}
	if cfg.PublicURL == "" {
		oapi.Servers = []*huma.Server{local}
		return
	}
	local.URL = localURL
	oapi.Servers = []*huma.Server{{URL: strings.TrimRight(cfg.PublicURL, "/"), Description: "This sandbox"}, local}
}

// API is the Huma API, for the spec and for tests.
func (s *Server) API() huma.API { return s.api }

// Catalog is the error catalog.
func (s *Server) Catalog() *problems.Catalog { return s.catalog }

// Engine is the job engine, for tests.
func (s *Server) Engine() *jobs.Engine { return s.engine }

// JobCount is how many jobs the database holds, tombstones included, for
// tests that check nothing was created.
func (s *Server) JobCount(ctx context.Context) (int, error) {
	var n int
	err := s.db.Read().QueryRow(ctx, `SELECT COUNT(*) FROM jobs`).Scan(&n)
	return n, err
}

// DB is the database the sandbox runs on.
func (s *Server) DB() sqldb.DB { return s.db }

// Handler is the whole HTTP surface: API, spec, health, and site.
func (s *Server) Handler() http.Handler { return s.handler }

// Start starts background work on ctx, which must outlive every request:
// jobs keep running after the 202 is sent. It recovers what an earlier
// run left (see jobs.Engine.Recover) and starts River.
func (s *Server) Start(ctx context.Context) error {
	if err := s.engine.Start(ctx); err != nil {
		return fmt.Errorf("starting the job engine: %w", err)
	}
	if err := s.hooks.start(ctx); err != nil {
		return err
	}
	if err := s.queue.Start(ctx); err != nil {
		return fmt.Errorf("starting the job queue: %w", err)
	}
	return nil
}

// Close stops River, letting steps in progress finish until ctx ends (what
// is left runs again at the next start, or on another replica), then ends
// event streams and the webhooks. The database stays open: its opener
// closes it.
func (s *Server) Close(ctx context.Context) error {
	s.engine.Drain()
	err := s.queue.Stop(ctx)
	s.keys.Close(ctx)
	return errors.Join(err, s.engine.Close(ctx), s.hooks.close(ctx, s.log))
}

// healthz is liveness: the process answers. It asks nothing of the
// database, so a database outage does not get replicas restarted.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok"})
}

// readyz is readiness: the database answers within a second, and this
// replica is not shutting down. A load balancer sends traffic only to a
// ready replica. Not ready is a problem: shutting_down or
// database_unavailable.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	var err error
	switch {
	case s.draining.Load():
		err = jobs.ErrClosed
	default:
		if perr := s.db.Ping(ctx); perr != nil {
			err = fmt.Errorf("%w: %w", api.ErrDatabaseUnavailable, perr)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		writeProblem(w, api.ProblemFor(s.catalog, err, r.URL.Path))
		return
	}
	body := map[string]any{"status": "ready", "database": s.db.Describe()}
	if st, err := s.engine.Stats(ctx); err == nil {
		body["queued"], body["running"] = st.Queued, st.Running
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// routes puts the API and the site behind one handler, answers unknown API
// paths and wrong methods with catalog problems (the standard mux answers
// them in plain text), and sets the security headers.
func (s *Server) routes(mux *http.ServeMux, site fs.FS) http.Handler {
	var static http.Handler
	if site != nil {
		static = siteHandler(site)
	}
	apiHandler := cors(s.cfg.CORSOrigins, s.shortcut(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			s.notRouted(w, r, mux)
			return
		}
		mux.ServeHTTP(w, r)
	})))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		if !s.framed(w, r) {
			return
		}
		isAPI := strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || strings.HasPrefix(r.URL.Path, "/openapi")
		if !isAPI && static != nil {
			h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
			static.ServeHTTP(w, r)
			return
		}
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		apiHandler.ServeHTTP(w, r)
	})
}

// notRouted answers a request no operation matched: 405 with Allow when the
// path exists for other methods, else 404.
func (s *Server) notRouted(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	writeProblem(w, api.ProblemFor(s.catalog, api.RouteError{Method: r.Method, Path: r.URL.Path, Allow: allow}, r.URL.Path))
}

// writeProblem answers p from a plain handler, with the trace id the
// response names (telemetry.Observe set it).
func writeProblem(w http.ResponseWriter, p *problems.Problem) {
	if id := w.Header().Get(telemetry.TraceIDHeader); id != "" && p.TraceID == "" {
		cp := *p
		cp.TraceID = id
		p = &cp
	}
	for k, vs := range p.GetHeaders() {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// siteHandler serves the built site (precompressed gzip and brotli, hashed
// assets cached as immutable), with its own 404 page. It answers GET
// and HEAD only (405 with Allow otherwise: files are not written through
// the site), and never lists a directory: one without an index.html is
// not a page, so it answers the 404 page.
func siteHandler(site fs.FS) http.Handler {
	return staticfiles.New(site, staticfiles.Options{
		MethodNotAllowed: "405 Method Not Allowed: the site's pages answer GET and HEAD only. The API is under /v1/.",
	})
}

// Run serves until ctx is cancelled, then shuts down gracefully: it stops
// accepting connections, lets requests in flight finish, and stops the
// engine, each within a deadline.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	if s.cfg.PublicURL == "" {
		// -addr may name port 0 or a host name: the listener knows the
		// address clients (and the inbox URLs) must use.
		u := listenURL(s.cfg.Addr, ln.Addr().String())
		if err := s.hooks.setPublicURL(u); err != nil {
			return err
		}
		describe(s.api.OpenAPI(), s.cfg, u)
	}
	if err := s.Start(bg); err != nil {
		return err
	}
	if err := s.serveOps(bg); err != nil {
		return errors.Join(err, s.shutdownOps(context.Background()), s.Close(context.Background()))
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return bg },
		ConnContext:       withFraming,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(framingListener{ln}) }()
	s.log.Info("sandbox listening", "url", "http://"+ln.Addr().String(), "site", s.cfg.SiteDir != "", "time_scale", s.cfg.TimeScale, "database", s.db.Describe())
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	return s.shutdown(srv, stop)
}

// shutdown stops gracefully, in an order that loses nothing accepted:
//  1. drain: for -drain-period the server keeps answering, so clients can
//     still poll and stream, but new jobs get 503 shutting_down with
//     Retry-After and /readyz answers 503, so a load balancer moves on;
//  2. stop River: steps in progress get up to -shutdown-timeout to finish;
//     jobs not finished stay in the database, and go on at the next start
//     or on another replica (so do webhooks waiting for a retry);
//  3. end the event streams and stop the HTTP server.
func (s *Server) shutdown(srv *http.Server, endStreams context.CancelFunc) error {
	s.log.Info("shutting down: accepting no new jobs", "drain_period", s.cfg.DrainPeriod, "wait_for_steps", s.cfg.ShutdownTimeout)
	s.draining.Store(true)
	s.engine.Drain()
	if s.cfg.DrainPeriod > 0 {
		time.Sleep(s.cfg.DrainPeriod)
	}
	drain, cancelDrain := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancelDrain()
	var err error
	if cerr := s.Close(drain); cerr != nil {
		err = fmt.Errorf("stopping the job queue: %w", cerr)
	}
	endStreams()
	closing, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelClose()
	if serr := srv.Shutdown(closing); serr != nil {
		err = errors.Join(err, fmt.Errorf("stopping the HTTP server: %w", serr))
	}
	if serr := s.shutdownOps(closing); serr != nil {
		err = errors.Join(err, fmt.Errorf("stopping the operator listeners: %w", serr))
	}
	s.log.Info("stopped: unfinished jobs go on at the next start")
	return err
}

// siteFS opens the site directory, checking it holds a built site.
func siteFS(dir string) (fs.FS, error) {
	if dir == "" {
		return nil, nil
	}
	site := os.DirFS(dir)
	if _, err := fs.Stat(site, "index.html"); err != nil {
		return nil, fmt.Errorf("-site-dir %s has no index.html (build it with `make site`): %w", dir, err)
	}
	return site, nil
}

// ---- Request framing: Content-Length with Transfer-Encoding (RFC 9112 §6.1) ----
//
// net/http reads a request that has both Content-Length and
// Transfer-Encoding: chunked by the chunked coding alone, deletes
// Content-Length from the header before any handler runs, and keeps the
// connection open for the next request. (It already refuses the other
// ambiguous forms itself: two different Content-Lengths or a malformed one
// get 400, any Transfer-Encoding other than one "chunked" 501, and a space
// before a header's colon 400, each closing the connection.) RFC 9112 §6.1
// says such a request "ought to be handled as an error" and that the server
// MUST close the connection after answering it: a proxy in front that went
// by Content-Length would take the rest of the chunked body for the next
// request (request smuggling). An HTTP/1.0 request with Transfer-Encoding
// is as ambiguous (net/http reads it by Content-Length, and hides the
// Transfer-Encoding too). Only the bytes on the wire tell, so each
// connection is followed as net/http reads it (framingConn), and framed
// refuses those requests with 400 malformed_request and Connection: close.

// maxHeaderBytes is http.Server.MaxHeaderBytes; net/http reads a header
// block of up to 4 KiB more before it answers 431.
const maxHeaderBytes = 32 << 10

// framing is what the wire said about one request's header block.
type framing struct {
	line     string // the request line
	length   bool   // a Content-Length field
	transfer bool   // a Transfer-Encoding field
}

// framingListener hands net/http connections that follow their framing.
// The sandbox serves plain HTTP/1.1 (TLS ends at a proxy in front); under
// a TLS listener the wrapping would go beneath the TLS layer, which it
// would otherwise hide from net/http.
type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
}

type framingKey struct{}

// withFraming is http.Server.ConnContext: requests find their connection.
func withFraming(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingKey{}, fc)
	}
	return ctx
}

// framingConn reads the header block of each request as net/http reads it,
// skipping bodies by their Content-Length. After a request with
// Transfer-Encoding it stops following (stopped): net/http refuses what is
// not one "chunked", and framed closes the connection after a chunked
// request, so no request after it is served. So does every form net/http
// refuses and answers by closing. A request the connection was not followed
// up to is refused if it could be ambiguous (fail closed).
type framingConn struct {
	net.Conn

	mu      sync.Mutex
	head    []byte // the header block read so far
	scanned int    // how much of head has been searched for its end
	skip    int64  // body bytes left before the next header block
	stopped bool
	heads   []framing // read and not yet taken by a handler, oldest first
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.follow(p[:n])
		c.mu.Unlock()
	}
	return n, err
}

// follow takes the next bytes net/http read.
func (c *framingConn) follow(b []byte) {
	for len(b) > 0 && !c.stopped {
		if c.skip > 0 {
			n := min(c.skip, int64(len(b)))
			c.skip, b = c.skip-n, b[n:]
			continue
		}
		before := len(c.head)
		c.head = append(c.head, b...)
		end := c.headerEnd()
		if end < 0 {
			if len(c.head) > maxHeaderBytes+4096 {
				c.stopped = true // net/http answers 431 and closes
			}
			return
		}
		b = b[end-before:]
		c.parse(c.head[:end])
		c.head, c.scanned = c.head[:0], 0
	}
}

// headerEnd is the length of the header block at the start of c.head,
// through the empty line that ends it, or -1 while it is incomplete. Lines
// end in LF with an optional CR before it, as net/textproto reads them.
func (c *framingConn) headerEnd() int {
	for {
		i := bytes.IndexByte(c.head[c.scanned:], '\n')
		if i < 0 {
			return -1
		}
		line := c.head[c.scanned : c.scanned+i]
		c.scanned += i + 1
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			return c.scanned
		}
	}
}

// parse records one header block and how the body after it is framed.
func (c *framingConn) parse(block []byte) {
	var (
		f        framing
		length   string // the first Content-Length value
		value    []byte // the Content-Length value being read: it may be folded
		inLength bool
	)
	for l := range bytes.Lines(block) {
		l = bytes.TrimSuffix(bytes.TrimSuffix(l, []byte("\n")), []byte("\r"))
		if f.line == "" {
			if len(l) == 0 || len(c.heads) >= 256 {
				c.stopped = true // net/http answers an empty request line 400
				return
			}
			f.line = string(l)
			continue
		}
		if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
			if inLength { // obsolete line folding, joined as net/textproto does
				value = append(append(value, ' '), bytes.TrimSpace(l)...)
			}
			continue
		}
		if inLength {
			if !c.sameLength(&length, bytes.TrimSpace(value)) {
				return
			}
			inLength = false
		}
		if len(l) == 0 {
			break // the empty line that ends the block
		}
		name, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			c.stopped = true // net/http answers 400
			return
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			f.length, inLength, value = true, true, append(value[:0], bytes.TrimSpace(v)...)
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			f.transfer = true
		}
	}
	c.heads = append(c.heads, f)
	switch {
	case f.transfer:
		c.stopped = true
	case f.length:
		n, err := strconv.ParseInt(length, 10, 64)
		if err != nil || strings.TrimLeft(length, "0123456789") != "" {
			c.stopped = true // net/http answers 400
			return
		}
		c.skip = n
	}
}

// sameLength keeps the first Content-Length value in *length, and stops
// following when a later one differs (net/http answers 400).
func (c *framingConn) sameLength(length *string, value []byte) bool {
	if *length == "" {
		*length = string(value)
		return true
	}
	if *length != string(value) {
		c.stopped = true
		return false
	}
	return true
}

// CloseWrite and ReadFrom reach the TCP connection, as net/http expects of
// the connections it serves: a half-close before closing (so that a client
// still sending gets the answer, not a reset) and sendfile for files.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *framingConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

// next takes the framing of r: the oldest header block read that matches
// its request line. Older ones net/http answered without the handler
// (OPTIONS *).
func (c *framingConn) next(r *http.Request) (framing, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.heads) > 0 {
		f := c.heads[0]
		c.heads = c.heads[:copy(c.heads, c.heads[1:])]
		if m, rest, _ := strings.Cut(f.line, " "); m == r.Method {
			if uri, proto, _ := strings.Cut(rest, " "); uri == r.RequestURI && proto == r.Proto {
				return f, true
			}
		}
	}
	return framing{}, false
}

// framed refuses a request whose length the wire left ambiguous, with 400
// malformed_request and Connection: close, and closes the connection after
// every chunked request (framingConn does not follow a chunked body). It
// reports whether the request may go on. Without a framingConn (a test's
// httptest server) there is nothing to check.
func (s *Server) framed(w http.ResponseWriter, r *http.Request) bool {
	fc, _ := r.Context().Value(framingKey{}).(*framingConn)
	if fc == nil {
		return true
	}
	f, known := fc.next(r)
	chunked, old := len(r.TransferEncoding) > 0, !r.ProtoAtLeast(1, 1)
	if !chunked && !old {
		return true // net/http saw no Transfer-Encoding: none was sent
	}
	var detail string
	switch {
	case !known && chunked:
		detail = "The sandbox could not tell how this chunked request was framed on this connection. Send it again on a new connection."
	case !known:
		detail = "The sandbox could not tell how this HTTP/1.0 request was framed on this connection. Send it again on a new connection, with HTTP/1.1."
	case f.transfer && old:
		detail = "The request is HTTP/1.0 and has Transfer-Encoding, which HTTP/1.0 does not define, so its length is ambiguous (RFC 9112 §6.1). " +
			"Send it with HTTP/1.1, or with Content-Length alone. The sandbox closed the connection."
	case f.transfer && f.length:
		detail = "The request has both Content-Length and Transfer-Encoding, so its length is ambiguous (RFC 9112 §6.1): a proxy could read it one way and the sandbox another. " +
			"Send one of them: Content-Length for a body of known size, or Transfer-Encoding: chunked alone. The sandbox closed the connection."
	}
	if chunked {
		w.Header().Set("Connection", "close")
	}
	if detail == "" {
		return true
	}
	w.Header().Set("Connection", "close")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	p := s.catalog.New(problems.MalformedRequest, detail)
	p.Instance = r.URL.Path
	writeProblem(w, p)
	return false
}
