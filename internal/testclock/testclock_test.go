package testclock

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 23, 59, 59, 0, time.UTC)
	c := New(t0)
	if a, b := c.Now(), c.Now(); !b.After(a) || a.Sub(t0) != time.Millisecond {
		t.Errorf("New: readings %v, %v; want each a millisecond after the one before", a, b)
	}
	c.Add(time.Hour)
	if got, want := c.Peek(), t0.Add(time.Hour+2*time.Millisecond); !got.Equal(want) {
		t.Errorf("after Add: got %v, want %v", got, want)
	}
	f := Fixed(t0)
	if f.Now() != t0 || f.Now() != t0 {
		t.Error("Fixed moved on its own")
	}
	f.Set(t0.Add(time.Minute))
	if got := f.Now(); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("after Set: got %v", got)
	}
}
