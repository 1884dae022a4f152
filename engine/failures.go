package engine

import (
	"hash/maphash"
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
//
// The IPs are spread over failureShards shards, each with its own lock and
// its own share of maxTrackedIPs, so that a spread-out attack neither
// serializes valid traffic on one lock nor grows memory without bound.
type failureThrottle struct {
	burst float64
	rate  float64 // tokens per nanosecond
	seed  maphash.Seed

	// tracked is how many IPs all shards hold, read without a lock on the
	// hot path: while it is zero no lock is taken at all.
	tracked atomic.Int64
	shards  [failureShards]failureShard
}

// failureShard is one lock's worth of tracked IPs.
type failureShard struct {
	mu  sync.Mutex
	ips map[netip.Addr]*ipFailures
	// fullUntil is when reclaiming may next free an entry of a full shard:
	// until then a new IP is not tracked without scanning the shard again
	// on every failure.
	fullUntil time.Time
	_         [40]byte // keep neighbouring shards' locks off one cache line
}

const (
	failureShards = 64
	// maxTrackedIPs bounds the throttle's memory under a spread-out attack:
	// past a shard's share of it, idle entries are reclaimed, and if none
	// is idle new IPs go untracked.
	maxTrackedIPs  = 100_000
	maxShardIPs    = maxTrackedIPs / failureShards
	fullRetryAfter = time.Second
)

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
	f := &failureThrottle{burst: float64(limit), rate: float64(limit) / float64(window), seed: maphash.MakeSeed()}
	for i := range f.shards {
		f.shards[i].ips = map[netip.Addr]*ipFailures{}
	}
	return f
}

// shard returns the shard that holds key (a throttleKey).
func (f *failureThrottle) shard(key netip.Addr) *failureShard {
	return &f.shards[maphash.Comparable(f.seed, key)%failureShards]
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
// one again. It costs one atomic load while no IP has failed, and one
// shard's lock otherwise.
func (f *failureThrottle) blocked(ip netip.Addr, now time.Time) (time.Duration, bool) {
	if f.tracked.Load() == 0 || !ip.IsValid() {
		return 0, false
	}
	key := throttleKey(ip)
	s := f.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.ips[key]
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
	key := throttleKey(ip)
	s := f.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.ips[key]
	if st == nil {
		if len(s.ips) >= maxShardIPs {
			if now.Before(s.fullUntil) {
				return
			}
			f.reclaimLocked(s, now)
			if len(s.ips) >= maxShardIPs {
				s.fullUntil = now.Add(fullRetryAfter)
				return
			}
		}
		st = &ipFailures{tokens: f.burst, last: now}
		s.ips[key] = st
		f.tracked.Add(1)
	}
	f.refill(st, now)
	st.tokens = max(st.tokens-1, 0)
}

// reclaim forgets IPs whose buckets are full again, one shard at a time.
func (f *failureThrottle) reclaim(now time.Time) int {
	n := 0
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		n += f.reclaimLocked(s, now)
		s.mu.Unlock()
	}
	return n
}

func (f *failureThrottle) reclaimLocked(s *failureShard, now time.Time) int {
	n := 0
	for ip, st := range s.ips {
		if f.refill(st, now) >= f.burst {
			delete(s.ips, ip)
			n++
		}
	}
	f.tracked.Add(int64(-n))
	return n
}

// len returns how many IPs the throttle tracks.
func (f *failureThrottle) len() int { return int(f.tracked.Load()) }

// IPThrottle is a token bucket per client IP (an IPv6 /64), with the same
// bounded, sharded memory as the failure throttle of Verify: each Take
// spends a token, limit tokens refill per window, and an IP without one
// is refused until one refills. Registration uses one to bound how many
// accounts one client may create. It is safe for concurrent use.
type IPThrottle struct {
	f *failureThrottle
}

// NewIPThrottle returns a throttle that lets each IP take limit tokens
// per window.
func NewIPThrottle(limit int, window time.Duration) *IPThrottle {
	return &IPThrottle{f: newFailureThrottle(limit, window)}
}

// Take spends one of ip's tokens at now and reports true, or reports
// false and how long until ip has a token again. An invalid ip (a client
// address that could not be read) is never throttled.
func (t *IPThrottle) Take(ip netip.Addr, now time.Time) (retryAfter time.Duration, ok bool) {
	if wait, blocked := t.f.blocked(ip, now); blocked {
		return wait, false
	}
	t.f.fail(ip, now)
	return 0, true
}

// Reclaim forgets the IPs whose buckets are full again and returns how
// many it forgot. Memory stays bounded without it; calling it now and
// then frees what idle IPs hold.
func (t *IPThrottle) Reclaim(now time.Time) int { return t.f.reclaim(now) }
