package keygate

import (
	"context"
	"net/netip"
	"strings"
	"time"
)

// UsageEvent records one verification: every keyed request produces one,
// valid or not. KeyID and AccountID are empty when no key was found.
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
	// RecordUsage stores events and adds them to the aggregates in one
	// transaction, and moves each key's last_used_at forward. It does not
	// notify OnChange listeners: usage is not a change to a key.
	RecordUsage(ctx context.Context, events []UsageEvent) error
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
