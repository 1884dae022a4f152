package keygate

import (
	"context"
	"net/netip"
	"strings"
	"time"
)

// UsageEvent records one verification: every keyed request produces one,
// valid or not. KeyID and AccountID are empty when no key was found.
//
// Count, when more than 0, makes the event an aggregate: Count requests of
// one key (or none), route and outcome within the hour starting at Time,
// added to the rollups and the route counts but stored as no raw event.
// Anonymous and throttled requests are recorded this way (see Aggregated),
// so that traffic without a valid key cannot grow the store by a row per
// request.
type UsageEvent struct {
	Time      time.Time
	KeyID     string
	AccountID string
	Outcome   Outcome
	Method    string // the HTTP method of the protected request
	Route     string // the matched route pattern, not the raw path
	Status    int    // the HTTP status answered (the upstream's, when it answered)
	Latency   time.Duration
	IP        netip.Addr
	Count     int64
}

// Aggregated reports whether requests with this outcome and key ID are
// recorded only as counts (per hour, key, route and outcome), never as
// raw events: those without a known key, and those refused by a limit.
func Aggregated(keyID string, o Outcome) bool {
	switch o {
	case OutcomeRateLimited, OutcomeQuotaExceeded, OutcomeTooManyFailures:
		return true
	}
	return keyID == ""
}

// N returns how many requests ev stands for: Count, or 1 for a raw event.
func (ev *UsageEvent) N() int64 {
	if ev.Count > 0 {
		return ev.Count
	}
	return 1
}

// RouteCount is how many requests one route had with one outcome in one
// hour: every request, keyed or not, raw or aggregated.
type RouteCount struct {
	Start   time.Time `json:"start"`
	Route   string    `json:"route"`
	Outcome string    `json:"outcome"` // lower case, as in UsageBucket
	Count   int64     `json:"count"`
}

// Usage granularities.
const (
	GranularityHour = "hour"
	GranularityDay  = "day"
)

// UsageQuery selects aggregated usage. KeyID and AccountID narrow it when
// set; From is inclusive and To exclusive, both truncated to the
// granularity by the store.
type UsageQuery struct {
	KeyID       string
	AccountID   string
	From, To    time.Time
	Granularity string
}

// UsageBucket is the usage of one hour or day: a count per outcome, keyed
// by the outcome code in lower case ("valid", "quota_exceeded", …).
type UsageBucket struct {
	Start  time.Time        `json:"start"`
	Total  int64            `json:"total"`
	Counts map[string]int64 `json:"counts"`
}

// OutcomeKey returns the lower-case form an outcome is counted under.
func OutcomeKey(o Outcome) string { return strings.ToLower(string(o)) }

// UsageStore keeps usage: raw events for a retention period, and hourly
// and daily aggregates per key and account for good.
type UsageStore interface {
	// RecordUsage stores events and adds them to the aggregates (the
	// rollups and the hourly route counts) in one transaction, and moves
	// each key's last_used_at forward. An event with Count > 0 is added to
	// the aggregates only: no raw event, no last_used_at. It does not
	// notify OnChange listeners: usage is not a change to a key. A failure
	// here never affects the other writes of the store.
	RecordUsage(ctx context.Context, events []UsageEvent) error
	// RouteUsage returns the hourly route counts with Start in [from, to),
	// oldest first, then by route and outcome.
	RouteUsage(ctx context.Context, from, to time.Time) ([]RouteCount, error)
	// Usage returns the aggregates for q, one bucket per hour or day that
	// has any usage, oldest first.
	Usage(ctx context.Context, q UsageQuery) ([]UsageBucket, error)
	// UsageEvents returns raw events for q (Granularity ignored), oldest
	// first, at most limit of them.
	UsageEvents(ctx context.Context, q UsageQuery, limit int) ([]UsageEvent, error)
	// PruneUsage deletes raw events older than before and returns how many
	// it deleted. Aggregates are kept.
	PruneUsage(ctx context.Context, before time.Time) (int64, error)
}
