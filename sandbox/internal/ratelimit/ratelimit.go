// Package ratelimit limits how often each API key may call the sandbox and how
// many event streams it may hold open, and describes those limits to clients
// with the RateLimit-Policy and RateLimit header fields.
//
// Limits are token buckets from golang.org/x/time/rate, one per (key, policy)
// pair. A policy is named ("poll", "start", …) so the HTTP layer can pick one
// per operation and so the name appears in the header fields.
//
// # Header fields
//
// The fields follow draft-ietf-httpapi-ratelimit-headers-11 (May 2026),
// sections 3 and 4: both are Structured Field Lists (RFC 9651) whose items are
// Strings naming a policy, with Integer parameters in seconds:
//
//	RateLimit-Policy: "poll";q=20;w=2
//	RateLimit: "poll";r=5;t=1
//
// A token bucket with rate R per second and burst B is advertised as a quota
// q=B over a window w=ceil(B/R) seconds (the time an empty bucket takes to
// fill). In RateLimit, r is the whole tokens left and t the seconds until the
// bucket is full again; on a refusal t is the wait until one token is back,
// so "r=0;t=N" and "Retry-After: N" agree. The draft's pk (partition key)
// parameter is not sent: the partition is the caller's own API key, which it
// already knows, and echoing a derived value would add nothing.
//
// Retry-After (RFC 9110 §10.2.3) is sent on refusals only, as delay-seconds
// (digits only, at least 1), never as an HTTP date, so client clock skew does
// not matter.
//
// # Memory
//
// A bucket that has refilled completely behaves exactly like a new one, so it
// is evicted once idle that long: eviction never changes a decision. The
// number of live buckets is also capped (Config.MaxKeys); past the cap new
// keys are refused with ErrTooManyKeys rather than growing without limit.
package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/dunglas/httpsfv"
	"golang.org/x/time/rate"
)

// Header field names written by Headers.
const (
	HeaderPolicy     = "RateLimit-Policy"
	HeaderRateLimit  = "RateLimit"
	HeaderRetryAfter = "Retry-After"
)

// Sentinel errors.
var (
	// ErrUnknownPolicy means Allow was called with a policy name that the
	// Limiter was not configured with: a programming error in the caller.
	ErrUnknownPolicy = errors.New("ratelimit: unknown policy")
	// ErrTooManyKeys means the Limiter already tracks Config.MaxKeys buckets
	// that are still refilling; the caller should answer 503 with Retry-After.
	ErrTooManyKeys = errors.New("ratelimit: too many keys tracked")
	// ErrInvalidConfig wraps every problem found by New.
	ErrInvalidConfig = errors.New("ratelimit: invalid config")
)

// Clock is the time source the Limiter needs. The sandbox's clock package
// satisfies it; tests pass a fake.
type Clock interface {
	Now() time.Time
}

// Policy is one named token bucket shape.
type Policy struct {
	// Name identifies the policy in the header fields; it must be a valid
	// Structured Field String (printable ASCII).
	Name string
	// Rate is the refill rate in requests per second.
	Rate float64
	// Burst is the bucket size: how many requests may arrive at once.
	Burst int
}

// Window is the advertised time window in whole seconds: how long an empty
// bucket takes to fill, rounded up, at least 1.
func (p Policy) Window() int64 {
	return ceilSeconds(time.Duration(float64(p.Burst) / p.Rate * float64(time.Second)))
}

// DefaultPolicies are the sandbox's limits: polling a job may be frequent,
// starting one is rarer.
func DefaultPolicies() []Policy {
	return []Policy{
		{Name: "poll", Rate: 10, Burst: 20},
		{Name: "start", Rate: 2, Burst: 10},
	}
}

// Config configures a Limiter. Zero values take the documented defaults.
type Config struct {
	// Policies defaults to DefaultPolicies.
	Policies []Policy
	// MaxKeys bounds the number of live (key, policy) buckets; default 100 000.
	MaxKeys int
	// SweepEvery is how often idle buckets are looked for; default 1 minute.
	SweepEvery time.Duration
	// MaxConcurrent is how many Acquire holds one key may have; default 5.
	MaxConcurrent int
	// MaxConcurrentPerNetwork is how many AcquireStream holds the keys of
	// one network may have together; default 100. MaxConcurrentTotal is
	// how many all keys may have together; default 5,000.
	MaxConcurrentPerNetwork, MaxConcurrentTotal int
	// Clock defaults to the system clock.
	Clock Clock
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
}

// Decision is the answer to one Allow call.
type Decision struct {
	// Policy is the name of the policy that decided.
	Policy string
	// Allowed reports whether the request may proceed (a token was taken).
	Allowed bool
	// Limit is the policy's quota (its burst).
	Limit int
	// Remaining is the whole tokens left after this request.
	Remaining int
	// Reset is how long until the bucket is full again.
	Reset time.Duration
	// RetryAfter is how long until one token is available; zero when allowed.
	RetryAfter time.Duration
}

// Limiter holds the buckets and stream counts. It is safe for concurrent use.
type Limiter struct {
	policies map[string]Policy
	clock    Clock
	log      *slog.Logger
	maxKeys  int
	sweep    time.Duration
	maxConc  int

	seed   maphash.Seed
	shards [shardCount]shard

	concMu sync.Mutex
	conc   map[string]int

	maxConcNet, maxConcTotal int
	concNet                  map[string]int // AcquireStream holds per network
	concTotal                int
}

const shardCount = 64

type shard struct {
	mu        sync.Mutex
	buckets   map[bucketKey]*bucket
	lastSweep time.Time
}

type bucketKey struct{ key, policy string }

type bucket struct {
	lim    *rate.Limiter
	fullAt time.Time // when the bucket will be full if left alone
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// New checks cfg and returns a Limiter.
func New(cfg Config) (*Limiter, error) {
	if cfg.Policies == nil {
		cfg.Policies = DefaultPolicies()
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = 100_000
	}
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = time.Minute
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = 5
	}
	if cfg.MaxConcurrentPerNetwork == 0 {
		cfg.MaxConcurrentPerNetwork = 100
	}
	if cfg.MaxConcurrentTotal == 0 {
		cfg.MaxConcurrentTotal = 5000
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxKeys < 0 || cfg.SweepEvery < 0 || cfg.MaxConcurrent < 0 || cfg.MaxConcurrentPerNetwork < 0 || cfg.MaxConcurrentTotal < 0 {
		return nil, fmt.Errorf("%w: MaxKeys, SweepEvery and the MaxConcurrent limits must not be negative", ErrInvalidConfig)
	}
	l := &Limiter{
		policies: make(map[string]Policy, len(cfg.Policies)),
		clock:    cfg.Clock,
		log:      cfg.Logger,
		maxKeys:  cfg.MaxKeys,
		sweep:    cfg.SweepEvery,
		maxConc:  cfg.MaxConcurrent,
		seed:     maphash.MakeSeed(),
		conc:     make(map[string]int),

		maxConcNet:   cfg.MaxConcurrentPerNetwork,
		maxConcTotal: cfg.MaxConcurrentTotal,
		concNet:      make(map[string]int),
	}
	for _, p := range cfg.Policies {
		if err := p.validate(); err != nil {
			return nil, err
		}
		if _, dup := l.policies[p.Name]; dup {
			return nil, fmt.Errorf("%w: policy %q defined twice", ErrInvalidConfig, p.Name)
		}
		l.policies[p.Name] = p
	}
	for i := range l.shards {
		l.shards[i].buckets = make(map[bucketKey]*bucket)
	}
	return l, nil
}

func (p Policy) validate() error {
	if p.Name == "" {
		return fmt.Errorf("%w: a policy has no name", ErrInvalidConfig)
	}
	for i := 0; i < len(p.Name); i++ {
		if c := p.Name[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: policy name %q must be printable ASCII", ErrInvalidConfig, p.Name)
		}
	}
	if !(p.Rate > 0) || math.IsInf(p.Rate, 0) {
		return fmt.Errorf("%w: policy %q needs a finite rate above 0, got %v", ErrInvalidConfig, p.Name, p.Rate)
	}
	if p.Burst < 1 {
		return fmt.Errorf("%w: policy %q needs a burst of at least 1, got %d", ErrInvalidConfig, p.Name, p.Burst)
	}
	return nil
}

// Policy returns the policy with that name.
func (l *Limiter) Policy(name string) (Policy, bool) {
	p, ok := l.policies[name]
	return p, ok
}

// Allow takes one token from key's bucket for the named policy and says
// whether the request may proceed. The error is ErrUnknownPolicy or
// ErrTooManyKeys; the Decision is then a refusal the caller may still use.
func (l *Limiter) Allow(key, policy string) (Decision, error) {
	p, ok := l.policies[policy]
	if !ok {
		return Decision{Policy: policy}, fmt.Errorf("%w: %q", ErrUnknownPolicy, policy)
	}
	now := l.clock.Now()
	refill := time.Duration(float64(p.Burst) / p.Rate * float64(time.Second))

	bk := bucketKey{key, policy}
	sh := &l.shards[maphash.String(l.seed, key)%shardCount]
	sh.mu.Lock()
	if now.Sub(sh.lastSweep) >= l.sweep {
		sh.sweepLocked(now)
	}
	b, found := sh.buckets[bk]
	if !found {
		if len(sh.buckets) >= l.perShardMax() {
			sh.sweepLocked(now)
		}
		if len(sh.buckets) >= l.perShardMax() {
			sh.mu.Unlock()
			l.log.Warn("rate limiter full; refusing a new key", "policy", policy)
			return Decision{Policy: policy, Limit: p.Burst, RetryAfter: time.Second, Reset: time.Second},
				fmt.Errorf("%w: %d buckets", ErrTooManyKeys, l.maxKeys)
		}
		b = &bucket{lim: rate.NewLimiter(rate.Limit(p.Rate), p.Burst)}
		sh.buckets[bk] = b
	}
	allowed := b.lim.AllowN(now, 1)
	tokens := b.lim.TokensAt(now)
	b.fullAt = now.Add(time.Duration((float64(p.Burst) - tokens) / p.Rate * float64(time.Second)))
	sh.mu.Unlock()

	d := Decision{
		Policy:    policy,
		Allowed:   allowed,
		Limit:     p.Burst,
		Remaining: max(0, int(math.Floor(tokens))),
		Reset:     min(refill, time.Duration((float64(p.Burst)-tokens)/p.Rate*float64(time.Second))),
	}
	if !allowed {
		d.RetryAfter = max(time.Nanosecond, time.Duration((1-tokens)/p.Rate*float64(time.Second)))
	}
	return d, nil
}

// perShardMax spreads MaxKeys over the shards (rounded up).
func (l *Limiter) perShardMax() int {
	return (l.maxKeys + shardCount - 1) / shardCount
}

// sweepLocked drops buckets that are full by now: they are indistinguishable
// from new ones.
func (sh *shard) sweepLocked(now time.Time) {
	for k, b := range sh.buckets {
		if !now.Before(b.fullAt) {
			delete(sh.buckets, k)
		}
	}
	sh.lastSweep = now
}

// Len reports how many buckets are live (for tests and metrics).
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.buckets)
		sh.mu.Unlock()
	}
	return n
}

// Sweep evicts every bucket that has refilled completely. Allow already
// sweeps each shard every Config.SweepEvery; call Sweep from a janitor if
// traffic is too sparse for that.
func (l *Limiter) Sweep() {
	now := l.clock.Now()
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		sh.sweepLocked(now)
		sh.mu.Unlock()
	}
}

// Headers returns the RateLimit-Policy and RateLimit fields describing d
// under p, plus Retry-After when d is a refusal. See the package doc for the
// mapping from token buckets to the draft's parameters.
//
// Every rate-limited request pays for this, so the common case (a policy
// name of printable ASCII, integers in the Structured Field range) is
// written by hand, byte for byte what httpsfv writes (FuzzHeaders checks
// that); anything else goes through httpsfv.
func Headers(d Decision, p Policy) http.Header {
	t := d.Reset
	if !d.Allowed {
		t = d.RetryAfter
	}
	q, w, r, tt := int64(p.Burst), p.Window(), int64(max(0, d.Remaining)), ceilSecondsOrZero(t)
	if !sfIntegers(q, w, r, tt) || !printableASCII(p.Name) {
		return headersSFV(d, p)
	}
	h := make(http.Header, 3)
	name := appendSFString(make([]byte, 0, len(p.Name)+2), p.Name)
	pol := append(append(name, ";q="...), strconv.FormatInt(q, 10)...)
	pol = append(append(pol, ";w="...), strconv.FormatInt(w, 10)...)
	h.Set(HeaderPolicy, string(pol))
	cur := append(append(name[:len(name):len(name)], ";r="...), strconv.FormatInt(r, 10)...)
	cur = append(append(cur, ";t="...), strconv.FormatInt(tt, 10)...)
	h.Set(HeaderRateLimit, string(cur))
	if !d.Allowed {
		h.Set(HeaderRetryAfter, strconv.FormatInt(ceilSeconds(d.RetryAfter), 10))
	}
	return h
}

// headersSFV is Headers through httpsfv, for what the fast path does not take.
func headersSFV(d Decision, p Policy) http.Header {
	h := make(http.Header, 3)

	pol := httpsfv.NewItem(p.Name)
	pol.Params.Add("q", int64(p.Burst))
	pol.Params.Add("w", p.Window())
	if v, err := httpsfv.Marshal(httpsfv.List{pol}); err == nil {
		h.Set(HeaderPolicy, v)
	}

	t := d.Reset
	if !d.Allowed {
		t = d.RetryAfter
	}
	cur := httpsfv.NewItem(p.Name)
	cur.Params.Add("r", int64(max(0, d.Remaining)))
	cur.Params.Add("t", ceilSecondsOrZero(t))
	if v, err := httpsfv.Marshal(httpsfv.List{cur}); err == nil {
		h.Set(HeaderRateLimit, v)
	}

	if !d.Allowed {
		h.Set(HeaderRetryAfter, strconv.FormatInt(ceilSeconds(d.RetryAfter), 10))
	}
	return h
}

// sfIntegers reports whether every n fits a Structured Field Integer
// (RFC 9651 §3.3.1: at most 15 digits).
func sfIntegers(ns ...int64) bool {
	const limit = 999_999_999_999_999
	for _, n := range ns {
		if n > limit || n < -limit {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// appendSFString appends s (printable ASCII) as a Structured Field String:
// quoted, with backslash and double quote escaped (RFC 9651 §4.1.6).
func appendSFString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// ceilSeconds rounds d up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int64 {
	return max(1, ceilSecondsOrZero(d))
}

func ceilSecondsOrZero(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// Acquire takes one of key's concurrent-stream slots. When ok, the caller
// must call release once the stream ends (calling it again does nothing).
// When the key already holds Config.MaxConcurrent slots, or the process
// Config.MaxConcurrentTotal, ok is false. AcquireStream also counts the
// key's network, and says which share refused.
func (l *Limiter) Acquire(key string) (release func(), ok bool) {
	release, err := l.AcquireStream(key, "")
	return release, err == nil
}

// Streams reports how many slots key holds.
func (l *Limiter) Streams(key string) int {
	l.concMu.Lock()
	defer l.concMu.Unlock()
	return l.conc[key]
}
