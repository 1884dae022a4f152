package keygate

import "time"

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
