package engine

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate"
)

// failureThrottle counts failed authentications per client IP in a token
// bucket: each failure takes a token, tokens refill at limit per window,
// and an IP with no token left is refused outright (TOO_MANY_FAILURES)
// until one refills — refusing only its failures would still let it learn
// which guesses are right.
type failureThrottle struct {
	burst float64
	rate  float64 // tokens per nanosecond

	tracked atomic.Int64 // len(ips), read without the lock on the hot path
	mu      sync.Mutex
	ips     map[netip.Addr]*ipFailures
}

// maxTrackedIPs bounds the throttle's memory under a spread-out attack: past
// it, idle entries are reclaimed, and if none is idle new IPs go untracked.
const maxTrackedIPs = 100_000

// throttleKey is what the throttle counts by: the address for IPv4, the /64
// for IPv6, since one client holds a whole /64.
func throttleKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64) // cannot fail for a valid IPv6 address
		return p.Addr()
	}
	return ip
}

type ipFailures struct {
	tokens float64
	last   time.Time
}

func newFailureThrottle(limit int, window time.Duration) *failureThrottle {
	return &failureThrottle{burst: float64(limit), rate: float64(limit) / float64(window), ips: map[netip.Addr]*ipFailures{}}
}

// countsAsFailure reports whether an outcome is a failed authentication
// for the throttle: a wrong, unknown or dead key. A missing key is not a
// guess.
func countsAsFailure(o keygate.Outcome) bool {
	switch o {
	case keygate.OutcomeMalformed, keygate.OutcomeNotFound, keygate.OutcomeRevoked, keygate.OutcomeExpired:
		return true
	}
	return false
}

// refill brings st up to now and returns its tokens.
func (f *failureThrottle) refill(st *ipFailures, now time.Time) float64 {
	if d := now.Sub(st.last); d > 0 {
		st.tokens = min(f.burst, st.tokens+float64(d)*f.rate)
		st.last = now
	}
	return st.tokens
}

// blocked reports whether ip is out of tokens, and how long until it has
// one again. It costs one atomic load while no IP has failed.
func (f *failureThrottle) blocked(ip netip.Addr, now time.Time) (time.Duration, bool) {
	if f.tracked.Load() == 0 || !ip.IsValid() {
		return 0, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.ips[throttleKey(ip)]
	if st == nil || f.refill(st, now) >= 1 {
		return 0, false
	}
	return time.Duration((1 - st.tokens) / f.rate), true
}

// fail takes a token from ip.
func (f *failureThrottle) fail(ip netip.Addr, now time.Time) {
	if !ip.IsValid() {
		return
	}
	ip = throttleKey(ip)
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.ips[ip]
	if st == nil {
		if len(f.ips) >= maxTrackedIPs {
			f.reclaimLocked(now)
			if len(f.ips) >= maxTrackedIPs {
				return
			}
		}
		st = &ipFailures{tokens: f.burst, last: now}
		f.ips[ip] = st
		f.tracked.Store(int64(len(f.ips)))
	}
	f.refill(st, now)
	st.tokens = max(st.tokens-1, 0)
}

// reclaim forgets IPs whose buckets are full again.
func (f *failureThrottle) reclaim(now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reclaimLocked(now)
}

func (f *failureThrottle) reclaimLocked(now time.Time) int {
	n := 0
	for ip, st := range f.ips {
		if f.refill(st, now) >= f.burst {
			delete(f.ips, ip)
			n++
		}
	}
	f.tracked.Store(int64(len(f.ips)))
	return n
}
