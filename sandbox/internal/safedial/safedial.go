// Package safedial keeps outgoing HTTP requests to user-supplied URLs
// (webhook callbacks) away from the sandbox's own network: loopback, private
// ranges, link-local and cloud metadata addresses, and every other range of
// the IANA special-purpose address registries (see guardian).
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

	"code.dny.dev/ssrf"
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

// guardian judges addresses with code.dny.dev/ssrf rather than a list kept
// here: its ranges are generated from the IANA special-purpose address
// registries (IPv4 and IPv6) and kept in sync upstream, so a range IANA adds
// reaches the sandbox with a dependency update, not when someone here
// notices. For IPv6 it allows only the global unicast range (2000::/3) minus
// the registry's special ranges inside it (Teredo, 6to4, documentation…),
// which refuses by construction the IPv4-compatible (::a.b.c.d),
// IPv4-translated (::ffff:0:a.b.c.d), local-use NAT64 (64:ff9b:1::/48),
// site-local (fec0::/10) and discard-only (100::/64) forms a hand list
// misses. Ports and networks are ValidateURL's and the dialer's business,
// so the guardian checks addresses only. It is built per call rather than
// kept in a package variable, so that nothing in the package can be
// mutated; building it copies two short lists.
func guardian() *ssrf.Guardian {
	return ssrf.New(ssrf.WithAnyNetwork(), ssrf.WithAnyPort())
}

// label is the wording of one range in refusals. Labels only name a range
// for a person: which addresses are refused is the guardian's decision, and
// an address refused by a range without a label is still refused, with the
// registry's prefix in the message.
type label struct {
	prefix netip.Prefix
	text   string
}

// labels are checked in order, so a narrower range comes before a wider one.
func labels() []label {
	p := netip.MustParsePrefix
	return []label{
		{p("0.0.0.0/8"), "a \"this network\" address"},
		{p("10.0.0.0/8"), "a private (RFC 1918) address"},
		{p("100.64.0.0/10"), "a carrier-grade NAT (RFC 6598) address"},
		{p("127.0.0.0/8"), "a loopback address"},
		{p("169.254.0.0/16"), "a link-local address (this range includes the 169.254.169.254 cloud metadata service)"},
		{p("172.16.0.0/12"), "a private (RFC 1918) address"},
		{p("192.0.0.0/24"), "an IETF protocol assignment address"},
		{p("192.0.2.0/24"), "a documentation (TEST-NET-1, RFC 5737) address"},
		{p("192.168.0.0/16"), "a private (RFC 1918) address"},
		{p("198.18.0.0/15"), "a benchmarking (RFC 2544) address"},
		{p("198.51.100.0/24"), "a documentation (TEST-NET-2, RFC 5737) address"},
		{p("203.0.113.0/24"), "a documentation (TEST-NET-3, RFC 5737) address"},
		{p("224.0.0.0/4"), "a multicast address"},
		{p("240.0.0.0/4"), "a reserved or broadcast address"},
		{p("::/128"), "the unspecified address"},
		{p("::1/128"), "a loopback address"},
		{p("::ffff:0:0:0/96"), "an IPv4-translated IPv6 address (RFC 2765)"},
		{p("::/96"), "an IPv4-compatible IPv6 address (deprecated by RFC 4291)"},
		{p("64:ff9b:1::/48"), "a local-use NAT64 address (RFC 8215)"},
		{p("100::/64"), "a discard-only IPv6 address (RFC 6666)"},
		{p("2001::/32"), "a Teredo tunnel address (RFC 4380)"},
		{p("2001:db8::/32"), "a documentation IPv6 address (RFC 3849)"},
		{p("2002::/16"), "a 6to4 tunnel address (RFC 3056)"},
		{p("3fff::/20"), "a documentation IPv6 address (RFC 9637)"},
		{p("fc00::/7"), "a unique local (private) IPv6 address"},
		{p("fe80::/10"), "a link-local address"},
		{p("fec0::/10"), "a site-local IPv6 address (deprecated by RFC 3879)"},
		{p("ff00::/8"), "a multicast address"},
	}
}

// nat64 is the well-known NAT64 prefix (RFC 6052): 64:ff9b::10.0.0.1
// reaches 10.0.0.1 through a NAT64 gateway, so the address it carries is
// judged. The local-use prefix 64:ff9b:1::/48 is refused whole: what it
// reaches depends on the local network.
func nat64() netip.Prefix { return ssrf.IPv6NAT64Prefix }

// Reason returns why addr is blocked, or "" when it is a public address.
// IPv4-mapped IPv6 addresses (::ffff:127.0.0.1), which a dual-stack socket
// connects to as the IPv4 address they carry, and well-known NAT64
// addresses (64:ff9b::/96) are judged by that IPv4 address. Every other
// IPv6 form that carries an IPv4 address (IPv4-compatible, IPv4-translated,
// 6to4, Teredo, local-use NAT64) is refused whole. Reason ignores Policy
// allowances.
func Reason(addr netip.Addr) string {
	if !addr.IsValid() {
		return "not a valid IP address"
	}
	addr = addr.WithZone("").Unmap()
	if nat64().Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte(b[12:16]))
	}
	if guardian().SafeAddr(addr) == nil {
		return ""
	}
	for _, l := range labels() {
		if l.prefix.Contains(addr) {
			return l.text
		}
	}
	if addr.Is6() && !ssrf.IPv6GlobalUnicast.Contains(addr) {
		return "an IPv6 address outside the global unicast range (2000::/3)"
	}
	for _, p := range slices.Concat(ssrf.IPv4DeniedPrefixes, ssrf.IPv6DeniedPrefixes) {
		if p.Contains(addr) {
			return "a special-purpose address (" + p.String() + " in the IANA registry)"
		}
	}
	return "a special-purpose address"
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
