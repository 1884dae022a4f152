package engine

import (
	"net/netip"
	"testing"
	"time"
)

func TestFailureThrottleIsBounded(t *testing.T) {
	f := newFailureThrottle(5, time.Minute)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := range 2 * maxTrackedIPs {
		f.fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), now)
	}
	if n := f.len(); n > maxTrackedIPs || n < maxTrackedIPs/2 {
		t.Fatalf("after %d failing IPs: tracking %d, want at most %d and most of them", 2*maxTrackedIPs, n, maxTrackedIPs)
	}
	held := 0
	for i := range f.shards {
		held += len(f.shards[i].ips)
	}
	if held != f.len() {
		t.Fatalf("shards hold %d IPs, the counter says %d", held, f.len())
	}

	// Once the buckets have refilled, the idle entries are reclaimed and
	// new IPs are tracked again.
	later := now.Add(2 * time.Minute)
	newcomer := netip.MustParseAddr("203.0.113.77")
	for range 5 {
		f.fail(newcomer, later)
	}
	if _, blocked := f.blocked(newcomer, later); !blocked {
		t.Fatal("a new failing IP after the others went idle was not tracked")
	}
	if got := f.reclaim(later); got == 0 || f.len() != 1 {
		t.Fatalf("reclaim: freed %d, %d left; want all but the newcomer freed", got, f.len())
	}
}
