package keygate

import (
	"math"
	"time"
)

// LimitResult is a limiter's answer for one request of one key: whether the
// request may pass, and the figures for the RateLimit headers and the verify
// API's quota object.
type LimitResult struct {
	// Outcome is OutcomeValid, OutcomeRateLimited or OutcomeQuotaExceeded.
	Outcome Outcome

	// Daily quota: the limit, what is left after this request, and how long
	// until it resets at 00:00 UTC.
	QuotaLimit     int64
	QuotaRemaining int64
	QuotaReset     time.Duration

	// Per-second rate: the bucket's size (the burst), whole tokens left
	// after this request, and how long until the bucket is full again.
	RateLimit     int64
	RateRemaining int64
	RateReset     time.Duration
	// RatePerSecond is the sustained refill rate, for the policy header.
	RatePerSecond float64

	// RetryAfter is how long to wait before retrying, when not allowed.
	RetryAfter time.Duration
}

// RateWindow is the rate's window in whole seconds: the time the bucket
// takes to fill from empty, RateLimit ÷ RatePerSecond, rounded up and at
// least 1. The rate is described as RateLimit requests per RateWindow
// seconds — the burst, refilled over the window — so that the remaining
// figure (at most RateLimit) never exceeds the quota it is counted
// against. The RateLimit header's "sec" policy and the verify API's rate
// object both use it.
func (r LimitResult) RateWindow() int64 {
	if !(r.RatePerSecond > 0) || r.RateLimit <= 0 {
		return 1
	}
	w := math.Ceil(float64(r.RateLimit)/r.RatePerSecond - 1e-9)
	if w > math.MaxInt32 {
		return math.MaxInt32
	}
	return max(int64(w), 1)
}

// Allowed reports whether the request may pass.
func (r LimitResult) Allowed() bool { return r.Outcome == OutcomeValid }

// CeilSeconds returns d in whole seconds, rounded up: the figure for
// headers such as Retry-After, which must not tell a client to come back
// before it may.
func CeilSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return s
}
