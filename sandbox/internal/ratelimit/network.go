package ratelimit

import (
	"net"
	"net/netip"
)

// Network names the network a client address belongs to, the unit that
// shares of the sandbox's capacity are counted per: its /24 for IPv4 and
// its /64 for IPv6 (an IPv4-mapped IPv6 address counts as IPv4), as
// "203.0.113.0/24" or "2001:db8:1:2::/64". One client commonly holds a
// whole /64 (RFC 6177 and every ISP hand one to each customer), and a
// /24 is the smallest IPv4 block routed on the Internet, so a visitor
// cannot multiply its shares by changing address inside either.
//
// addr may carry a port ("203.0.113.7:4711", "[2001:db8::1]:443") and an
// IPv6 zone; what is not an IP address at all (an in-process caller's
// made-up address) is answered as given, its own network.
func Network(addr string) string {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.WithZone("").Unmap()
	bits := 64
	if ip.Is4() {
		bits = 24
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return host
	}
	return p.String()
}
