package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkScale holds 100,000 jobs in flight and 10,000 open event streams
// in one process and reports memory per job and per stream, goroutines per
// stream, how long one pass of the sweeper (watchdog and janitor) takes
// over that many jobs, and the delay from a state change (a cancel) to its
// event on the stream, p50/p99/max over every stream.
//
//	go test ./sandbox/internal/app -run '^$' -bench Scale -benchtime 1x
//
// Each stream is one HTTP/1.1 connection, so 10,000 streams need 20,000
// descriptors in this process (both ends); the benchmark raises
// RLIMIT_NOFILE when it may, and opens fewer streams when it may not.
// Memory per stream includes the client's end (a goroutine and a 1 KiB
// reader), kept as small as possible.
func BenchmarkScale(b *testing.B) {
	jobs, streams := 100_000, 10_000
	if testing.Short() {
		jobs, streams = 10_000, 1_000
	}
	streams = min(streams, raiseNoFile(b, 2*streams+1000)/2-500)
	for range b.N {
		scaleOnce(b, jobs, streams)
	}
}

// raiseNoFile raises the descriptor limit to want if it can and answers
// the limit in force.
func raiseNoFile(b *testing.B, want int) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur >= uint64(want) {
		return int(lim.Cur)
	}
	next := lim
	next.Cur = uint64(want)
	next.Max = max(lim.Max, uint64(want))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
		next.Cur = lim.Max // at least the soft limit up to the hard one
		next.Max = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
			return int(lim.Cur)
		}
	}
	return int(next.Cur)
}

func scaleOnce(b *testing.B, jobs, streams int) {
	cfg := testConfig()
	cfg.TimeScale = 1
	cfg.QueueSize = jobs + 1000 // the default (10,000) is the first thing that breaks: POSTs answer 503
	cfg.Workers = 256
	cfg.MaxKeys = jobs/jobsPerKey + 10
	cfg.MaxStreams = jobsPerKey
	// Every key and stream comes from one network (loopback).
	cfg.Shares.JobsPerNetwork = cfg.QueueSize
	cfg.Shares.StreamsPerNetwork, cfg.Shares.StreamsTotal = max(streams, jobsPerKey), max(streams, jobsPerKey)
	s, err := New(cfg, Deps{DB: newTestDB(b, ""), River: fastRiver, Policies: noRateLimits()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cancel()
		c, done := context.WithTimeout(context.Background(), 30*time.Second)
		defer done()
		_ = s.Close(c)
	}()
	h := s.Handler()
	call := func(method, path, key, body string) *httptest.ResponseRecorder {
		var req *http.Request
		if body != "" {
			req = httptest.NewRequest(method, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
		} else {
			req = httptest.NewRequest(method, path, nil)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	keys := make([]string, jobs/jobsPerKey+1)
	for i := range keys {
		rec := call(http.MethodPost, "/v1/sandbox/keys", "", "")
		var k struct{ Key string }
		if err := json.Unmarshal(rec.Body.Bytes(), &k); err != nil || rec.Code != http.StatusCreated {
			b.Fatalf("POST /v1/sandbox/keys: %d %s", rec.Code, rec.Body)
		}
		keys[i] = k.Key
	}

	// 100,000 jobs in flight: 256 processing, the rest queued, all for ten
	// simulated minutes.
	before := memNow()
	locs := make([]string, jobs)
	t0 := time.Now()
	for i := range jobs {
		rec := call(http.MethodPost, "/v1/reports", keys[i/jobsPerKey], reportJSON)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("job %d: POST /v1/reports: %d %s", i, rec.Code, rec.Body)
		}
		locs[i] = rec.Header().Get("Location")
	}
	acceptRate := float64(jobs) / time.Since(t0).Seconds()
	withJobs := memNow()
	b.ReportMetric(float64(withJobs.heap-before.heap)/float64(jobs), "heap-B/job")
	b.ReportMetric(acceptRate, "accepts/s")
	b.ReportMetric(float64(withJobs.goroutines), "goroutines-with-jobs")

	t0 = time.Now()
	if err := s.Engine().Sweep(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, "sweep-ms")

	// 10,000 event streams, one per job, each on its own connection.
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	type seen struct {
		i  int
		at time.Time
	}
	ready := make(chan error, streams)
	heard := make(chan seen, streams)
	conns := make([]net.Conn, 0, streams)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := range streams {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatalf("stream %d: %v (descriptors?)", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET %s/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", locs[i], addr, keys[i/jobsPerKey])
		go func() {
			r := bufio.NewReaderSize(c, 1024)
			first := true
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					if first {
						ready <- fmt.Errorf("stream %d: %w", i, err)
					}
					return
				}
				switch {
				case first && string(line) == "\n":
					first = false
					ready <- nil
				case string(line) == "event: canceled\n":
					heard <- seen{i, time.Now()}
					return
				}
			}
		}()
	}
	for range streams {
		if err := <-ready; err != nil {
			b.Fatal(err)
		}
	}
	withStreams := memNow()
	b.ReportMetric(float64(withStreams.heap-withJobs.heap)/float64(streams), "heap-B/stream")
	b.ReportMetric(float64(withStreams.stack-withJobs.stack)/float64(streams), "stack-B/stream")
	b.ReportMetric(float64(withStreams.goroutines-withJobs.goroutines)/float64(streams), "goroutines/stream")
	b.ReportMetric(float64(streams), "streams")

	// One state change at a time with every stream open: the delay from a
	// cancel to its event on that job's stream, over a sample of streams.
	cancelJob := func(i int) {
		if rec := call(http.MethodDelete, locs[i], keys[i/jobsPerKey], ""); rec.Code != http.StatusOK {
			b.Fatalf("DELETE %s: %d %s", locs[i], rec.Code, rec.Body)
		}
	}
	sample := min(200, streams)
	delays := make([]time.Duration, 0, sample)
	for i := range sample {
		at := time.Now()
		cancelJob(i)
		select {
		case s := <-heard:
			if s.i != i {
				b.Fatalf("stream %d heard a cancel of job %d", s.i, i)
			}
			delays = append(delays, s.at.Sub(at))
		case <-time.After(10 * time.Second):
			b.Fatalf("stream %d did not hear its cancel", i)
		}
	}
	slices.Sort(delays)
	q := func(f float64) float64 {
		return float64(delays[min(len(delays)-1, int(f*float64(len(delays))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.5), "event-p50-ms")
	b.ReportMetric(q(0.99), "event-p99-ms")

	// Then every other streamed job at once: how long until the last
	// stream has heard.
	t0 = time.Now()
	for i := sample; i < streams; i++ {
		cancelJob(i)
	}
	timeout := time.After(60 * time.Second)
	for n := sample; n < streams; n++ {
		select {
		case <-heard:
		case <-timeout:
			b.Fatalf("only %d of %d streams heard their cancel", n-sample, streams-sample)
		}
	}
	b.ReportMetric(float64(time.Since(t0).Milliseconds()), "all-cancels-heard-ms")
}

type memSample struct {
	heap, stack uint64
	goroutines  int
}

func memNow() memSample {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{heap: m.HeapAlloc, stack: m.StackInuse, goroutines: runtime.NumGoroutine()}
}
