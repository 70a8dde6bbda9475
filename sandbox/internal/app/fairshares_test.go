package app

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/api"
)

// A visitor is a network: these tests send from several, over real
// sockets, by binding the client's end to an address of 127.0.0.0/8
// (every one of which is loopback): 127.0.N.M is in network 127.0.N.0/24.

// visitor sends from one network.
type visitor struct {
	ts   *testSandbox
	host int // next host number in the network
	n    int // the network: 127.0.n.0/24
}

func (ts *testSandbox) from(n int) *visitor {
	return &visitor{ts: ts, n: n, host: 1}
}

// do is testSandbox.do from the visitor's network, each call from the
// next address in it (a client changing address inside its /24 is still
// one visitor).
func (v *visitor) do(t testing.TB, method, path, key string, body []byte) response {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(v.n), byte(v.host))}}
	v.host = v.host%250 + 1
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest(method, v.ts.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s from 127.0.%d.0/24: %v", method, path, v.n, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{res, raw}
	checkSpec(t, req, res, raw)
	if res.StatusCode >= 400 {
		v.ts.checkProblem(t, r)
	}
	return r
}

// key mints a key from the visitor's network.
func (v *visitor) key(t testing.TB) string {
	t.Helper()
	r := v.do(t, http.MethodPost, "/v1/sandbox/keys", "", nil)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/sandbox/keys from 127.0.%d.0/24: %d %s", v.n, r.StatusCode, r.body)
	}
	return r.json(t)["key"].(string)
}

// problemSays checks r is a problem with code whose detail holds every want.
func problemSays(t testing.TB, r response, status int, code string, want ...string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: %d %s, want %d %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.body, status, code)
	}
	p := r.json(t)
	detail, _ := p["detail"].(string)
	if p["code"] != code {
		t.Errorf("%s %s: problem %v, want %s", r.Request.Method, r.Request.URL.Path, p["code"], code)
	}
	for _, w := range want {
		if !strings.Contains(detail, w) {
			t.Errorf("%s %s: detail %q does not say %q", r.Request.Method, r.Request.URL.Path, detail, w)
		}
	}
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("%s %s: %d without Retry-After", r.Request.Method, r.Request.URL.Path, r.StatusCode)
	}
}

func onBackend(backend string) func(*Config, *Deps) {
	return func(_ *Config, d *Deps) { d.backend = backend }
}

// eachBackend runs f on SQLite and on PostgreSQL.
func eachBackend(t *testing.T, f func(t *testing.T, backend string)) {
	for _, b := range []string{"sqlite", "postgres"} {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			if b == "sqlite" {
				b = ""
			}
			f(t, b)
		})
	}
}

// longReport is a report that runs ten real minutes: it stays unfinished
// for the whole test.
var longReport = []byte(`{"title":"Long","from":"2026-01-01","to":"2026-01-31","simulate":{"duration_seconds":600}}`)

// TestFairShares (R42): a flood from one network while a newcomer's key,
// job, webhook, inbox delivery and event stream still succeed.
func TestFairShares(t *testing.T) {
	t.Parallel()

	t.Run("keys_per_network", func(t *testing.T) {
		t.Parallel()
		eachBackend(t, func(t *testing.T, backend string) {
			ts := newSandbox(t, nil, onBackend(backend), func(c *Config, d *Deps) {
				d.Policies = DefaultPolicies()
				for i := range d.Policies {
					if d.Policies[i].Name == api.PolicyKeys {
						d.Policies[i].Rate, d.Policies[i].Burst = 0.01, 3
					}
				}
			})
			flood := ts.from(10)
			for range 3 {
				flood.key(t)
			}
			// Every further address of the /24 is the same visitor.
			for range 5 {
				r := flood.do(t, http.MethodPost, "/v1/sandbox/keys", "", nil)
				problemSays(t, r, http.StatusTooManyRequests, "rate_limited", "Your network (127.0.10.0/24)")
				if r.Header.Get("RateLimit") == "" || r.Header.Get("RateLimit-Policy") == "" {
					t.Errorf("429 without the RateLimit headers: %v", r.Header)
				}
			}
			ts.from(11).key(t) // a newcomer elsewhere is served
		})
	})

	t.Run("jobs", func(t *testing.T) {
		t.Parallel()
		eachBackend(t, func(t *testing.T, backend string) {
			const queue, perNetwork, perKey = 30, 10, 4
			ts := newSandbox(t, nil, onBackend(backend), withScale(1), func(c *Config, _ *Deps) {
				c.QueueSize, c.MaxJobsPerKey, c.Shares.JobsPerNetwork, c.Shares.GuaranteedJobs = queue, perKey, perNetwork, 2
			})
			start := func(key string) response {
				t.Helper()
				return ts.do(t, http.MethodPost, "/v1/reports", key, longReport)
			}
			flood := ts.from(20)
			a1, a2, a3 := flood.key(t), flood.key(t), flood.key(t)
			for range perKey {
				ts.mustStart(t, a1, "/v1/reports", longReport)
			}
			problemSays(t, start(a1), http.StatusTooManyRequests, "too_many_jobs", "This API key", fmt.Sprintf("(%d)", perKey))
			for range perKey {
				ts.mustStart(t, a2, "/v1/reports", longReport)
			}
			ts.mustStart(t, a3, "/v1/reports", longReport)
			ts.mustStart(t, a3, "/v1/reports", longReport)
			// The network's share is used up: a fresh key of it is no help.
			problemSays(t, start(flood.key(t)), http.StatusTooManyRequests, "too_many_jobs", "your network", "127.0.20.0/24", fmt.Sprintf("%d unfinished jobs", perNetwork))
			ts.mustStart(t, ts.from(21).key(t), "/v1/reports", longReport) // a newcomer elsewhere

			// Two more networks fill the queue to its size: 10 + 1 + 10 + 9.
			for _, n := range []int{22, 22, 22, 22, 22, 23, 23, 23, 23} {
				k := ts.from(n).key(t)
				ts.mustStart(t, k, "/v1/reports", longReport)
				ts.mustStart(t, k, "/v1/reports", longReport)
			}
			ts.mustStart(t, ts.from(23).key(t), "/v1/reports", longReport)
			waitFor(t, "the engine to count a full queue", func() bool {
				st, err := ts.s.Engine().Stats(t.Context())
				return err == nil && st.Queued+st.Running >= queue
			})
			// Full: a key with its guaranteed share used is refused…
			problemSays(t, start(a3), http.StatusTooManyRequests, "too_many_jobs") // (a3's network is at its share anyway)
			heavy := ts.from(24).key(t)
			ts.mustStart(t, heavy, "/v1/reports", longReport)
			ts.mustStart(t, heavy, "/v1/reports", longReport)
			problemSays(t, start(heavy), http.StatusServiceUnavailable, "queue_full", "fewer than 2 unfinished jobs")
			// …and a newcomer's first request is still served.
			ts.mustStart(t, ts.from(25).key(t), "/v1/reports", longReport)
			if n, err := ts.s.JobCount(t.Context()); err != nil || n > queue+queue/10 {
				t.Errorf("%d jobs stored (%v), want at most the queue and its reserve, %d", n, err, queue+queue/10)
			}
		})
	})

	t.Run("webhooks", func(t *testing.T) {
		t.Parallel()
		eachBackend(t, func(t *testing.T, backend string) {
			const perNetwork = 3
			ts := newSandbox(t, nil, onBackend(backend), func(c *Config, _ *Deps) { c.Shares.WebhooksPerNetwork = perNetwork })
			flood := ts.from(30)
			var imports []string
			var floodKey string
			for i := range perNetwork + 1 {
				floodKey = flood.key(t)
				park := ts.mustInbox(t, floodKey)
				// The receiver parks every webhook for a day.
				if r := ts.do(t, http.MethodPut, "/v1/sandbox/inboxes/"+park.ID+"/behaviour", floodKey,
					map[string]any{"status": 503, "count": 100, "retry_after": 86400}); r.StatusCode != http.StatusOK {
					t.Fatalf("behaviour: %d %s", r.StatusCode, r.body)
				}
				r := ts.mustStart(t, floodKey, "/v1/imports", importBody(park.URL, rows(fmt.Sprint("MUG-", i))))
				ts.mustFollow(t, floodKey, r.Header.Get("Location"))
				imports = append(imports, path.Base(r.json(t)["links"].(map[string]any)["resource"].(string)))
			}
			last := ts.deliveryLog(t, floodKey, imports[perNetwork])
			if last.State != "failed" || len(last.Attempts) != 1 || !strings.Contains(last.Attempts[0].Error, "your network") {
				t.Errorf("the network's webhook beyond its share: %+v, want not sent, naming the network's share", last)
			}
			newcomer := ts.from(31).key(t)
			in := ts.mustInbox(t, newcomer)
			r := ts.mustStart(t, newcomer, "/v1/imports", importBody(in.URL, rows("MUG-9")))
			ts.mustFollow(t, newcomer, r.Header.Get("Location"))
			ts.mustInboxDeliveries(t, newcomer, in.ID, 1, func() {})
		})
	})

	t.Run("inbox_deliveries", func(t *testing.T) {
		t.Parallel()
		eachBackend(t, func(t *testing.T, backend string) {
			ts := newSandbox(t, nil, onBackend(backend), func(c *Config, _ *Deps) {
				c.Shares.InboxRate, c.Shares.InboxNetworkRate = Rate{PerSecond: 0.01, Burst: 5}, Rate{PerSecond: 0.01, Burst: 8}
			})
			owner := ts.key(t)
			target, other, third := ts.mustInbox(t, owner), ts.mustInbox(t, owner), ts.mustInbox(t, owner)
			flood, newcomer := ts.from(40), ts.from(41)
			post := func(v *visitor, id string) response {
				return v.do(t, http.MethodPost, "/v1/sandbox/inboxes/"+id, "", []byte(`{"hello":"inbox"}`))
			}
			for range 5 {
				if r := post(flood, target.ID); r.StatusCode != http.StatusNoContent {
					t.Fatalf("a delivery within the inbox's rate: %d %s", r.StatusCode, r.body)
				}
			}
			r := post(flood, target.ID)
			problemSays(t, r, http.StatusTooManyRequests, "rate_limited", "This inbox")
			if r.Header.Get("RateLimit") == "" || !strings.Contains(r.Header.Get("RateLimit-Policy"), `"inbox"`) {
				t.Errorf("429 without the inbox policy's RateLimit headers: %v", r.Header)
			}
			// The network's share across inboxes: 8, of which 5 went above
			// (refusals take no token of the network's).
			for range 3 {
				if r := post(flood, other.ID); r.StatusCode != http.StatusNoContent {
					t.Fatalf("a delivery within the network's rate: %d %s", r.StatusCode, r.body)
				}
			}
			problemSays(t, post(flood, third.ID), http.StatusTooManyRequests, "rate_limited", "Your network (127.0.40.0/24)")
			// Another network delivers to an inbox that is not full.
			if r := post(newcomer, third.ID); r.StatusCode != http.StatusNoContent {
				t.Errorf("a newcomer network's delivery: %d %s", r.StatusCode, r.body)
			}
		})
	})

	t.Run("event_streams", func(t *testing.T) {
		t.Parallel()
		ts := newSandbox(t, nil, withScale(1), func(c *Config, _ *Deps) {
			c.MaxStreams, c.Shares.StreamsPerNetwork, c.Shares.StreamsTotal = 2, 3, 5
		})
		flood := ts.from(50)
		k1, k2 := flood.key(t), flood.key(t)
		job := ts.mustStart(t, k1, "/v1/reports", longReport).Header.Get("Location")
		job2 := ts.mustStart(t, k2, "/v1/reports", longReport).Header.Get("Location")
		var open []*http.Response
		t.Cleanup(func() {
			for _, r := range open {
				_ = r.Body.Close()
			}
		})
		stream := func(key, location string) *http.Response {
			t.Helper()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.srv.URL+location+"/events", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode == http.StatusOK {
				open = append(open, res)
				return res
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			checkSpec(t, req, res, raw)
			return &http.Response{StatusCode: res.StatusCode, Header: res.Header, Body: io.NopCloser(bytes.NewReader(raw)), Request: req}
		}
		refused := func(res *http.Response, want string) {
			t.Helper()
			raw, _ := io.ReadAll(res.Body)
			problemSays(t, response{res, raw}, http.StatusTooManyRequests, "rate_limited", want)
		}
		for range 2 {
			if r := stream(k1, job); r.StatusCode != http.StatusOK {
				t.Fatalf("a stream within the key's share: %d", r.StatusCode)
			}
		}
		refused(stream(k1, job), "This API key has as many event streams open as one key may (2)")
		if r := stream(k2, job2); r.StatusCode != http.StatusOK {
			t.Fatalf("a stream within the network's share: %d", r.StatusCode)
		}
		refused(stream(k2, job2), "your network have as many event streams open as one network may (3)")
		newcomer := ts.from(51).key(t)
		job3 := ts.mustStart(t, newcomer, "/v1/reports", longReport).Header.Get("Location")
		if r := stream(newcomer, job3); r.StatusCode != http.StatusOK {
			t.Fatalf("a newcomer's stream: %d", r.StatusCode)
		}
		other := ts.from(52).key(t)
		job4 := ts.mustStart(t, other, "/v1/reports", longReport).Header.Get("Location")
		if r := stream(other, job4); r.StatusCode != http.StatusOK {
			t.Fatalf("a fifth stream: %d", r.StatusCode)
		}
		refused(stream(ts.from(53).key(t), job4), "This copy of the sandbox has as many event streams open as it serves (5)")
	})
}

// TestFairShareFlags: each share has a flag and an environment variable,
// and settings that cannot work are refused with what to change.
func TestFairShareFlags(t *testing.T) {
	parse := func(args []string, env map[string]string) (Config, error) {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var cfg Config
		errs := bindFlags(fs, &cfg, func(k string) string { return env[k] })
		if err := fs.Parse(args); err != nil {
			return cfg, err
		}
		if err := errs(); err != nil {
			return cfg, err
		}
		return cfg, cfg.Validate()
	}
	cfg, err := parse(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := FairShares{KeysPerNetwork: 1000, KeyTTL: 7 * 24 * time.Hour, GuaranteedJobs: 5, WebhooksPerNetwork: 2000,
		WebhookWorkersPerEndpoint: 4, WebhookWorkersPerNetwork: 8, InboxBytes: 256 << 20, InboxTTL: 24 * time.Hour,
		InboxRate: Rate{2, 20}, InboxNetworkRate: Rate{5, 50}, StreamsPerNetwork: 100, StreamsTotal: 5000}
	if cfg.Shares != want || cfg.MaxJobsPerKey != 100 {
		t.Errorf("defaults: %+v, max jobs per key %d; want %+v and 100", cfg.Shares, cfg.MaxJobsPerKey, want)
	}
	cfg, err = parse([]string{"-key-ttl", "48h", "-inbox-bytes", "64MiB", "-max-jobs-per-network", "500"},
		map[string]string{"ACCEPTED_MAX_KEYS_PER_NETWORK": "50", "ACCEPTED_RATE_INBOX": "1/5", "ACCEPTED_MAX_STREAMS_TOTAL": "900"})
	if err != nil || cfg.Shares.KeyTTL != 48*time.Hour || cfg.Shares.InboxBytes != 64<<20 || cfg.Shares.JobsPerNetwork != 500 ||
		cfg.Shares.KeysPerNetwork != 50 || cfg.Shares.InboxRate != (Rate{1, 5}) || cfg.Shares.StreamsTotal != 900 {
		t.Errorf("flags and environment: %+v, %v", cfg.Shares, err)
	}
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"-max-jobs-per-network", "20000"}, "-max-jobs-per-network"},
		{[]string{"-guaranteed-jobs", "500"}, "-guaranteed-jobs"},
		{[]string{"-key-ttl", "10s"}, "-key-ttl"},
		{[]string{"-inbox-ttl", "1s"}, "-inbox-ttl"},
		{[]string{"-inbox-bytes", "1KiB"}, "-inbox-bytes"},
		{[]string{"-inbox-bytes", "lots"}, "write a size"},
		{[]string{"-webhook-workers-per-endpoint", "64"}, "-webhook-workers-per-endpoint"},
		{[]string{"-max-streams-per-network", "2"}, "-max-streams-per-network"},
		{[]string{"-max-keys-per-network", "-1"}, "must not be negative"},
		{[]string{"-rate-inbox", "5"}, "has no burst"},
	} {
		if _, err := parse(c.args, nil); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%v: %v, want an error naming %s", c.args, err, c.says)
		}
	}
}
