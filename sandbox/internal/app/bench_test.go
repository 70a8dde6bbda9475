package app

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchSandbox is a sandbox whose limits do not get in the way of a benchmark.
func benchSandbox(b *testing.B) (*Server, string) {
	b.Helper()
	cfg := testConfig()
	cfg.QueueSize, cfg.Workers, cfg.TimeScale, cfg.MaxJobsPerKey = 1_000_000, 64, 1, 1_000_000
	cfg.Shares.JobsPerNetwork = cfg.QueueSize // the load comes from one network
	s, err := New(cfg, Deps{DB: newTestDB(b, ""), River: fastRiver, Policies: noRateLimits()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cancel()
		c, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		_ = s.Close(c)
	})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/sandbox/keys", nil))
	var k struct{ Key string }
	if err := json.Unmarshal(rec.Body.Bytes(), &k); err != nil {
		b.Fatal(err)
	}
	return s, k.Key
}

// bareHandler writes the same JSON a poll returns, with nothing else: the
// floor that the sandbox's overhead (routing, auth, limits, the engine,
// Huma's serialisation) is measured against.
func bareHandler(body []byte, headers http.Header) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range headers {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

// compare runs the sandbox's request and the bare handler's b.N times each
// and reports both, with their ratio (sandbox time over bare time).
func compare(b *testing.B, sandbox func() *httptest.ResponseRecorder, want int, bare http.Handler) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if rec := sandbox(); rec.Code != want {
			b.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body)
		}
	}
	own := time.Since(start)
	b.StopTimer()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	start = time.Now()
	for range b.N {
		bare.ServeHTTP(httptest.NewRecorder(), req)
	}
	floor := time.Since(start)
	b.ReportMetric(float64(floor.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(own)/float64(floor), "x-bare")
}

// BenchmarkAccept measures POST /v1/reports → 202 in process.
func BenchmarkAccept(b *testing.B) {
	s, key := benchSandbox(b)
	h := s.Handler()
	body := `{"from":"2026-01-01","to":"2026-01-31","simulate":{"duration_seconds":600}}`
	send := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/reports", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	first := send()
	compare(b, send, http.StatusAccepted, bareHandler(first.Body.Bytes(), first.Header()))
}

// BenchmarkPoll measures GET /v1/jobs/{id} on a running job in process.
func BenchmarkPoll(b *testing.B) {
	s, key := benchSandbox(b)
	h := s.Handler()
	req := httptest.NewRequest(http.MethodPost, "/v1/reports", strings.NewReader(`{"from":"2026-01-01","to":"2026-01-31","simulate":{"duration_seconds":600}}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	loc := rec.Header().Get("Location")
	poll := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, loc, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	first := poll()
	compare(b, poll, http.StatusOK, bareHandler(first.Body.Bytes(), first.Header()))
}

// BenchmarkEventFanout opens many event streams on one job over a real
// listener, then cancels the job and measures how long the terminal event
// takes to reach every subscriber. It reports heap bytes per open stream
// and the delay until the last subscriber heard of the change.
func BenchmarkEventFanout(b *testing.B) {
	for _, subscribers := range []int{100, 1000} {
		b.Run(strconv.Itoa(subscribers), func(b *testing.B) {
			cfg := testConfig()
			cfg.TimeScale, cfg.MaxStreams = 1, subscribers
			cfg.Shares.StreamsPerNetwork, cfg.Shares.StreamsTotal = subscribers, subscribers // all from one network
			s, err := New(cfg, Deps{DB: newTestDB(b, ""), River: fastRiver, Policies: noRateLimits()})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := s.Start(ctx); err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: subscribers, MaxConnsPerHost: 0}}
			ts := &testSandbox{s: s, srv: srv, seen: newProblemLog()}
			key := ts.key(b)
			var perStream, delay float64
			for range b.N {
				job := ts.mustStart(b, key, "/v1/reports", reportBody(map[string]any{"duration_seconds": 600}))
				loc := job.Header.Get("Location")
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				done := make(chan time.Time, subscribers)
				ready := make(chan struct{}, subscribers)
				for range subscribers {
					req, _ := http.NewRequest(http.MethodGet, srv.URL+loc+"/events", nil)
					req.Header.Set("Authorization", "Bearer "+key)
					res, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					go func() {
						defer res.Body.Close()
						sc := bufio.NewScanner(res.Body)
						first := true
						for sc.Scan() {
							line := sc.Text()
							if first && line == "" {
								ready <- struct{}{}
								first = false
							}
							if line == "event: canceled" {
								done <- time.Now()
								return
							}
						}
						done <- time.Time{}
					}()
				}
				for range subscribers {
					<-ready
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perStream += float64(after.HeapAlloc-before.HeapAlloc) / float64(subscribers)
				start := time.Now()
				ts.do(b, http.MethodDelete, loc, key, nil)
				var last time.Time
				for range subscribers {
					t := <-done
					if t.IsZero() {
						b.Fatal("a stream ended without the terminal event")
					}
					if t.After(last) {
						last = t
					}
				}
				delay += float64(last.Sub(start).Microseconds())
			}
			b.ReportMetric(perStream/float64(b.N), "heap-B/stream")
			b.ReportMetric(delay/float64(b.N), "µs-to-last-subscriber")
		})
	}
}
