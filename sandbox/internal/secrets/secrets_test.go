package secrets

import (
	"strings"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

func TestRotationAndGrace(t *testing.T) {
	fake := clock.NewFake(time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC))
	s := New(fake, time.Hour, 10)
	first, err := s.Get("key_a")
	if err != nil || !strings.HasPrefix(first.Current.Value, webhooks.SecretPrefix) || first.Previous != nil {
		t.Fatalf("first: %+v %v", first, err)
	}
	if again, _ := s.Get("key_a"); again.Current != first.Current {
		t.Error("Get made a new secret")
	}
	if other, _ := s.Get("key_b"); other.Current.Value == first.Current.Value {
		t.Error("two owners share a secret")
	}
	rot, _ := s.Rotate("key_a")
	if rot.Previous == nil || rot.Previous.Value != first.Current.Value || !rot.Previous.ExpiresAt.Equal(fake.Now().Add(time.Hour)) {
		t.Fatalf("after rotation: %+v", rot)
	}
	if a := rot.Active(); len(a) != 2 || a[0] != rot.Current.Value {
		t.Errorf("Active %v", a)
	}
	fake.Advance(time.Hour)
	if after, _ := s.Get("key_a"); after.Previous != nil || len(after.Active()) != 1 {
		t.Errorf("after the grace window: %+v", after)
	}
	// Rotating twice drops the older previous secret at once.
	r1, _ := s.Rotate("key_a")
	r2, _ := s.Rotate("key_a")
	if r2.Previous.Value != r1.Current.Value {
		t.Errorf("previous %q, want %q", r2.Previous.Value, r1.Current.Value)
	}
	if _, err := s.Get(""); err == nil {
		t.Error("empty owner accepted")
	}
}

func TestBounded(t *testing.T) {
	s := New(clock.Real(), 0, 3)
	first, _ := s.Get("k0")
	for _, k := range []string{"k1", "k2", "k3"} {
		_, _ = s.Get(k)
	}
	if len(s.byOwner) != 3 {
		t.Errorf("%d owners kept, want 3", len(s.byOwner))
	}
	if again, _ := s.Get("k0"); again.Current.Value == first.Current.Value {
		t.Error("the oldest owner was not forgotten")
	}
}
