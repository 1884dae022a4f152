package portal

import (
	"fmt"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	th := newThrottle(3, 15*time.Minute)
	for i := range 3 {
		if _, b := th.blocked("a@example.com", now); b {
			t.Fatalf("blocked after %d failures, want 3 allowed", i)
		}
		th.fail("a@example.com", now.Add(time.Duration(i)*time.Minute))
	}
	wait, b := th.blocked("a@example.com", now.Add(3*time.Minute))
	if !b || wait != 12*time.Minute {
		t.Errorf("after 3 failures: got blocked=%v wait=%v, want true, 12m (the window's end)", b, wait)
	}
	if _, b := th.blocked("b@example.com", now); b {
		t.Errorf("another key is blocked")
	}
	if _, b := th.blocked("a@example.com", now.Add(15*time.Minute)); b {
		t.Errorf("still blocked once the window ended")
	}
	th.fail("c", now)
	th.fail("c", now)
	th.fail("c", now)
	th.reset("c")
	if _, b := th.blocked("c", now); b {
		t.Errorf("blocked after reset")
	}
}

func TestThrottleBounded(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	th := newThrottle(1, time.Minute)
	th.max = 10
	for i := range 100 {
		th.fail(fmt.Sprint(i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(th.entries); n > 10 {
		t.Errorf("got %d entries, want at most 10", n)
	}
	if _, b := th.blocked("99", now.Add(time.Second)); !b {
		t.Errorf("the newest key was dropped instead of the oldest")
	}
}
