package safedial

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// blockedRanges are the ranges a callback must never reach, one or more
// addresses each. The first group are the forms a hand list of IPv4 and
// IPv6 ranges missed; the rest were refused before the ranges came from
// code.dny.dev/ssrf and must stay refused.
var blockedRanges = []struct {
	name  string
	addrs []string
	says  string // a word the refusal must contain, so that a person learns which range
}{
	{"IPv4-compatible ::/96", []string{"::127.0.0.1", "::10.0.0.1", "::93.184.215.14"}, "IPv4-compatible"},
	{"IPv4-translated ::ffff:0:0:0/96", []string{"::ffff:0:127.0.0.1", "::ffff:0:93.184.215.14"}, "IPv4-translated"},
	{"IPv4-mapped ::ffff:0:0/96 of a private address", []string{"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254"}, "address"},
	{"6to4 2002::/16", []string{"2002:7f00:1::1", "2002:5db8:d70e::1"}, "6to4"},
	{"Teredo 2001::/32", []string{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::1"}, "Teredo"},
	{"local-use NAT64 64:ff9b:1::/48", []string{"64:ff9b:1::a00:1", "64:ff9b:1::5db8:d70e"}, "NAT64"},
	{"site-local fec0::/10", []string{"fec0::1", "feff::1"}, "site-local"},
	{"documentation 192.0.2.0/24", []string{"192.0.2.1", "192.0.2.255"}, "documentation"},
	{"documentation 198.51.100.0/24", []string{"198.51.100.7"}, "documentation"},
	{"documentation 203.0.113.0/24", []string{"203.0.113.9"}, "documentation"},
	{"documentation 2001:db8::/32", []string{"2001:db8::1", "2001:db8:ffff::1"}, "documentation"},
	{"documentation 3fff::/20", []string{"3fff::1"}, "documentation"},
	{"discard-only 100::/64", []string{"100::1"}, "discard-only"},
	{"benchmarking 198.18.0.0/15", []string{"198.18.0.1", "198.19.255.254"}, "benchmarking"},

	{"loopback 127.0.0.0/8", []string{"127.0.0.1", "127.255.255.254"}, "loopback"},
	{"loopback ::1", []string{"::1"}, "loopback"},
	{"private 10.0.0.0/8", []string{"10.0.0.1"}, "private"},
	{"private 172.16.0.0/12", []string{"172.16.5.4", "172.31.255.255"}, "private"},
	{"private 192.168.0.0/16", []string{"192.168.1.1"}, "private"},
	{"unique local fc00::/7", []string{"fc00::1", "fd12:3456::1", "fd00:ec2::254"}, "unique local"},
	{"carrier-grade NAT 100.64.0.0/10", []string{"100.64.0.1", "100.127.255.255"}, "carrier-grade"},
	{"link-local 169.254.0.0/16", []string{"169.254.0.1"}, "link-local"},
	{"cloud metadata 169.254.169.254", []string{"169.254.169.254"}, "metadata"},
	{"link-local fe80::/10", []string{"fe80::1", "fe80::1%eth0"}, "link-local"},
	{"this network 0.0.0.0/8", []string{"0.0.0.0", "0.1.2.3"}, "this network"},
	{"unspecified ::", []string{"::"}, "unspecified"},
	{"multicast 224.0.0.0/4", []string{"224.0.0.1", "239.255.255.250"}, "multicast"},
	{"multicast ff00::/8", []string{"ff02::1"}, "multicast"},
	{"reserved and broadcast 240.0.0.0/4", []string{"240.0.0.1", "255.255.255.255"}, "reserved"},
	{"IETF protocol assignments 192.0.0.0/24", []string{"192.0.0.1"}, "IETF"},
	{"well-known NAT64 of a private address", []string{"64:ff9b::a00:1", "64:ff9b::7f00:1"}, "address"},
}

// publicAddrs must stay reachable: the IPv4-mapped and well-known NAT64
// forms of a public address are how a dual-stack or IPv6-only host reaches
// it.
var publicAddrs = []string{
	"93.184.215.14", "1.1.1.1", "172.32.0.1", "100.128.0.1", "192.0.3.1", "198.20.0.1",
	"2606:4700::1111", "2001:4860:4860::8888", "2003::1",
	"::ffff:1.1.1.1", "64:ff9b::101:101",
}

// hostPort is addr with a port, in the form a URL or a dialer takes.
func hostPort(addr string, port string) string {
	if strings.Contains(addr, ":") {
		return "[" + strings.ReplaceAll(addr, "%", "%25") + "]:" + port
	}
	return addr + ":" + port
}

// TestBlockedRangesParseTime: a callback URL whose host is an address in a
// blocked range is refused when it is registered, with a message naming
// the range; the operator's Allow lets it through.
func TestBlockedRangesParseTime(t *testing.T) {
	for _, r := range blockedRanges {
		t.Run(r.name, func(t *testing.T) {
			for _, a := range r.addrs {
				reason := Reason(netip.MustParseAddr(a))
				if reason == "" {
					t.Errorf("Reason(%s) = \"\", want blocked", a)
				}
				raw := "https://" + hostPort(a, "8443") + "/hooks"
				err := ValidateURL(raw)
				if !errors.Is(err, ErrBlockedAddress) {
					t.Errorf("ValidateURL(%s) = %v, want ErrBlockedAddress", raw, err)
					continue
				}
				if !strings.Contains(err.Error(), r.says) {
					t.Errorf("ValidateURL(%s): %q does not say %q", raw, err, r.says)
				}
				if err := (Policy{Allow: func(netip.Addr) bool { return true }}).ValidateURL(raw); err != nil {
					t.Errorf("with Allow (-allow-private-callbacks), ValidateURL(%s) = %v", raw, err)
				}
			}
		})
	}
}

// TestBlockedRangesConnectTime: the same addresses are refused by the
// dialer's Control hook, on the address the socket is about to connect to,
// whether the URL named the address or a host name that resolves to it
// (DNS rebinding: the name passed the parse-time check).
func TestBlockedRangesConnectTime(t *testing.T) {
	for _, r := range blockedRanges {
		t.Run(r.name, func(t *testing.T) {
			for _, a := range r.addrs {
				ap := hostPort(strings.Split(a, "%")[0], "443")
				if err := (Policy{}).Control("tcp", ap, nil); !errors.Is(err, ErrBlockedAddress) {
					t.Errorf("Control(%s) = %v, want ErrBlockedAddress", ap, err)
				}
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				conn, err := Policy{}.Dialer().DialContext(ctx, "tcp", ap)
				cancel()
				if err == nil {
					conn.Close()
					t.Errorf("dialing %s connected, want a refusal", ap)
				} else if !errors.Is(err, ErrBlockedAddress) {
					t.Errorf("dialing %s: %v, want ErrBlockedAddress", ap, err)
				}

				// A name that resolves to the address.
				d := Policy{}.Dialer()
				d.Resolver = newFakeResolver(t, netip.MustParseAddr(a).WithZone(""))
				ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second)
				conn, err = d.DialContext(ctx, "tcp", "rebound.example.com:443")
				cancel()
				if err == nil {
					conn.Close()
					t.Errorf("dialing a name resolving to %s connected, want a refusal", a)
				} else if !errors.Is(err, ErrBlockedAddress) {
					t.Errorf("dialing a name resolving to %s: %v, want ErrBlockedAddress", a, err)
				}
				if err := (Policy{Allow: func(netip.Addr) bool { return true }}).Control("tcp", ap, nil); err != nil {
					t.Errorf("with Allow (-allow-private-callbacks), Control(%s) = %v", ap, err)
				}
			}
		})
	}
}

func TestPublicAddressesAllowed(t *testing.T) {
	for _, a := range publicAddrs {
		if r := Reason(netip.MustParseAddr(a)); r != "" {
			t.Errorf("Reason(%s) = %q, want public", a, r)
		}
		if err := ValidateURL("https://" + hostPort(a, "443") + "/"); err != nil {
			t.Errorf("ValidateURL of %s: %v", a, err)
		}
		if err := (Policy{}).Control("tcp", hostPort(a, "443"), nil); err != nil {
			t.Errorf("Control(%s): %v", a, err)
		}
	}
}

// newFakeResolver is a resolver that answers every name with addr (an A
// record for an IPv4 address, AAAA otherwise), over an in-memory DNS
// connection, so a test can make any name resolve anywhere.
func newFakeResolver(t *testing.T, addr netip.Addr) *net.Resolver {
	t.Helper()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveDNS(server, addr)
		return client, nil
	}}
}

// serveDNS answers queries in DNS-over-TCP framing (a net.Pipe is not a
// PacketConn, so the Go resolver frames its queries so) until the
// connection closes.
func serveDNS(c net.Conn, addr netip.Addr) {
	defer c.Close()
	for {
		var size [2]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		var msg dnsmessage.Message
		if err := msg.Unpack(q); err != nil || len(msg.Questions) != 1 {
			return
		}
		question := msg.Questions[0]
		msg.Response, msg.Authoritative = true, true
		msg.Answers = nil
		hdr := dnsmessage.ResourceHeader{Name: question.Name, Type: question.Type, Class: dnsmessage.ClassINET, TTL: 60}
		switch {
		case question.Type == dnsmessage.TypeA && addr.Is4():
			msg.Answers = append(msg.Answers, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AResource{A: addr.As4()}})
		case question.Type == dnsmessage.TypeAAAA && addr.Is6():
			msg.Answers = append(msg.Answers, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AAAAResource{AAAA: addr.As16()}})
		}
		out, err := msg.Pack()
		if err != nil {
			return
		}
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...)); err != nil {
			return
		}
	}
}
