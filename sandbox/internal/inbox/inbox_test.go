package inbox

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

func newStore(t *testing.T, secret string) *Store {
	t.Helper()
	return New(Config{Clock: clock.Real(), PerOwner: 2, Deliveries: 3,
		Secrets: func(string) ([]string, error) { return []string{secret}, nil }})
}

func signed(t *testing.T, secret string, body []byte) http.Header {
	t.Helper()
	s, err := webhooks.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, _ := s.Sign("msg_1", now, body)
	h := http.Header{}
	h.Set(webhooks.HeaderID, "msg_1")
	h.Set(webhooks.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(webhooks.HeaderSignature, sig)
	return h
}

func TestReceiveVerifiesBehavesAndBounds(t *testing.T) {
	secret, _ := webhooks.NewSecret()
	s := newStore(t, secret)
	ib, _ := s.Create("key_a")
	body := []byte(`{"type":"import.complete","timestamp":"2026-01-31T09:30:00Z","data":{}}`)

	ans, err := s.Receive(ib.ID, signed(t, secret, body), body)
	if err != nil || ans.Status != http.StatusNoContent || !ans.Delivery.Verification.Valid || ans.Delivery.Verification.Secret != "current" {
		t.Fatalf("signed delivery: %+v %v", ans, err)
	}
	if ans, _ := s.Receive(ib.ID, http.Header{}, body); ans.Delivery.Verification.Valid {
		t.Error("an unsigned delivery verified")
	}

	if _, err := s.SetBehaviour("key_b", ib.ID, Behaviour{Status: 503, Remaining: 1}); err != ErrNotFound {
		t.Errorf("another owner set the behaviour: %v", err)
	}
	_, _ = s.SetBehaviour("key_a", ib.ID, Behaviour{Status: 503, Remaining: 2, RetryAfter: 7})
	for i, want := range []int{503, 503, 204} {
		ans, _ := s.Receive(ib.ID, http.Header{}, body)
		if ans.Status != want || (want == 503) != (ans.RetryAfter == 7) {
			t.Errorf("delivery %d answered %d (Retry-After %d), want %d", i, ans.Status, ans.RetryAfter, want)
		}
	}
	ds, _ := s.Deliveries("key_a", ib.ID)
	if len(ds) != 3 || ds[0].Answered != 204 || ds[2].Answered != 503 {
		t.Errorf("kept %d deliveries, newest first: %+v", len(ds), ds)
	}
	if _, err := s.Deliveries("key_b", ib.ID); err != ErrNotFound {
		t.Errorf("another owner listed deliveries: %v", err)
	}

	// A third inbox drops the owner's oldest.
	_, _ = s.Create("key_a")
	_, _ = s.Create("key_a")
	if _, err := s.Get("key_a", ib.ID); err != ErrNotFound {
		t.Errorf("oldest inbox kept: %v", err)
	}
	if _, err := s.Receive(ib.ID, http.Header{}, body); err != ErrNotFound {
		t.Errorf("delivery to a dropped inbox: %v", err)
	}
}

func TestSubscribeNeverBlocksTheReceiver(t *testing.T) {
	s := newStore(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	ib, _ := s.Create("key_a")
	ch, cancel := s.Subscribe(ib.ID)
	done := make(chan struct{})
	go func() {
		for range subscriberBuffer * 3 {
			_, _ = s.Receive(ib.ID, http.Header{}, []byte(`{}`))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Receive blocked on a subscriber that does not read")
	}
	if n := len(ch); n != subscriberBuffer {
		t.Errorf("%d deliveries buffered, want %d", n, subscriberBuffer)
	}
	cancel()
	cancel()
	for range ch {
	}
	if ch2, _ := s.Subscribe("inb_unknown"); ch2 != nil {
		if _, open := <-ch2; open {
			t.Error("subscription to an unknown inbox is open")
		}
	}
}
