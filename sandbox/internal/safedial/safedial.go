// Package safedial keeps outgoing HTTP requests to user-supplied URLs
// (webhook callbacks) away from the sandbox's own network: loopback, private
// ranges, link-local and cloud metadata addresses, and the like.
//
// The check that matters runs at connect time, in the net.Dialer's Control
// hook, on the IP address the socket is about to connect to. Checking only
// when a URL is parsed is not enough: a hostname can resolve to a public
// address when it is checked and to 127.0.0.1 a second later (DNS
// rebinding). ValidateURL exists on top of that to give a person a clear
// error when they register a URL, not to replace the connect-time check.
package safedial

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrBlockedAddress is wrapped by every refusal to connect to (or register a
// URL for) an address in a blocked range.
var ErrBlockedAddress = errors.New("blocked address")

// ErrBadURL is wrapped by every ValidateURL error about the URL's form.
var ErrBadURL = errors.New("bad callback URL")

// MaxURLLength is the longest callback URL ValidateURL accepts.
const MaxURLLength = 2048

// Policy decides which addresses may be connected to. The zero Policy
// refuses every blocked range and allows every public address.
type Policy struct {
	// Allow, when set and returning true, lets an otherwise blocked address
	// through: an operator flag such as "allow private networks", or a test
	// whose receiver listens on 127.0.0.1.
	Allow func(netip.Addr) bool
	// AllowExact lists address:port pairs that are always allowed, such as
	// the sandbox's own listener serving the built-in webhook inbox. It is
	// narrower than Allow: allowing 127.0.0.1:8080 does not open a database
	// listening on 127.0.0.1:5432.
	AllowExact []netip.AddrPort
}

type blockedRange struct {
	prefix netip.Prefix
	reason string
}

// blocked is built per call rather than kept in a package variable, so that
// nothing in the package can be mutated; it is a dozen small values.
func blocked() []blockedRange {
	p := netip.MustParsePrefix
	return []blockedRange{
		{p("0.0.0.0/8"), "a \"this network\" address"},
		{p("10.0.0.0/8"), "a private (RFC 1918) address"},
		{p("100.64.0.0/10"), "a carrier-grade NAT (RFC 6598) address"},
		{p("127.0.0.0/8"), "a loopback address"},
		{p("169.254.0.0/16"), "a link-local address (this range includes the 169.254.169.254 cloud metadata service)"},
		{p("172.16.0.0/12"), "a private (RFC 1918) address"},
		{p("192.0.0.0/24"), "an IETF protocol assignment address"},
		{p("192.168.0.0/16"), "a private (RFC 1918) address"},
		{p("198.18.0.0/15"), "a benchmarking (RFC 2544) address"},
		{p("224.0.0.0/4"), "a multicast address"},
		{p("240.0.0.0/4"), "a reserved or broadcast address"},
		{p("::/128"), "the unspecified address"},
		{p("::1/128"), "a loopback address"},
		{p("fc00::/7"), "a unique local (private) IPv6 address"},
		{p("fe80::/10"), "a link-local address"},
		{p("ff00::/8"), "a multicast address"},
	}
}

// Reason returns why addr is blocked, or "" when it is a public address.
// IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) and NAT64 addresses are
// judged by the IPv4 address they carry. Reason ignores Policy allowances.
func Reason(addr netip.Addr) string {
	if !addr.IsValid() {
		return "not a valid IP address"
	}
	addr = addr.WithZone("").Unmap()
	// The well-known NAT64 prefix (RFC 6052): 64:ff9b::10.0.0.1 reaches
	// 10.0.0.1 through a NAT64 gateway, so the embedded address is judged.
	if netip.MustParsePrefix("64:ff9b::/96").Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte(b[12:16]))
	}
	for _, r := range blocked() {
		if r.prefix.Contains(addr) {
			return r.reason
		}
	}
	return ""
}

// Check returns nil when the policy allows connecting to ap, or an error
// wrapping ErrBlockedAddress that says which range ap is in.
func (p Policy) Check(ap netip.AddrPort) error {
	reason := Reason(ap.Addr())
	if reason == "" {
		return nil
	}
	exact := netip.AddrPortFrom(ap.Addr().WithZone("").Unmap(), ap.Port())
	if slices.Contains(p.AllowExact, exact) || (p.Allow != nil && p.Allow(ap.Addr())) {
		return nil
	}
	return fmt.Errorf("%w: %s is %s; callback URLs must resolve to public addresses (an operator can allow this range)",
		ErrBlockedAddress, ap.Addr(), reason)
}

// Control is a net.Dialer Control function. The address it is given is the
// resolved IP and port the socket is about to connect to, which is why the
// check cannot be bypassed by DNS rebinding. Addresses it cannot parse are
// refused.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check %s address %q: %w", ErrBlockedAddress, network, address, err)
	}
	return p.Check(ap)
}

// Dialer returns a net.Dialer that refuses blocked addresses at connect time.
func (p Policy) Dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   p.Control,
	}
}

// Transport returns an http.Transport that dials through Dialer. It never
// uses a proxy: through a proxy the dialer would check the proxy's address,
// not the callback's.
func (p Policy) Transport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           p.Dialer().DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
}

// Client returns an http.Client on Transport that does not follow
// redirects: a 3xx answer is returned as is, so a public URL cannot redirect
// a request to an internal one, and the caller sees the redirect.
func (p Policy) Client() *http.Client {
	return &http.Client{
		Transport:     p.Transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ValidateURL checks a callback URL when it is registered, with the zero
// Policy. See Policy.ValidateURL.
func ValidateURL(raw string) error { return Policy{}.ValidateURL(raw) }

// ValidateURL checks the form of a callback URL when it is registered: at
// most MaxURLLength bytes, absolute http or https, a host, no user
// information, a sane port. A host written as an IP address (or
// "localhost") is also checked against the policy, because the answer is
// already known; hostnames are checked when connecting. Errors wrap
// ErrBadURL or ErrBlockedAddress and say what to change.
func (p Policy) ValidateURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("%w: the URL is empty", ErrBadURL)
	}
	if len(raw) > MaxURLLength {
		return fmt.Errorf("%w: the URL is %d bytes long; the limit is %d", ErrBadURL, len(raw), MaxURLLength)
	}
	if strings.TrimSpace(raw) != raw {
		return fmt.Errorf("%w: the URL starts or ends with white space", ErrBadURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		if u.Scheme == "" {
			return fmt.Errorf("%w: %q is not an absolute URL; start it with https://", ErrBadURL, raw)
		}
		return fmt.Errorf("%w: scheme %q is not supported; use https:// (or http://)", ErrBadURL, u.Scheme)
	}
	if u.Opaque != "" {
		return fmt.Errorf("%w: write the URL as %s://host/path", ErrBadURL, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: the URL contains a user name or password; remove it (webhooks are authenticated by their signature)", ErrBadURL)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: the URL has no host", ErrBadURL)
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if ps := u.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: port %q is not a number between 1 and 65535", ErrBadURL, ps)
		}
		port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%w: the URL has an empty port after %q", ErrBadURL, host)
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		// RFC 6761: these names always resolve to loopback.
		return p.Check(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)))
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return p.Check(netip.AddrPortFrom(addr, uint16(port)))
	}
	return nil
}
