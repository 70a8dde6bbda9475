package safedial

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

func TestReason(t *testing.T) {
	blockedAddrs := []string{
		"10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", // RFC 1918
		"127.0.0.1", "127.255.255.254", "::1", // loopback
		"169.254.169.254", "169.254.0.1", "fe80::1", "fe80::1%eth0", // link-local, metadata
		"0.0.0.0", "::", "0.1.2.3", // unspecified, this network
		"224.0.0.1", "239.255.255.250", "ff02::1", // multicast
		"100.64.0.1", "100.127.255.255", // CGNAT
		"fc00::1", "fd12:3456::1", // unique local
		"255.255.255.255", "198.18.0.1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:100.64.0.1", // IPv4-mapped
		"64:ff9b::a00:1", // NAT64 of 10.0.0.1
	}
	for _, s := range blockedAddrs {
		if Reason(netip.MustParseAddr(s)) == "" {
			t.Errorf("Reason(%s) = \"\", want blocked", s)
		}
	}
	public := []string{"93.184.215.14", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:1.1.1.1", "64:ff9b::101:101"}
	for _, s := range public {
		if r := Reason(netip.MustParseAddr(s)); r != "" {
			t.Errorf("Reason(%s) = %q, want public", s, r)
		}
	}
	if Reason(netip.Addr{}) == "" {
		t.Error("the zero Addr must be refused")
	}
}

func TestPolicyAllow(t *testing.T) {
	lo := netip.MustParseAddrPort("127.0.0.1:8080")
	if err := (Policy{}).Check(lo); !errors.Is(err, ErrBlockedAddress) {
		t.Fatalf("zero policy: %v, want ErrBlockedAddress", err)
	}
	if err := (Policy{Allow: netip.Addr.IsLoopback}).Check(lo); err != nil {
		t.Fatalf("Allow loopback: %v", err)
	}
	exact := Policy{AllowExact: []netip.AddrPort{lo}}
	if err := exact.Check(lo); err != nil {
		t.Fatalf("AllowExact: %v", err)
	}
	if err := exact.Check(netip.MustParseAddrPort("[::ffff:127.0.0.1]:8080")); err != nil {
		t.Fatalf("AllowExact, IPv4-mapped form: %v", err)
	}
	if err := exact.Check(netip.MustParseAddrPort("127.0.0.1:5432")); !errors.Is(err, ErrBlockedAddress) {
		t.Fatalf("AllowExact must not open other ports: %v", err)
	}
}

func TestValidateURL(t *testing.T) {
	tests := []struct {
		raw  string
		want error
	}{
		{"https://example.com/hooks", nil},
		{"http://example.com:8080/hooks?x=1", nil},
		{"HTTPS://Example.COM/", nil},
		{"", ErrBadURL},
		{"example.com/hooks", ErrBadURL},
		{"ftp://example.com/", ErrBadURL},
		{"javascript:alert(1)", ErrBadURL},
		{"https:///path", ErrBadURL},
		{"https://user:pw@example.com/", ErrBadURL},
		{"https://example.com:0/", ErrBadURL},
		{"https://example.com:70000/", ErrBadURL},
		{"https://example.com:/", ErrBadURL},
		{" https://example.com/", ErrBadURL},
		{"https://example.com/" + strings.Repeat("a", MaxURLLength), ErrBadURL},
		{"http://10.0.0.1/", ErrBlockedAddress},
		{"http://127.0.0.1:9000/", ErrBlockedAddress},
		{"http://169.254.169.254/latest/meta-data/", ErrBlockedAddress},
		{"http://[::1]/", ErrBlockedAddress},
		{"http://[::ffff:127.0.0.1]/", ErrBlockedAddress},
		{"http://localhost:8080/", ErrBlockedAddress},
		{"http://api.localhost/", ErrBlockedAddress},
	}
	for _, tt := range tests {
		err := ValidateURL(tt.raw)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("ValidateURL(%.60q) = %v, want %v", tt.raw, err, tt.want)
		}
		if err != nil && len(err.Error()) < len(tt.want.Error())+10 {
			t.Errorf("ValidateURL(%.60q): error %q does not say what to change", tt.raw, err)
		}
	}
	if err := (Policy{Allow: netip.Addr.IsLoopback}).ValidateURL("http://127.0.0.1:9000/"); err != nil {
		t.Errorf("allowed loopback: %v", err)
	}
}

func newReceiver(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	hits := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	return srv, hits
}

// TestDialRefusesLoopback proves the check happens on the resolved address
// when connecting: "localhost" is a name, not an IP, so only a connect-time
// check can catch it.
func TestDialRefusesLoopback(t *testing.T) {
	srv, hits := newReceiver(t)
	u, _ := url.Parse(srv.URL)
	client := Policy{}.Client()
	for _, target := range []string{srv.URL, "http://localhost:" + u.Port() + "/", "http://[::ffff:127.0.0.1]:" + u.Port() + "/"} {
		resp, err := client.Get(target)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s succeeded, want refusal", target)
		}
		if !errors.Is(err, ErrBlockedAddress) {
			t.Fatalf("GET %s: %v, want ErrBlockedAddress", target, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("receiver got %d requests, want 0", hits.Load())
	}

	allowed := Policy{Allow: netip.Addr.IsLoopback}.Client()
	resp, err := allowed.Get("http://localhost:" + u.Port() + "/")
	if err != nil {
		t.Fatalf("allowed GET: %v", err)
	}
	resp.Body.Close()
}

func TestControlRefusesUnparsable(t *testing.T) {
	d := Policy{}.Dialer()
	if err := d.Control("tcp", "not-an-address", nil); !errors.Is(err, ErrBlockedAddress) {
		t.Fatalf("got %v", err)
	}
	if err := d.Control("tcp4", "93.184.215.14:443", nil); err != nil {
		t.Fatalf("public address refused: %v", err)
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	target, hits := newReceiver(t)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusMovedPermanently))
	t.Cleanup(redirect.Close)
	resp, err := Policy{Allow: netip.Addr.IsLoopback}.Client().Get(redirect.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || hits.Load() != 0 {
		t.Fatalf("status %d, target hits %d; want 301 and 0", resp.StatusCode, hits.Load())
	}
}
