package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/api"
	"github.com/accepted-dev/accepted/sandbox/internal/ratelimit"
)

// Config is everything `serve` can be told, by flag or environment variable.
type Config struct {
	Addr      string
	SiteDir   string
	TimeScale float64
	Retention time.Duration
	LogLevel  slog.Level
	LogFormat string
	DocsBase  string
	Workers   int
	QueueSize int
	MaxKeys   int
	// MaxJobsPerKey bounds one API key's unfinished jobs.
	MaxJobsPerKey int
	// ShutdownTimeout is how long a shutdown waits for steps in progress.
	ShutdownTimeout time.Duration
	// DrainPeriod is how long a shutdown keeps answering (new jobs
	// refused, /readyz 503) before it stops, for load balancers to notice.
	DrainPeriod time.Duration
	// MaxStreams is how many event streams one API key may hold open.
	MaxStreams int
	// CORSOrigins may call the API from a browser on another origin.
	CORSOrigins []string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (see proxy.go).
	TrustedProxies []netip.Prefix
	// PublicURL is where clients reach the sandbox (http://<addr> when
	// empty): inbox URLs and the links in webhooks start with it.
	PublicURL string
	// AllowPrivateCallbacks lets webhooks reach loopback and private
	// addresses, for receivers on the operator's own machine or network.
	AllowPrivateCallbacks bool
	// Database names where everything lives: a SQLite file path (the
	// default, DefaultDatabase), "memory" for a database that ends with
	// the process, or a postgres:// URL for many replicas.
	Database string
	// Migrate applies the database migrations at start; without it a
	// database that is not at this binary's version is refused.
	Migrate bool
	// RateLimits are the request rate limits (-rate-poll, -rate-start,
	// -rate-keys, -rate-limits); the zero value is DefaultPolicies.
	RateLimits RateLimits
	// Shares are the per-network shares and expiries (shares.go).
	Shares FairShares
	// Ops are the operator's listeners: metrics and River UI (ops.go).
	Ops Ops
}

// DefaultDatabase is the SQLite file `serve` uses when -database is not
// given: in a data directory under the working directory (git ignores it).
const DefaultDatabase = ".data/sandbox.db"

// envPrefix starts every environment variable the sandbox reads.
const envPrefix = "ACCEPTED_"

// flagSet declares the serve flags on fs, each defaulting to its environment
// variable when that is set. Parse errors of environment values are returned
// through errs so that `serve` can refuse to start with a clear message.
func bindFlags(fs *flag.FlagSet, cfg *Config, getenv func(string) string) (errs func() error) {
	var envErrs []error
	env := func(name, def string) string {
		if v := getenv(envPrefix + name); v != "" {
			return v
		}
		return def
	}
	parse := func(name string, def string, into func(string) error) {
		if err := into(env(name, def)); err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s%s: %w", envPrefix, name, err))
		}
	}
	fs.StringVar(&cfg.Addr, "addr", env("ADDR", "127.0.0.1:8080"), "`host:port` to listen on (env ACCEPTED_ADDR)")
	fs.StringVar(&cfg.SiteDir, "site-dir", env("SITE_DIR", ""), "serve the built static site in this `directory` at / (env ACCEPTED_SITE_DIR); empty: API only")
	parse("TIME_SCALE", "1", func(s string) (err error) { cfg.TimeScale, err = strconv.ParseFloat(s, 64); return })
	fs.Float64Var(&cfg.TimeScale, "time-scale", cfg.TimeScale, "how fast simulated work runs: 1 is real time, 0.01 makes a 30 s job take 0.3 s (env ACCEPTED_TIME_SCALE)")
	parse("RETENTION", "24h", func(s string) (err error) { cfg.Retention, err = time.ParseDuration(s); return })
	fs.DurationVar(&cfg.Retention, "retention", cfg.Retention, "how long finished jobs stay readable before the monitor answers 410 Gone (env ACCEPTED_RETENTION)")
	parse("LOG_LEVEL", "info", func(s string) error { return cfg.LogLevel.UnmarshalText([]byte(s)) })
	fs.TextVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log `level`: debug, info, warn or error (env ACCEPTED_LOG_LEVEL)")
	fs.StringVar(&cfg.LogFormat, "log-format", env("LOG_FORMAT", "text"), "log `format`: text or json (env ACCEPTED_LOG_FORMAT)")
	fs.StringVar(&cfg.DocsBase, "docs-base", env("DOCS_BASE", "http://localhost:8080"), "`URL` of the docs site; problem types are <URL>/errors#<code> (env ACCEPTED_DOCS_BASE)")
	parse("WORKERS", "256", func(s string) (err error) { cfg.Workers, err = strconv.Atoi(s); return })
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "job steps this replica runs at once; a job waiting for its next step holds none (env ACCEPTED_WORKERS)")
	parse("QUEUE_SIZE", "10000", func(s string) (err error) { cfg.QueueSize, err = strconv.Atoi(s); return })
	fs.IntVar(&cfg.QueueSize, "queue-size", cfg.QueueSize, "unfinished jobs of all keys together; beyond it POSTs answer 503 (env ACCEPTED_QUEUE_SIZE)")
	parse("MAX_KEYS", "100000", func(s string) (err error) { cfg.MaxKeys, err = strconv.Atoi(s); return })
	fs.IntVar(&cfg.MaxKeys, "max-keys", cfg.MaxKeys, "sandbox API keys kept at most (env ACCEPTED_MAX_KEYS)")
	parse("MAX_JOBS_PER_KEY", "100", func(s string) (err error) { cfg.MaxJobsPerKey, err = strconv.Atoi(s); return })
	fs.IntVar(&cfg.MaxJobsPerKey, "max-jobs-per-key", cfg.MaxJobsPerKey, "unfinished (queued or processing) jobs one API key may have; beyond it POSTs answer 429 (env ACCEPTED_MAX_JOBS_PER_KEY)")
	parse("SHUTDOWN_TIMEOUT", "30s", func(s string) (err error) { cfg.ShutdownTimeout, err = time.ParseDuration(s); return })
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "on SIGINT/SIGTERM, how long to let steps in progress finish (new jobs get 503); unfinished jobs stay in the database and go on at the next start or on another replica (env ACCEPTED_SHUTDOWN_TIMEOUT)")
	parse("DRAIN_PERIOD", "0s", func(s string) (err error) { cfg.DrainPeriod, err = time.ParseDuration(s); return })
	fs.DurationVar(&cfg.DrainPeriod, "drain-period", cfg.DrainPeriod, "on SIGINT/SIGTERM, how long to keep answering (new jobs get 503 shutting_down, /readyz 503) before stopping, so a load balancer moves traffic to other replicas first (env ACCEPTED_DRAIN_PERIOD)")
	parse("MAX_STREAMS", "5", func(s string) (err error) { cfg.MaxStreams, err = strconv.Atoi(s); return })
	fs.IntVar(&cfg.MaxStreams, "max-streams", cfg.MaxStreams, "event streams one API key may hold open at once (env ACCEPTED_MAX_STREAMS)")
	fs.Func("cors-origins", "comma-separated `origins` (such as https://docs.example.com, or *) whose pages may call the API from a browser; empty: same origin only (env ACCEPTED_CORS_ORIGINS)", func(s string) error {
		cfg.CORSOrigins = parseOrigins(s)
		return nil
	})
	cfg.CORSOrigins = parseOrigins(env("CORS_ORIGINS", ""))
	parse("TRUSTED_PROXIES", "", func(s string) (err error) { cfg.TrustedProxies, err = parsePrefixes(s); return })
	fs.Func("trusted-proxies", "comma-separated `addresses` or CIDR prefixes of reverse proxies in front of the sandbox; from them the client's address is the rightmost X-Forwarded-For entry that is not a trusted proxy (env ACCEPTED_TRUSTED_PROXIES); empty: the TCP peer is the client", func(s string) (err error) {
		cfg.TrustedProxies, err = parsePrefixes(s)
		return err
	})
	fs.StringVar(&cfg.PublicURL, "public-url", env("PUBLIC_URL", ""), "`URL` clients reach the sandbox at, such as https://sandbox.example.com; inbox callback URLs and webhook links start with it (env ACCEPTED_PUBLIC_URL); empty: http://<addr>")
	fs.StringVar(&cfg.Database, "database", env("DATABASE_URL", DefaultDatabase), "where state lives: a SQLite file `path`, memory (gone when the process ends), or postgres://user:pass@host/db for many replicas (env ACCEPTED_DATABASE_URL)")
	parse("MIGRATE", "true", func(s string) (err error) { cfg.Migrate, err = strconv.ParseBool(s); return })
	fs.BoolVar(&cfg.Migrate, "migrate", cfg.Migrate, "apply database migrations at start; with -migrate=false a database not at this version is refused (run `sandbox migrate` first) (env ACCEPTED_MIGRATE)")
	parse("ALLOW_PRIVATE_CALLBACKS", "false", func(s string) (err error) { cfg.AllowPrivateCallbacks, err = strconv.ParseBool(s); return })
	fs.BoolVar(&cfg.AllowPrivateCallbacks, "allow-private-callbacks", cfg.AllowPrivateCallbacks, "let webhooks reach loopback, private and link-local addresses, for local receivers; never on a public sandbox (env ACCEPTED_ALLOW_PRIVATE_CALLBACKS)")
	bindRateFlags(fs, cfg, parse)
	bindShareFlags(fs, cfg, parse)
	bindOpsFlags(fs, cfg, env)
	return func() error { return errors.Join(envErrs...) }
}

// Validate reports settings that cannot work, with what to change.
func (c Config) Validate() error {
	var errs []error
	if c.TimeScale <= 0 || c.TimeScale > 100 {
		errs = append(errs, fmt.Errorf("-time-scale %v: must be above 0 and at most 100", c.TimeScale))
	}
	if c.Retention < time.Second {
		errs = append(errs, fmt.Errorf("-retention %s: must be at least 1s", c.Retention))
	}
	if c.Workers < 1 || c.QueueSize < 1 || c.MaxKeys < 1 || c.MaxStreams < 1 || c.MaxJobsPerKey < 1 {
		errs = append(errs, errors.New("-workers, -queue-size, -max-keys, -max-jobs-per-key and -max-streams must be at least 1"))
	}
	if err := c.validateShares(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Ops.validate(c.Addr, c.Database); err != nil {
		errs = append(errs, err)
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("-shutdown-timeout %s: must not be negative", c.ShutdownTimeout))
	}
	if c.DrainPeriod < 0 {
		errs = append(errs, fmt.Errorf("-drain-period %s: must not be negative", c.DrainPeriod))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("-log-format %q: must be text or json", c.LogFormat))
	}
	for _, o := range c.CORSOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			errs = append(errs, fmt.Errorf("-cors-origins: %q is not an origin such as https://docs.example.com", o))
		}
	}
	if !strings.HasPrefix(c.DocsBase, "http://") && !strings.HasPrefix(c.DocsBase, "https://") {
		errs = append(errs, fmt.Errorf("-docs-base %q: must be an http:// or https:// URL", c.DocsBase))
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		errs = append(errs, fmt.Errorf("-public-url %q: must be an http:// or https:// URL", c.PublicURL))
	}
	return errors.Join(errs...)
}

// NewLogger builds the process logger.
func NewLogger(w io.Writer, c Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ---- Rate limits: -rate-poll, -rate-start, -rate-keys, -rate-limits ----

// RateLimits shapes the rate-limit policies. A zero Rate keeps the policy
// of DefaultPolicies, whose values are the flags' defaults (and what the
// committed spec's examples show).
type RateLimits struct {
	Poll, Start, Keys Rate
	// Off lifts the limits, for a load test on a private sandbox: no
	// RateLimit headers, no 429 rate_limited, and no cap on the event
	// streams a key holds open (the API then has no limiter at all).
	Off bool
}

// Rate is a token bucket: PerSecond requests a second on average, Burst at
// once. Its text form is <per second>/<burst>, such as 10/20.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Bounds of a Rate: beyond them a bucket's window (Burst/PerSecond
// seconds, sent in RateLimit-Policy) stops making sense.
const (
	minRate  = 0.001
	maxRate  = 1_000_000
	maxBurst = 1_000_000
)

// MarshalText writes r as <per second>/<burst>.
func (r Rate) MarshalText() ([]byte, error) {
	return []byte(strconv.FormatFloat(r.PerSecond, 'g', -1, 64) + "/" + strconv.Itoa(r.Burst)), nil
}

// UnmarshalText reads <per second>/<burst>, such as 10/20 or 0.5/10.
func (r *Rate) UnmarshalText(b []byte) error {
	const form = "write <requests per second>/<burst>, such as 10/20 (10 a second on average, 20 at once) or 0.5/10"
	rate, burst, ok := strings.Cut(string(b), "/")
	if !ok {
		return fmt.Errorf("%q has no burst: %s", b, form)
	}
	per, err := strconv.ParseFloat(strings.TrimSpace(rate), 64)
	if err != nil || !(per >= minRate && per <= maxRate) {
		return fmt.Errorf("%q: the rate must be a number of requests per second from %g to %g; %s", b, float64(minRate), float64(maxRate), form)
	}
	n, err := strconv.Atoi(strings.TrimSpace(burst))
	if err != nil || n < 1 || n > maxBurst {
		return fmt.Errorf("%q: the burst must be a whole number of requests from 1 to %d; %s", b, maxBurst, form)
	}
	*r = Rate{PerSecond: per, Burst: n}
	return nil
}

// policies are DefaultPolicies with the rates r sets.
func (r RateLimits) policies() []ratelimit.Policy {
	ps := DefaultPolicies()
	for i := range ps {
		set := map[string]Rate{api.PolicyPoll: r.Poll, api.PolicyStart: r.Start, api.PolicyKeys: r.Keys}[ps[i].Name]
		if set != (Rate{}) {
			ps[i].Rate, ps[i].Burst = set.PerSecond, set.Burst
		}
	}
	return ps
}

// bindRateFlags declares the rate-limit flags, each defaulting to its
// environment variable, then to DefaultPolicies.
func bindRateFlags(fs *flag.FlagSet, cfg *Config, parse func(name, def string, into func(string) error)) {
	defaults := map[string]Rate{}
	for _, p := range DefaultPolicies() {
		defaults[p.Name] = Rate{PerSecond: p.Rate, Burst: p.Burst}
	}
	for _, f := range []struct {
		policy, flag, env, what string
		into                    *Rate
	}{
		{api.PolicyPoll, "rate-poll", "RATE_POLL", "reading a job, its events, an inbox or a delivery log, per API key", &cfg.RateLimits.Poll},
		{api.PolicyStart, "rate-start", "RATE_START", "starting a job, creating an inbox or redelivering a webhook, per API key", &cfg.RateLimits.Start},
		{api.PolicyKeys, "rate-keys", "RATE_KEYS", "creating API keys, per client network (the /24 of an IPv4 address, the /64 of an IPv6 one)", &cfg.RateLimits.Keys},
	} {
		def, _ := defaults[f.policy].MarshalText()
		parse(f.env, string(def), func(s string) error { return f.into.UnmarshalText([]byte(s)) })
		fs.TextVar(f.into, f.flag, *f.into, fmt.Sprintf("rate limit of %s: `per-second/burst`, such as 10/20 (10 requests a second on average, 20 at once); 429 rate_limited beyond it (env %s%s)", f.what, envPrefix, f.env))
	}
	setLimits := func(s string) error {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "on":
			cfg.RateLimits.Off = false
		case "off":
			cfg.RateLimits.Off = true
		default:
			return fmt.Errorf("%q: write on, or off to lift every rate limit and the cap on a key's event streams (for a load test on a private sandbox)", s)
		}
		return nil
	}
	parse("RATE_LIMITS", "on", setLimits)
	fs.Func("rate-limits", "`on` (the default) or off: off lifts every rate limit (no RateLimit headers, no 429 rate_limited) and the cap on a key's event streams, for a load test on a private sandbox; never on a public one (env "+envPrefix+"RATE_LIMITS)", setLimits)
}
