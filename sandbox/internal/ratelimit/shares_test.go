package ratelimit

import (
	"errors"
	"fmt"
	"testing"
)

func TestNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":                 "203.0.113.0/24",
		"203.0.113.250:4711":          "203.0.113.0/24",
		"[::ffff:203.0.113.9]:80":     "203.0.113.0/24", // IPv4-mapped counts as IPv4
		"::ffff:203.0.113.9":          "203.0.113.0/24",
		"2001:db8:1:2:3:4:5:6":        "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443":  "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":           "fe80::/64",
		"127.0.0.1:0":                 "127.0.0.0/24",
		"in-process:0":                "in-process",
		"":                            "",
		"2001:db8:1:3::1":             "2001:db8:1:3::/64",
		"[2001:db8:1:2::dead:beef]:1": "2001:db8:1:2::/64",
	} {
		if got := Network(in); got != want {
			t.Errorf("Network(%q) = %q, want %q", in, got, want)
		}
	}
	// An IPv6 client has 2^64 addresses in its /64: every one is the same
	// network, so a limit per network holds whichever it uses.
	l := newLimiter(t, Config{Policies: []Policy{{Name: "keys", Rate: 0.001, Burst: 3}}, Clock: newFakeClock()})
	allowed := 0
	for i := range 1000 {
		d, err := l.Allow(Network(fmt.Sprintf("[2001:db8:1:2:%x:%x::1]:5000", i, i*7)), "keys")
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("1000 addresses of one /64: %d allowed, want the burst of 3", allowed)
	}
	if d, _ := l.Allow(Network("2001:db8:1:3::1"), "keys"); !d.Allowed {
		t.Error("the next /64 was refused: it is another network")
	}
}

// TestStreamShares: streams are capped per key, per network and per
// process, each refusal naming its share; a newcomer from another network
// still gets a stream while one network is at its share.
func TestStreamShares(t *testing.T) {
	l := newLimiter(t, Config{MaxConcurrent: 2, MaxConcurrentPerNetwork: 3, MaxConcurrentTotal: 5})
	scope := func(err error) string {
		var se *StreamError
		if !errors.As(err, &se) || !errors.Is(err, ErrTooManyStreams) {
			return fmt.Sprint(err)
		}
		return se.Scope
	}
	var releases []func()
	take := func(key, network, want string) {
		t.Helper()
		r, err := l.AcquireStream(key, network)
		if got := scope(err); err != nil && got != want || err == nil && want != "" {
			t.Fatalf("AcquireStream(%s, %s): %v, want refusal %q", key, network, err, want)
		}
		if err == nil {
			releases = append(releases, r)
		}
	}
	take("a1", "net1", "")
	take("a1", "net1", "")
	take("a1", "net1", ScopeKey) // the key's share
	take("a2", "net1", "")
	take("a3", "net1", ScopeNetwork) // the network's share, with a fresh key
	take("b1", "net2", "")           // a newcomer elsewhere is served
	take("b2", "net3", "")
	take("c1", "net4", ScopeReplica) // 5 open on this process
	if held, total := l.NetworkStreams("net1"); held != 3 || total != 5 {
		t.Fatalf("net1 holds %d of %d, want 3 of 5", held, total)
	}
	for _, r := range releases {
		r()
		r()
	}
	if held, total := l.NetworkStreams("net1"); held != 0 || total != 0 || len(l.conc) != 0 || len(l.concNet) != 0 {
		t.Fatalf("after every release: net1 %d, total %d, %d keys and %d networks tracked", held, total, len(l.conc), len(l.concNet))
	}
	take("c1", "net4", "")
}
