package app

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Trusted proxies: the client's network (the unit of every per-network share
// and of the key-creation rate limit) comes from the TCP peer address. Behind
// a reverse proxy that peer is the proxy, so every visitor would share one
// network. -trusted-proxies names the proxies' addresses; only a request
// whose peer is one of them has its X-Forwarded-For read, from the right:
// the first address that is not itself a trusted proxy is the client. A
// client cannot forge its way past this, since what it writes into the
// header lies to the left of what the trusted proxies appended.

// parsePrefixes reads a comma-separated list of CIDR prefixes or single
// addresses.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("-trusted-proxies: %q is neither an address nor a CIDR prefix such as 10.0.0.0/8", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// trusted reports whether a is in one of ps.
func trusted(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedClient answers the client address a request from a trusted proxy
// names: the rightmost X-Forwarded-For entry that is not a trusted proxy. It
// answers false when the peer is not trusted or the header names no valid
// address (the peer then stands for the client).
func forwardedClient(ps []netip.Prefix, r *http.Request) (netip.Addr, bool) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !trusted(ps, peer.Addr()) {
		return netip.Addr{}, false
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false
		}
		if !trusted(ps, a) {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// behindProxies rewrites RemoteAddr to the forwarded client's address (port
// 0) on requests from trusted proxies, so that rate limits and shares count
// visitors, not the proxy.
func behindProxies(ps []netip.Prefix, next http.Handler) http.Handler {
	if len(ps) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := forwardedClient(ps, r); ok {
			r2 := r.Clone(r.Context())
			r2.RemoteAddr = net.JoinHostPort(a.String(), "0")
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}
