// Package app assembles the sandbox: configuration, the job engine, the API,
// the static site, and the HTTP server, plus the `serve` and `openapi`
// commands that sandbox/main.go hands off to. Tests start the same Server on
// 127.0.0.1:0 that production runs.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/accepted-dev/accepted/sandbox/internal/api"
	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/exports"
	"github.com/accepted-dev/accepted/sandbox/internal/idempotency"
	"github.com/accepted-dev/accepted/sandbox/internal/imports"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/keys"
	"github.com/accepted-dev/accepted/sandbox/internal/memstore"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/ratelimit"
	"github.com/accepted-dev/accepted/sandbox/internal/reports"
)

// Version of the API, as published in the spec.
const Version = "1.0.0"

// Server is one sandbox: its engine, its API and its HTTP handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	clock   clock.Clock
	engine  *jobs.Engine
	store   *memstore.Store
	catalog *problems.Catalog
	api     huma.API
	limiter *ratelimit.Limiter
	handler http.Handler
	hooks   *webhookParts // imports' webhooks, secrets and inboxes (webhooks.go)
}

// Deps are what a Server takes from outside; zero values get defaults.
type Deps struct {
	Logger *slog.Logger
	Clock  clock.Clock
	// Site is the built static site; nil serves the API only.
	Site fs.FS
	// Policies replaces the rate-limit policies (DefaultPolicies).
	Policies []ratelimit.Policy
	// CheckCallback replaces the parse-time check of callback URLs (tests
	// of the connect-time check let through what a DNS-rebinding host would).
	CheckCallback func(raw string) error
}

// DefaultPolicies are the sandbox's rate limits: polling may be brisk,
// starting jobs less so, and key creation (per client address) is rare.
func DefaultPolicies() []ratelimit.Policy {
	return []ratelimit.Policy{
		{Name: api.PolicyPoll, Rate: 10, Burst: 20},
		{Name: api.PolicyStart, Rate: 5, Burst: 20},
		{Name: api.PolicyKeys, Rate: 0.5, Burst: 10},
	}
}

// New builds a sandbox. It starts nothing: call Start (or Run).
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = clock.Real()
	}
	if d.Policies == nil {
		d.Policies = DefaultPolicies()
	}
	s := &Server{cfg: cfg, log: d.Logger, clock: d.Clock, catalog: problems.New(cfg.DocsBase)}
	s.store = memstore.New()
	engine, err := jobs.New(jobs.Config{
		Clock: d.Clock, Store: s.store, Logger: d.Logger.With("component", "jobs"),
		Workers: cfg.Workers, QueueSize: cfg.QueueSize, Retention: cfg.Retention, MaxActivePerOwner: cfg.MaxJobsPerKey,
		Work: map[jobs.Kind]jobs.Work{
			reports.Kind: reports.Work(d.Clock, cfg.TimeScale),
			exports.Kind: exports.Work(d.Clock, cfg.TimeScale),
			imports.Kind: imports.Work(d.Clock, cfg.TimeScale),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("building the job engine: %w", err)
	}
	s.engine = engine
	s.limiter, err = ratelimit.New(ratelimit.Config{
		Clock: d.Clock, Logger: d.Logger.With("component", "ratelimit"),
		Policies: d.Policies, MaxConcurrent: cfg.MaxStreams,
	})
	if err != nil {
		return nil, fmt.Errorf("building the rate limiter: %w", err)
	}

	const idempotencyTTL = 24 * time.Hour
	idem := idempotency.NewMemory(idempotency.Config{TTL: idempotencyTTL, Clock: d.Clock, Logger: d.Logger.With("component", "idempotency")})

	// Imports' webhooks, signing secrets and the built-in inbox (webhooks.go).
	s.hooks, err = newWebhooks(cfg, d, s, func() http.Handler { return s.handler })
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	s.api = humago.New(mux, api.Config("Accepted sandbox", Version))
	describe(s.api.OpenAPI(), cfg, publicURL(cfg))
	api.Register(s.api, api.Deps{
		Engine: engine, Keys: keys.NewRegistry(cfg.MaxKeys, d.Clock.Now), Catalog: s.catalog,
		Clock: d.Clock, Logger: d.Logger.With("component", "api"), Scale: cfg.TimeScale,
		Limiter: s.limiter, Retention: cfg.Retention, Webhooks: s.hooks.api,
		Idempotency: idem, IdempotencyTTL: idempotencyTTL,
	})
	mux.HandleFunc("GET /healthz", s.healthz)
	s.handler = s.routes(mux, d.Site)
	return s, nil
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

// JobCount is how many jobs the store holds, for tests that check nothing
// was created.
func (s *Server) JobCount(ctx context.Context) (int, error) { return s.store.Count(ctx) }

// Handler is the whole HTTP surface: API, spec, health, and site.
func (s *Server) Handler() http.Handler { return s.handler }

// Start starts background work (workers, sweeper) on ctx, which must outlive
// every request: jobs keep running after the 202 is sent.
func (s *Server) Start(ctx context.Context) { s.engine.Start(ctx) }

// Close stops the engine, waiting for running work up to ctx's deadline,
// then the webhooks.
func (s *Server) Close(ctx context.Context) error {
	err := s.engine.Close(ctx)
	return errors.Join(err, s.hooks.close(ctx, s.log))
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	st := s.engine.Stats()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "queued": st.Queued, "running": st.Running})
}

// routes puts the API and the site behind one handler, answers unknown API
// paths and wrong methods with catalog problems (the standard mux answers
// them in plain text), and sets the security headers.
func (s *Server) routes(mux *http.ServeMux, site fs.FS) http.Handler {
	var static http.Handler
	if site != nil {
		static = siteHandler(site)
	}
	apiHandler := cors(s.cfg.CORSOrigins, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			s.notRouted(w, r, mux)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		isAPI := strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/healthz" || strings.HasPrefix(r.URL.Path, "/openapi")
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
	p := api.ProblemFor(s.catalog, api.RouteError{Method: r.Method, Path: r.URL.Path, Allow: allow}, r.URL.Path)
	for k, vs := range p.GetHeaders() {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// siteHandler serves the built site, with its own 404 page.
func siteHandler(site fs.FS) http.Handler {
	files := http.FileServerFS(site)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name == "" {
			name = "."
		}
		if _, err := fs.Stat(site, name); err != nil {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			if page, err := fs.ReadFile(site, "404.html"); err == nil {
				_, _ = w.Write(page)
			} else {
				_, _ = w.Write([]byte("<!doctype html><title>Not found</title><p>Not found.</p>"))
			}
			return
		}
		if strings.HasPrefix(name, "assets/") {
			// Asset names carry a content hash, so they never change.
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		files.ServeHTTP(w, r)
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
		if err := s.hooks.api.SetPublicURL(u); err != nil {
			return err
		}
		describe(s.api.OpenAPI(), s.cfg, u)
	}
	s.Start(bg)
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return bg },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("sandbox listening", "url", "http://"+ln.Addr().String(), "site", s.cfg.SiteDir != "", "time_scale", s.cfg.TimeScale)
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	return s.shutdown(srv, stop)
}

// shutdown stops gracefully, in an order that loses nothing accepted:
//  1. drain: the server keeps answering, so clients can still poll and
//     stream, but new jobs get 503 shutting_down with Retry-After, while
//     running jobs get up to -shutdown-timeout to finish;
//  2. close the engine: jobs still unfinished fail with job_interrupted
//     (their owners see a final state, not a job pending forever), and the
//     webhooks still waiting for a retry are logged with their state;
//  3. end the event streams and stop the HTTP server.
func (s *Server) shutdown(srv *http.Server, endStreams context.CancelFunc) error {
	s.log.Info("shutting down: accepting no new jobs", "wait_for_running", s.cfg.ShutdownTimeout)
	drain, cancelDrain := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancelDrain()
	if err := s.engine.Drain(drain); err != nil {
		s.log.Warn("shutting down: jobs left unfinished are failed with job_interrupted", "err", err)
	}
	closing, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelClose()
	var err error
	if cerr := s.Close(closing); cerr != nil {
		err = fmt.Errorf("stopping the engine: %w", cerr)
	}
	endStreams()
	if serr := srv.Shutdown(closing); serr != nil {
		err = errors.Join(err, fmt.Errorf("stopping the HTTP server: %w", serr))
	}
	s.log.Info("stopped")
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
