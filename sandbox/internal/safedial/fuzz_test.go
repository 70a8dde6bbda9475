package safedial

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzValidateURL feeds callback URLs as clients register them. A URL
// accepted is absolute http(s) with a host, no user information and a port
// in range, whose literal address (if any) the policy allows; a refusal
// wraps ErrBadURL or ErrBlockedAddress.
func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.example.com/accepted", "http://127.0.0.1:8080/x", "https://[::1]/", "https://[::ffff:10.0.0.1]/",
		"https://169.254.169.254/latest/meta-data", "https://user:pw@example.com/", "ftp://example.com/", "//example.com",
		"https://example.com:0/", "https://example.com:99999/", "https://example.com:/", "https://localhost./", "https://a.localhost/",
		"https://0x7f.1/", "https://2130706433/", " https://example.com", "mailto:x@example.com", "https://[fe80::1%25eth0]/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		err := ValidateURL(raw)
		if err != nil {
			if !errors.Is(err, ErrBadURL) && !errors.Is(err, ErrBlockedAddress) {
				t.Fatalf("ValidateURL(%q): %v wraps neither ErrBadURL nor ErrBlockedAddress", raw, err)
			}
			return
		}
		u, perr := url.Parse(raw)
		switch {
		case perr != nil:
			t.Fatalf("accepted %q that url.Parse refuses: %v", raw, perr)
		case u.Scheme != "http" && u.Scheme != "https":
			t.Fatalf("accepted scheme %q in %q", u.Scheme, raw)
		case u.Hostname() == "" || u.User != nil || len(raw) > MaxURLLength:
			t.Fatalf("accepted %q (host %q, user %v)", raw, u.Hostname(), u.User)
		}
		host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			t.Fatalf("accepted a loopback name: %q", raw)
		}
		if addr, err := netip.ParseAddr(u.Hostname()); err == nil && Reason(addr.Unmap()) != "" {
			t.Fatalf("accepted %q whose address is %s", raw, Reason(addr.Unmap()))
		}
	})
}
