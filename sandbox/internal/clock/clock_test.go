package clock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newFake(t *testing.T) *clock.Fake {
	t.Helper()
	return clock.NewFake(epoch)
}

func TestFakeAfter(t *testing.T) {
	tests := []struct {
		name    string
		wait    time.Duration
		advance time.Duration
		fired   bool
	}{
		{"zero fires at once", 0, 0, true},
		{"negative fires at once", -time.Second, 0, true},
		{"not yet due", time.Minute, 59 * time.Second, false},
		{"exactly due", time.Minute, time.Minute, true},
		{"overdue", time.Minute, time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			ch := f.After(tt.wait)
			f.Advance(tt.advance)
			select {
			case got := <-ch:
				if !tt.fired {
					t.Fatalf("fired at %v, want not fired", got)
				}
			default:
				if tt.fired {
					t.Fatal("not fired, want fired")
				}
			}
		})
	}
}

func TestFakeTickerDropsTicksAndStops(t *testing.T) {
	f := newFake(t)
	tk := f.NewTicker(time.Second)
	f.Advance(10 * time.Second) // one tick buffered, the rest dropped like time.Ticker
	<-tk.C()
	select {
	case <-tk.C():
		t.Fatal("second tick buffered, want dropped")
	default:
	}
	f.Advance(time.Second)
	<-tk.C()
	tk.Stop()
	if n := f.Waiters(); n != 0 {
		t.Fatalf("Waiters after Stop = %d, want 0", n)
	}
	f.Advance(time.Hour)
	select {
	case <-tk.C():
		t.Fatal("tick after Stop")
	default:
	}
}

func TestFakeBlockUntilRaceSafe(t *testing.T) {
	f := newFake(t)
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { <-f.After(time.Minute) })
	}
	f.BlockUntil(n)
	f.Advance(time.Minute)
	wg.Wait()
	if got, want := f.Now(), epoch.Add(time.Minute); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
	f.Set(epoch)
	if !f.Now().Equal(epoch) {
		t.Fatal("Set did not move the clock back")
	}
}

func TestReal(t *testing.T) {
	c := clock.Real()
	tk := c.NewTicker(time.Millisecond)
	defer tk.Stop()
	<-tk.C()
	<-c.After(time.Millisecond)
	if c.Now().IsZero() {
		t.Fatal("zero Now")
	}
}
