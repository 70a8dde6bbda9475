package ratelimit

import (
	"strings"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"
)

// BenchmarkHeaders is the per-request cost of describing a decision: every
// rate-limited operation of the sandbox pays it.
func BenchmarkHeaders(b *testing.B) {
	p := Policy{Name: "poll", Rate: 10, Burst: 20}
	allowed := Decision{Policy: "poll", Allowed: true, Limit: 20, Remaining: 7, Reset: 1300 * time.Millisecond}
	refused := Decision{Policy: "poll", Limit: 20, RetryAfter: 80 * time.Millisecond, Reset: 2 * time.Second}
	b.ReportAllocs()
	for i := range b.N {
		d := allowed
		if i%8 == 0 {
			d = refused
		}
		if h := Headers(d, p); len(h) < 2 {
			b.Fatal(h)
		}
	}
}

// FuzzHeaders checks that the header values, however they are built, are
// the Structured Field Lists httpsfv writes and reads, for any policy name
// New accepts and any decision.
func FuzzHeaders(f *testing.F) {
	f.Add("poll", 10.0, 20, true, 7, int64(1300), int64(0))
	f.Add(`we"ird\name`, 0.5, 1, false, 0, int64(0), int64(999))
	f.Add("x", 1e9, 1000000000, false, -3, int64(-1), int64(1<<40))
	f.Fuzz(func(t *testing.T, name string, rate float64, burst int, allowed bool, remaining int, resetMS, retryMS int64) {
		p := Policy{Name: name, Rate: rate, Burst: burst}
		if p.validate() != nil || rate > 1e12 || burst > 1<<40 {
			return
		}
		d := Decision{Policy: name, Allowed: allowed, Limit: burst, Remaining: remaining,
			Reset: time.Duration(resetMS) * time.Millisecond, RetryAfter: time.Duration(retryMS) * time.Millisecond}
		h := Headers(d, p)
		for _, field := range []string{HeaderPolicy, HeaderRateLimit} {
			v := h.Get(field)
			l, err := httpsfv.UnmarshalList([]string{v})
			if err != nil || len(l) != 1 {
				t.Fatalf("%s: %q does not parse as a one-item list: %v", field, v, err)
			}
			item, ok := l[0].(httpsfv.Item)
			if !ok || item.Value != name {
				t.Fatalf("%s: %q names %v, want %q", field, v, l[0], name)
			}
			want := httpsfv.NewItem(name)
			if field == HeaderPolicy {
				want.Params.Add("q", int64(p.Burst))
				want.Params.Add("w", p.Window())
			} else {
				tt := d.Reset
				if !d.Allowed {
					tt = d.RetryAfter
				}
				want.Params.Add("r", int64(max(0, d.Remaining)))
				want.Params.Add("t", ceilSecondsOrZero(tt))
			}
			if s, _ := httpsfv.Marshal(httpsfv.List{want}); s != v {
				t.Fatalf("%s: %q, httpsfv writes %q", field, v, s)
			}
		}
		if ra := h.Get(HeaderRetryAfter); allowed != (ra == "") || strings.ContainsAny(ra, "-.") {
			t.Fatalf("Retry-After %q with allowed=%v", ra, allowed)
		}
	})
}
