package app

// A small HTTP load generator for the loopback benchmarks (load_bench_test.go).
//
// Why not vegeta: github.com/tsenart/vegeta/v12 would be the obvious library,
// but the two things these benchmarks need, a closed loop at fixed
// concurrency and an open loop at a fixed rate that reports percentiles, fit
// in the hundred lines below, while vegeta brings a handful of modules
// (histogram, quantile and DNS-caching libraries) into go.mod for code that
// only tests run. The generator here also measures latency from the moment a
// request was due rather than from when it was sent, so a stalled server
// cannot hide its stalls by slowing the generator down (coordinated omission).

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadTarget builds the i-th request; it must be safe for concurrent use.
type loadTarget func(i int) *http.Request

// loadResult is what one run of the generator saw.
type loadResult struct {
	requests  int
	elapsed   time.Duration
	latencies []time.Duration // sorted
	bad       int             // responses with another status than want, or transport errors
	firstBad  string
}

func (r loadResult) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// merge adds the requests of o, as if they had run one after the other.
func (r loadResult) merge(o loadResult) loadResult {
	r.requests += o.requests
	r.elapsed += o.elapsed
	r.bad += o.bad
	r.firstBad = cmpOrString(r.firstBad, o.firstBad)
	r.latencies = append(r.latencies, o.latencies...)
	slices.Sort(r.latencies)
	return r
}

// quantile answers the q-quantile (0..1) of the latencies, nearest rank.
func (r loadResult) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.latencies))+0.5) - 1
	return r.latencies[min(max(i, 0), len(r.latencies)-1)]
}

// loadClient keeps up to conns connections open to one host, as a
// well-behaved client would, so the benchmarks measure request handling and
// not TCP handshakes.
func loadClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{KeepAlive: -1}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// send does one request and drains the body, so the connection is reused.
func send(c *http.Client, req *http.Request, want int) (ok bool, why string) {
	res, err := c.Do(req)
	if err != nil {
		return false, err.Error()
	}
	if res.StatusCode != want {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 300))
		_ = res.Body.Close()
		return false, res.Status + ": " + string(body)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return true, ""
}

// closedLoop sends n requests from conc workers, each sending its next
// request as soon as the previous answer arrived: the most the server can
// do with conc clients.
func closedLoop(c *http.Client, conc, n int, want int, target loadTarget) loadResult {
	var next atomic.Int64
	lat := make([]time.Duration, n)
	var mu sync.Mutex
	res := loadResult{requests: n}
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := time.Now()
				ok, why := send(c, target(i), want)
				lat[i] = time.Since(t)
				if !ok {
					mu.Lock()
					res.bad++
					res.firstBad = cmpOrString(res.firstBad, why)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(lat)
	res.latencies = lat
	return res
}

// openLoop sends n requests at rate per second whatever the answers do,
// each on its own goroutine (at most maxInFlight at once; beyond that a
// request counts as bad, as a timeout would), and measures each latency
// from the moment it was due.
func openLoop(ctx context.Context, c *http.Client, rate float64, n, maxInFlight, want int, target loadTarget) loadResult {
	interval := time.Duration(float64(time.Second) / rate)
	lat := make([]time.Duration, 0, n)
	var mu sync.Mutex
	res := loadResult{requests: n}
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return res
			}
		}
		select {
		case sem <- struct{}{}:
		default:
			mu.Lock()
			res.bad++
			res.firstBad = cmpOrString(res.firstBad, "too many requests in flight")
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			ok, why := send(c, target(i), want)
			d := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, d)
			if !ok {
				res.bad++
				res.firstBad = cmpOrString(res.firstBad, why)
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(lat)
	res.latencies = lat
	return res
}

func cmpOrString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkLoad fails the benchmark when any request went wrong.
func checkLoad(b *testing.B, name string, r loadResult) {
	b.Helper()
	if r.bad > 0 {
		b.Fatalf("%s: %d of %d requests failed, first: %s", name, r.bad, r.requests, r.firstBad)
	}
}
