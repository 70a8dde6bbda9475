package webhooks

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
)

// The secret and vector of Standard Webhooks' own test suite (R25).
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// loopbackClient is the safedial client allowing 127.0.0.1, where the
// httptest receivers listen.
func loopbackClient() *http.Client {
	return safedial.Policy{Allow: netip.Addr.IsLoopback}.Client()
}

type captured struct {
	Header http.Header
	Body   []byte
}

type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []captured
}

func (r *receiver) Requests() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.reqs...)
}

// newReceiver starts a receiver on 127.0.0.1; answer is called with the
// 1-based number of the request.
func newReceiver(t testing.TB, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, captured{r.Header.Clone(), body})
		n := len(rc.reqs)
		rc.mu.Unlock()
		answer(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

func mustSecret(t testing.TB) string {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSigner(t testing.TB, secrets ...string) *Signer {
	t.Helper()
	s, err := NewSigner(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testMessage() Message {
	return NewMessage("import.complete", testStart, map[string]any{"import_id": "imp_123", "imported": 42})
}

// request is one attempt at msg to url, signed with signer, at testStart.
func request(t testing.TB, url string, msg Message, signer *Signer) Request {
	t.Helper()
	body, err := msg.Payload()
	if err != nil {
		t.Fatal(err)
	}
	return Request{URL: url, ID: msg.ID, At: testStart, Payload: body, Signer: signer, Timeout: 5 * time.Second}
}
