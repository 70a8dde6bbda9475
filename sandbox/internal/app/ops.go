package app

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"

	"github.com/accepted-dev/accepted/sandbox/internal/api"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/ratelimit"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/telemetry"
)

// ---- What an operator sees: metrics and River UI, on listeners of their own ----

// Ops are the operator's listeners. Both are off by default, and neither
// is ever served on the public listener (-addr): a public sandbox does not
// expose its metrics or its queue by accident.
type Ops struct {
	// MetricsAddr serves Prometheus metrics at /metrics.
	MetricsAddr string
	// RiverUIAddr serves River UI at /riverui/, behind HTTP basic
	// authentication with RiverUIUser and RiverUIPassword (environment
	// only, so they stay out of the process list).
	RiverUIAddr                  string
	RiverUIUser, RiverUIPassword string
}

// minRiverUIPassword is the shortest password River UI is served with:
// it can cancel, retry and delete jobs.
const minRiverUIPassword = 12

func bindOpsFlags(fs *flag.FlagSet, cfg *Config, env func(name, def string) string) {
	fs.StringVar(&cfg.Ops.MetricsAddr, "metrics-addr", env("METRICS_ADDR", ""), "`host:port` of a separate listener serving Prometheus metrics at /metrics and Go's profiles at /debug/pprof/, for operators; never the public one (env ACCEPTED_METRICS_ADDR); empty: no metrics")
	fs.StringVar(&cfg.Ops.RiverUIAddr, "riverui-addr", env("RIVERUI_ADDR", ""),
		"`host:port` of a separate listener serving River UI (the job queue's operator view) at /riverui/, behind basic authentication with ACCEPTED_RIVERUI_USER and ACCEPTED_RIVERUI_PASSWORD, which it requires; works on SQLite and PostgreSQL (env ACCEPTED_RIVERUI_ADDR); empty: off")
	cfg.Ops.RiverUIUser, cfg.Ops.RiverUIPassword = env("RIVERUI_USER", ""), env("RIVERUI_PASSWORD", "")
}

func (o Ops) validate(addr, database string) error {
	var errs []error
	for _, a := range []struct{ flag, value string }{{"-metrics-addr", o.MetricsAddr}, {"-riverui-addr", o.RiverUIAddr}} {
		if a.value != "" && a.value == addr && !strings.HasSuffix(addr, ":0") {
			errs = append(errs, fmt.Errorf("%s %s: must differ from -addr, the public listener", a.flag, a.value))
		}
	}
	if o.MetricsAddr != "" && o.MetricsAddr == o.RiverUIAddr && !strings.HasSuffix(o.MetricsAddr, ":0") {
		errs = append(errs, fmt.Errorf("-metrics-addr and -riverui-addr are both %s: give each a listener of its own", o.MetricsAddr))
	}
	if o.RiverUIAddr != "" {
		switch {
		case o.RiverUIUser == "" || o.RiverUIPassword == "":
			errs = append(errs, fmt.Errorf("-riverui-addr %s: set %sRIVERUI_USER and %sRIVERUI_PASSWORD too: River UI can cancel, retry and delete jobs, so it is served only behind a password", o.RiverUIAddr, envPrefix, envPrefix))
		case len(o.RiverUIPassword) < minRiverUIPassword:
			errs = append(errs, fmt.Errorf("%sRIVERUI_PASSWORD: use at least %d characters", envPrefix, minRiverUIPassword))
		case strings.Contains(o.RiverUIUser, ":"):
			errs = append(errs, fmt.Errorf("%sRIVERUI_USER: basic authentication cannot carry a user name with a colon", envPrefix))
		}
	}
	return errors.Join(errs...)
}

// opsServers are the operator listeners of a running Server.
type opsServers struct {
	mu      sync.Mutex
	servers []*http.Server
	addrs   map[string]string // "metrics", "riverui" → the address listened on
}

// OpsAddr is the address the operator listener named ("metrics" or
// "riverui") listens on, once Run opened it; "" before, or when it is off.
func (s *Server) OpsAddr(name string) string {
	s.ops.mu.Lock()
	defer s.ops.mu.Unlock()
	return s.ops.addrs[name]
}

// serveOps opens the operator listeners that cfg asks for and serves them
// on bg until shutdownOps.
func (s *Server) serveOps(bg context.Context) error {
	type listener struct {
		name, addr string
		handler    func() (http.Handler, error)
	}
	var ls []listener
	if a := s.cfg.Ops.MetricsAddr; a != "" {
		ls = append(ls, listener{"metrics", a, func() (http.Handler, error) { return s.metricsMux(), nil }})
	}
	if a := s.cfg.Ops.RiverUIAddr; a != "" {
		ls = append(ls, listener{"riverui", a, func() (http.Handler, error) { return s.riverUI(bg) }})
	}
	for _, l := range ls {
		h, err := l.handler()
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("listening on %s for %s: %w", l.addr, l.name, err)
		}
		srv := &http.Server{
			Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
			BaseContext: func(net.Listener) context.Context { return bg },
		}
		s.ops.mu.Lock()
		s.ops.servers = append(s.ops.servers, srv)
		if s.ops.addrs == nil {
			s.ops.addrs = map[string]string{}
		}
		s.ops.addrs[l.name] = ln.Addr().String()
		s.ops.mu.Unlock()
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("operator listener stopped", "listener", l.name, "err", err)
			}
		}()
		s.log.Info("operator listener", "serves", l.name, "url", "http://"+ln.Addr().String()+map[string]string{"metrics": "/metrics", "riverui": "/riverui/"}[l.name])
	}
	return nil
}

// shutdownOps stops the operator listeners, last: metrics stay readable
// while the server drains.
func (s *Server) shutdownOps(ctx context.Context) error {
	s.ops.mu.Lock()
	servers := s.ops.servers
	s.ops.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// metricsMux is the metrics listener: /metrics, and Go's profiles under
// /debug/pprof/ (an operator's view of where the time goes, as the
// performance notes in the README were measured).
func (s *Server) metricsMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 page not found: metrics are at /metrics, profiles at /debug/pprof/", http.StatusNotFound)
	})
	return mux
}

// riverUI is River UI over the sandbox's River client, on either backend
// (River UI has a driver for SQLite and for PostgreSQL), at /riverui/,
// behind basic authentication. Its queries go through the sandbox's
// database handle: on SQLite they queue with the writes.
func (s *Server) riverUI(bg context.Context) (http.Handler, error) {
	log := s.log.With("component", "riverui")
	var (
		h   *riverui.Handler
		err error
	)
	switch q := s.queue.(type) {
	case *sqldb.RiverQueue[*sql.Tx]:
		h, err = newRiverUI(q.Client, log)
	case *sqldb.RiverQueue[pgx.Tx]:
		h, err = newRiverUI(q.Client, log)
	default:
		return nil, fmt.Errorf("-riverui-addr: River UI cannot read this database's queue (%T)", s.queue)
	}
	if err != nil {
		return nil, fmt.Errorf("-riverui-addr: building River UI: %w", err)
	}
	if err := h.Start(bg); err != nil {
		return nil, fmt.Errorf("-riverui-addr: starting River UI: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/riverui/", h)
	mux.Handle("GET /{$}", http.RedirectHandler("/riverui/", http.StatusFound))
	return basicAuth(s.cfg.Ops.RiverUIUser, s.cfg.Ops.RiverUIPassword, "River UI (Accepted sandbox)", mux), nil
}

func newRiverUI[TTx any](c *river.Client[TTx], log *slog.Logger) (*riverui.Handler, error) {
	return riverui.NewHandler(&riverui.HandlerOpts{Endpoints: riverui.NewEndpoints(c, nil), Logger: log, Prefix: "/riverui"})
}

// basicAuth lets through requests with user and password (compared in
// constant time), and answers others 401 with a challenge.
func basicAuth(user, password, realm string, next http.Handler) http.Handler {
	wantUser, wantPass := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		gotUser, gotPass := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		if ok && subtle.ConstantTimeCompare(gotUser[:], wantUser[:])&subtle.ConstantTimeCompare(gotPass[:], wantPass[:]) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
		http.Error(w, "401 Unauthorized: River UI needs the user and password set by ACCEPTED_RIVERUI_USER and ACCEPTED_RIVERUI_PASSWORD", http.StatusUnauthorized)
	})
}

// ---- Counting what happens, for the metrics ----

// countingEngine counts the jobs the API accepts.
type countingEngine struct {
	api.Engine
	m *telemetry.Metrics
}

func (e countingEngine) Submit(ctx context.Context, spec jobs.Spec) (jobs.Job, error) {
	j, err := e.Engine.Submit(ctx, spec)
	if err == nil {
		e.m.JobAccepted(string(j.Kind))
	}
	return j, err
}

// countingLimiter counts the requests the rate limits refuse, by policy
// ("streams" for an event stream over its share).
type countingLimiter struct {
	api.Limiter
	m *telemetry.Metrics
}

func (l countingLimiter) Allow(key, policy string) (ratelimit.Decision, error) {
	d, err := l.Limiter.Allow(key, policy)
	if err == nil && !d.Allowed {
		l.m.RateLimited(policy)
	}
	return d, err
}

func (l countingLimiter) AcquireStream(key, network string) (func(), error) {
	release, err := l.Limiter.AcquireStream(key, network)
	if err != nil {
		l.m.RateLimited("streams")
	}
	return release, err
}

// countingLimiterOf wraps l, keeping none as none.
func countingLimiterOf(l api.Limiter, m *telemetry.Metrics) api.Limiter {
	if l == nil {
		return nil
	}
	return countingLimiter{l, m}
}

// countFinish is the job engine's hook that counts jobs ending, once the
// transaction that ends them commits.
func (s *Server) countFinish(_ context.Context, tx sqldb.Tx, j jobs.Job) error {
	kind, status, stalled := string(j.Kind), string(j.Status), j.Failure != nil && j.Failure.Code == jobs.CodeStalled
	tx.AfterCommit(func() { s.metrics.JobFinished(kind, status, stalled) })
	return nil
}

// depths are the database gauges of a scrape.
func (s *Server) depths(ctx context.Context) (telemetry.Depths, error) {
	st, err := s.engine.Stats(ctx)
	if err != nil {
		return telemetry.Depths{}, err
	}
	pending, dead, err := s.hooks.outbox.Depth(ctx)
	if err != nil {
		return telemetry.Depths{}, err
	}
	return telemetry.Depths{JobsQueued: st.Queued, JobsRunning: st.Running, WebhooksPending: pending, WebhooksDead: dead}, nil
}
