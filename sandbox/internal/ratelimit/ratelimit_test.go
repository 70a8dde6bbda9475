package ratelimit

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
)

// newFakeClock is the sandbox's fake clock at a fixed start.
func newFakeClock() *clock.Fake { return clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

func newLimiter(t testing.TB, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

// parsePolicyItem parses a one-item RateLimit-Policy or RateLimit field the
// way a client would, with a Structured Field parser.
func parseItem(t *testing.T, h http.Header, name string) (string, map[string]int64) {
	t.Helper()
	vals := h.Values(name)
	if len(vals) == 0 {
		t.Fatalf("%s missing", name)
	}
	list, err := httpsfv.UnmarshalList(vals)
	if err != nil {
		t.Fatalf("%s %q is not a Structured Field List: %v", name, vals, err)
	}
	if len(list) != 1 {
		t.Fatalf("%s: got %d members, want 1", name, len(list))
	}
	item, ok := list[0].(httpsfv.Item)
	if !ok {
		t.Fatalf("%s: member is %T, want an Item", name, list[0])
	}
	id, ok := item.Value.(string)
	if !ok {
		t.Fatalf("%s: item value is %T, want a String", name, item.Value)
	}
	params := map[string]int64{}
	for _, k := range item.Params.Names() {
		v, _ := item.Params.Get(k)
		n, ok := v.(int64)
		if !ok {
			t.Fatalf("%s: parameter %s is %T, want an Integer", name, k, v)
		}
		params[k] = n
	}
	return id, params
}

func TestConformance(t *testing.T) {
	t.Run("R21_burst_refused_with_retry_after_per_key", func(t *testing.T) {
		clk := newFakeClock()
		l := newLimiter(t, Config{Clock: clk})
		p, _ := l.Policy("poll")
		for i := range p.Burst {
			d, err := l.Allow("key-a", "poll")
			if err != nil || !d.Allowed {
				t.Fatalf("request %d refused inside the burst: %+v %v", i+1, d, err)
			}
			if d.Remaining != p.Burst-i-1 {
				t.Fatalf("request %d: remaining %d, want %d", i+1, d.Remaining, p.Burst-i-1)
			}
		}
		d, err := l.Allow("key-a", "poll")
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			t.Fatal("request past the burst was allowed")
		}
		if d.RetryAfter <= 0 || d.RetryAfter > 100*time.Millisecond {
			t.Fatalf("RetryAfter = %v, want about 1/rate = 100ms", d.RetryAfter)
		}
		h := Headers(d, p)
		if ra := h.Get("Retry-After"); !regexp.MustCompile(`^[0-9]+$`).MatchString(ra) || ra == "0" {
			t.Fatalf("Retry-After = %q, want delay-seconds >= 1", ra)
		}

		// Another key is untouched.
		if d, _ := l.Allow("key-b", "poll"); !d.Allowed || d.Remaining != p.Burst-1 {
			t.Fatalf("key-b affected by key-a: %+v", d)
		}
		// Another policy of the same key is untouched.
		if d, _ := l.Allow("key-a", "start"); !d.Allowed {
			t.Fatalf("policy start affected by poll: %+v", d)
		}
		// After RetryAfter, one request goes through.
		clk.Advance(d.RetryAfter)
		if d, _ := l.Allow("key-a", "poll"); !d.Allowed {
			t.Fatalf("refused after waiting RetryAfter: %+v", d)
		}
	})

	t.Run("R22_ratelimit_fields_parse_as_structured_fields", func(t *testing.T) {
		clk := newFakeClock()
		l := newLimiter(t, Config{Clock: clk})
		p, _ := l.Policy("poll")
		for range 15 {
			if _, err := l.Allow("k", "poll"); err != nil {
				t.Fatal(err)
			}
		}
		d, _ := l.Allow("k", "poll")
		h := Headers(d, p)
		if got := h.Get(HeaderPolicy); got != `"poll";q=20;w=2` {
			t.Errorf("RateLimit-Policy = %s", got)
		}
		if got := h.Get(HeaderRateLimit); got != `"poll";r=4;t=2` {
			t.Errorf("RateLimit = %s", got)
		}
		if h.Get("Retry-After") != "" {
			t.Errorf("Retry-After on an allowed request: %q", h.Get("Retry-After"))
		}
		id, pp := parseItem(t, h, HeaderPolicy)
		if id != "poll" || pp["q"] != 20 || pp["w"] != 2 {
			t.Errorf("policy parsed as %q %v", id, pp)
		}
		id, rp := parseItem(t, h, HeaderRateLimit)
		if id != "poll" || rp["r"] != 4 || rp["t"] < 0 {
			t.Errorf("ratelimit parsed as %q %v", id, rp)
		}

		// Refusal: r=0, t equal to Retry-After.
		for range 10 {
			d, _ = l.Allow("k", "poll")
		}
		if d.Allowed {
			t.Fatal("expected a refusal")
		}
		h = Headers(d, p)
		_, rp = parseItem(t, h, HeaderRateLimit)
		if rp["r"] != 0 || fmt.Sprint(rp["t"]) != h.Get("Retry-After") {
			t.Errorf("refusal: RateLimit %v, Retry-After %q", rp, h.Get("Retry-After"))
		}
	})
}

func TestUnknownPolicy(t *testing.T) {
	l := newLimiter(t, Config{})
	if _, err := l.Allow("k", "nope"); !errors.Is(err, ErrUnknownPolicy) {
		t.Fatalf("err = %v, want ErrUnknownPolicy", err)
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, p := range []Policy{{Name: "", Rate: 1, Burst: 1}, {Name: "x", Rate: 0, Burst: 1}, {Name: "x", Rate: 1, Burst: 0}, {Name: "a\nb", Rate: 1, Burst: 1}} {
		if _, err := New(Config{Policies: []Policy{p}}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: err = %v, want ErrInvalidConfig", p, err)
		}
	}
}

func TestEvictionKeepsMemoryBounded(t *testing.T) {
	clk := newFakeClock()
	l := newLimiter(t, Config{Clock: clk, SweepEvery: time.Second, MaxKeys: 64})
	for i := range 32 {
		for range 10 { // drain the bucket: start is 2/s burst 10
			// A full shard refuses new keys: that is the bound at work.
			if _, err := l.Allow(fmt.Sprint("key-", i), "start"); err != nil && !errors.Is(err, ErrTooManyKeys) {
				t.Fatal(err)
			}
		}
	}
	if l.Len() == 0 {
		t.Fatal("no buckets tracked")
	}
	// An empty start bucket is full 5 s later; then it is evicted.
	clk.Advance(4 * time.Second)
	l.Sweep()
	if l.Len() == 0 {
		t.Fatal("buckets evicted before they refilled")
	}
	clk.Advance(time.Second)
	l.Sweep()
	if n := l.Len(); n != 0 {
		t.Fatalf("%d buckets left after refill", n)
	}

	// Past the cap, new keys are refused instead of growing the map.
	var full int
	for i := range 10_000 {
		if _, err := l.Allow(fmt.Sprint("flood-", i), "start"); errors.Is(err, ErrTooManyKeys) {
			full++
		}
	}
	if full == 0 {
		t.Fatal("never refused a key past MaxKeys")
	}
	if n := l.Len(); n > 64+shardCount {
		t.Fatalf("%d buckets live, cap is about 64", n)
	}
	// Once refilled, the flood is swept and new keys fit again.
	clk.Advance(6 * time.Second)
	if _, err := l.Allow("late", "start"); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}

func TestStreamCap(t *testing.T) {
	l := newLimiter(t, Config{MaxConcurrent: 2})
	r1, ok1 := l.Acquire("k")
	r2, ok2 := l.Acquire("k")
	_, ok3 := l.Acquire("k")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("ok = %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := l.Acquire("other"); !ok {
		t.Fatal("another key was capped")
	}
	r1()
	r1() // a second release must not free another slot
	if got := l.Streams("k"); got != 1 {
		t.Fatalf("Streams = %d after one release, want 1", got)
	}
	if _, ok := l.Acquire("k"); !ok {
		t.Fatal("slot not freed by release")
	}
	if _, ok := l.Acquire("k"); ok {
		t.Fatal("double release freed two slots")
	}
	r2()
}

func TestStreamCapConcurrent(t *testing.T) {
	l := newLimiter(t, Config{MaxConcurrent: 3})
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 100 {
				release, ok := l.Acquire("k")
				if !ok {
					continue
				}
				n := held.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				held.Add(-1)
				release()
			}
		})
	}
	wg.Wait()
	if peak.Load() > 3 {
		t.Fatalf("peak %d concurrent holds, cap 3", peak.Load())
	}
	if l.Streams("k") != 0 {
		t.Fatalf("%d slots leaked", l.Streams("k"))
	}
}

func BenchmarkAllow(b *testing.B) {
	l := newLimiter(b, Config{Policies: []Policy{{Name: "poll", Rate: 1e9, Burst: 1 << 30}}})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("api-key-", i)
	}
	var n atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(n.Add(1)) * 7919
		for pb.Next() {
			i++
			if _, err := l.Allow(keys[i%len(keys)], "poll"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
