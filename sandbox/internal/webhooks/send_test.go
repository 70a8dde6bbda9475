package webhooks

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSecrets(t *testing.T) {
	a, b := mustSecret(t), mustSecret(t)
	if a == b || !strings.HasPrefix(a, SecretPrefix) {
		t.Fatalf("secrets %q %q", a, b)
	}
	key, err := ParseSecret(a)
	if err != nil || len(key) != 32 {
		t.Fatalf("ParseSecret: %d bytes, %v", len(key), err)
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65))} {
		if _, err := ParseSecret(bad); !errors.Is(err, ErrBadSecret) {
			t.Errorf("ParseSecret(%q): %v", bad, err)
		}
	}
	if _, err := NewSigner(); !errors.Is(err, ErrBadSecret) {
		t.Errorf("NewSigner(): %v", err)
	}
	s, _ := NewSigner(a, a, b)
	sig, _ := s.Sign("msg_1", testStart, []byte("{}"))
	if n := len(strings.Fields(sig)); n != 2 {
		t.Errorf("duplicate secrets signed twice: %q", sig)
	}
}

func TestParseRetryAfter(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"99999999999", 365 * 24 * time.Hour, true},
		{testStart.Add(time.Hour).Format(http.TimeFormat), time.Hour, true},
		{testStart.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		got, ok := ParseRetryAfter(c.in, testStart)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://example.com/hooks":               "https://example.com/hooks",
		"https://example.com/hooks?token=abc&x=1": "https://example.com/hooks?redacted",
		"https://user:pass@example.com/hooks":     "https://redacted@example.com/hooks",
		"https://example.com/hooks#frag":          "https://example.com/hooks#redacted",
		"https://example.com/hooks?":              "https://example.com/hooks?redacted",
		"http://[::1]:8080/a b?secret=1":          "http://[::1]:8080/a%20b?redacted",
		"http://example.com/%zz":                  "(unparsable URL)",
	} {
		if got := RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
		if got := RedactURL(raw); strings.Contains(got, "abc") || strings.Contains(got, "pass") || strings.Contains(got, "secret") {
			t.Errorf("RedactURL(%q) = %q keeps a secret", raw, got)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	for _, n := range []int{len(vectorBody), 1 << 10, 16 << 10} {
		body := bytes.Repeat([]byte("x"), n)
		for _, secrets := range [][]string{{vectorSecret}, {vectorSecret, "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32))}} {
			b.Run(fmt.Sprintf("body=%dB/secrets=%d", n, len(secrets)), func(b *testing.B) {
				s := mustSigner(b, secrets...)
				at := time.Unix(vectorTS, 0)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Sign(vectorID, at, body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSend measures one signed attempt against a receiver on
// 127.0.0.1 that verifies nothing and answers 204 at once.
func BenchmarkSend(b *testing.B) {
	rc := newReceiver(b, status(http.StatusNoContent))
	sender := NewSender(loopbackClient(), "")
	req := request(b, rc.URL, testMessage(), mustSigner(b, vectorSecret))
	b.ReportAllocs()
	for b.Loop() {
		if res := sender.Send(b.Context(), req); !res.Delivered() {
			b.Fatal(res)
		}
	}
}
