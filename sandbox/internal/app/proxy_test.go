package app

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/accepted-dev/accepted/sandbox/internal/api"
	"github.com/accepted-dev/accepted/sandbox/internal/ratelimit"
)

func TestForwardedClient(t *testing.T) {
	ps, err := parsePrefixes("10.0.0.0/8, 192.0.2.1, ::1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, peer string
		xff        []string
		want       string // "" when the peer stands for the client
	}{
		{"untrusted peer: header ignored", "198.51.100.9:1234", []string{"203.0.113.5"}, ""},
		{"trusted peer, one hop", "10.1.2.3:1234", []string{"203.0.113.5"}, "203.0.113.5"},
		{"a forged entry lies to the left", "10.1.2.3:1234", []string{"1.2.3.4, 203.0.113.5"}, "203.0.113.5"},
		{"proxies chained", "10.1.2.3:1234", []string{"203.0.113.5, 10.9.9.9, 192.0.2.1"}, "203.0.113.5"},
		{"two header fields", "[::1]:99", []string{"203.0.113.5", "10.0.0.1"}, "203.0.113.5"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:1", []string{"2001:db8::7"}, "2001:db8::7"},
		{"no header", "10.1.2.3:1234", nil, ""},
		{"garbage entry", "10.1.2.3:1234", []string{"203.0.113.5, not-an-ip"}, ""},
		{"only proxies", "10.1.2.3:1234", []string{"10.0.0.2"}, ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		got, ok := forwardedClient(ps, r)
		if c.want == "" {
			if ok {
				t.Errorf("%s: took %s from the header, want the peer", c.name, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(c.want) {
			t.Errorf("%s: got %v %v, want %s", c.name, got, ok, c.want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0"} {
		if _, err := parsePrefixes(bad); err == nil {
			t.Errorf("parsePrefixes(%q): no error", bad)
		}
	}
}

// TestTrustedProxies: behind a trusted proxy, key creation is limited per
// forwarded client network, not per proxy; from an untrusted peer the
// header changes nothing.
func TestTrustedProxies(t *testing.T) {
	oneKey := func(_ *Config, d *Deps) {
		d.Policies = []ratelimit.Policy{{Name: api.PolicyKeys, Rate: 0.001, Burst: 1}}
	}
	mint := func(ts *testSandbox, xff string) int {
		return ts.do(t, http.MethodPost, "/v1/sandbox/keys", "", nil, "X-Forwarded-For", xff).StatusCode
	}
	t.Run("trusted", func(t *testing.T) {
		ts := newSandbox(t, nil, oneKey, func(c *Config, _ *Deps) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		if got := mint(ts, "198.51.100.7"); got != http.StatusCreated {
			t.Fatalf("first key of 198.51.100.0/24: %d, want 201", got)
		}
		if got := mint(ts, "198.51.100.8"); got != http.StatusTooManyRequests {
			t.Errorf("second key of 198.51.100.0/24: %d, want 429", got)
		}
		if got := mint(ts, "203.0.113.9"); got != http.StatusCreated {
			t.Errorf("first key of another network behind the same proxy: %d, want 201", got)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		ts := newSandbox(t, nil, oneKey)
		if got := mint(ts, "198.51.100.7"); got != http.StatusCreated {
			t.Fatalf("first key: %d, want 201", got)
		}
		if got := mint(ts, "203.0.113.9"); got != http.StatusTooManyRequests {
			t.Errorf("a second key claiming another network from an untrusted peer: %d, want 429", got)
		}
	})
}
