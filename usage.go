package keygate

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// UsageEvent records one verification: every keyed request produces one,
// valid or not. KeyID and AccountID are empty when no key was found.
//
// Count, when more than 0, makes the event an aggregate: Count requests of
// one key (or none), route, outcome and status within the hour starting at Time,
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

// Usage dimensions: what GET /v1/usage?group_by= splits each bucket by,
// and what GET /v1/usage/top ranks (key and account).
const (
	GroupByRoute   = "route"
	GroupByStatus  = "status"
	GroupByOutcome = "outcome"
	GroupByKey     = "key"
	GroupByAccount = "account"
)

// UsageGroupBys lists the dimensions usage can be grouped by.
var UsageGroupBys = []string{GroupByRoute, GroupByStatus, GroupByOutcome, GroupByKey, GroupByAccount}

// Rollups keep at most MaxUsageRoutesPerDay distinct routes per UTC day:
// the first routes seen in a day keep their names, later ones are counted
// under UsageRouteOther. Routes are rule names and patterns, but the
// verify API takes whatever route its caller sends, and a caller that
// sends raw paths must not make the rollups grow with the traffic.
const (
	MaxUsageRoutesPerDay = 200
	UsageRouteOther      = "(other)"
)

// CheckGroupBy returns EINVALID unless g is empty or one of UsageGroupBys.
func CheckGroupBy(g string) error {
	if g != "" && !slices.Contains(UsageGroupBys, g) {
		return Errorf(EINVALID, "group_by must be one of %s.", strings.Join(UsageGroupBys, ", "))
	}
	return nil
}

// CheckTopBy returns EINVALID unless by is GroupByKey or GroupByAccount,
// what UsageTop ranks.
func CheckTopBy(by string) error {
	if by != GroupByKey && by != GroupByAccount {
		return Errorf(EINVALID, "by must be \"key\" or \"account\".")
	}
	return nil
}

// UsageQuery selects aggregated usage. KeyID and AccountID narrow it when
// set; From is inclusive and To exclusive, both truncated to the
// granularity by the store. GroupBy, when set, splits each bucket into
// groups by that dimension (one of UsageGroupBys).
type UsageQuery struct {
	KeyID       string
	AccountID   string
	From, To    time.Time
	Granularity string
	GroupBy     string
}

// UsageBucket is the usage of one hour or day: a count per outcome, keyed
// by the outcome code in lower case ("valid", "quota_exceeded", …), the
// latency percentiles, and, when grouped, the same per group, largest
// first.
type UsageBucket struct {
	Start   time.Time           `json:"start"`
	Total   int64               `json:"total"`
	Counts  map[string]int64    `json:"counts"`
	Latency *LatencyPercentiles `json:"latency_ms,omitempty"`
	Groups  []UsageGroup        `json:"groups,omitempty"`
}

// UsageGroup is the usage of one route, status, outcome, key or account:
// Value is the route, the status code in decimal, the outcome in lower
// case, or the key or account ID ("" for requests that named no known
// key, and for the route of usage recorded before routes were kept).
type UsageGroup struct {
	Value string `json:"value"`
	// AccountID is the key's account when grouped by key.
	AccountID string              `json:"account_id,omitempty"`
	Total     int64               `json:"total"`
	Counts    map[string]int64    `json:"counts"`
	Latency   *LatencyPercentiles `json:"latency_ms,omitempty"`
}

// UsageTopQuery asks for the keys or accounts (By) with the most requests
// between From and To (as in UsageQuery), at most Limit of them. KeyID
// and AccountID narrow it as in UsageQuery.
type UsageTopQuery struct {
	By          string
	KeyID       string
	AccountID   string
	From, To    time.Time
	Granularity string
	Limit       int
}

// UsageRow is one row of aggregated usage as a store reads it: the count
// and latencies of one outcome in one group of one bucket.
type UsageRow struct {
	Bucket    time.Time
	Group     string
	AccountID string
	Outcome   string
	Count     int64
	Latency   LatencyHistogram
}

// usageAcc sums rows into one bucket or group.
type usageAcc struct {
	accountID string
	total     int64
	counts    map[string]int64
	latency   LatencyHistogram
}

func (a *usageAcc) add(r *UsageRow) {
	if a.counts == nil {
		a.counts = map[string]int64{}
	}
	a.counts[r.Outcome] += r.Count
	a.total += r.Count
	a.latency.Merge(r.Latency)
	if r.AccountID != "" {
		a.accountID = r.AccountID
	}
}

// UsageBuckets assembles rows into buckets, oldest first, each split into
// groups when groupBy is set: the one place where counts are summed and
// latency histograms merged into percentiles, for every store.
func UsageBuckets(rows []UsageRow, groupBy string) []UsageBucket {
	grouped := groupBy != ""
	type bucket struct {
		usageAcc
		groups map[string]*usageAcc
	}
	byStart := map[time.Time]*bucket{}
	var starts []time.Time
	for i := range rows {
		r := &rows[i]
		b := byStart[r.Bucket]
		if b == nil {
			b = &bucket{groups: map[string]*usageAcc{}}
			byStart[r.Bucket] = b
			starts = append(starts, r.Bucket)
		}
		b.add(r)
		if grouped {
			g := b.groups[r.Group]
			if g == nil {
				g = &usageAcc{}
				b.groups[r.Group] = g
			}
			g.add(r)
		}
	}
	slices.SortFunc(starts, time.Time.Compare)
	out := make([]UsageBucket, 0, len(starts))
	for _, start := range starts {
		b := byStart[start]
		ub := UsageBucket{Start: start.UTC(), Total: b.total, Counts: b.counts, Latency: b.latency.Percentiles()}
		if grouped {
			ub.Groups = usageGroups(b.groups, groupBy == GroupByKey)
		}
		out = append(out, ub)
	}
	return out
}

// UsageTop assembles rows (Group the key or account ID, as by says) into
// groups, the most requests first, at most limit of them.
func UsageTop(rows []UsageRow, by string, limit int) []UsageGroup {
	groups := map[string]*usageAcc{}
	for i := range rows {
		r := &rows[i]
		g := groups[r.Group]
		if g == nil {
			g = &usageAcc{}
			groups[r.Group] = g
		}
		g.add(r)
	}
	out := usageGroups(groups, by == GroupByKey)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// usageGroups turns sums into groups, largest first, then by value;
// withAccount keeps each group's account ID.
func usageGroups(m map[string]*usageAcc, withAccount bool) []UsageGroup {
	out := make([]UsageGroup, 0, len(m))
	for v, a := range m {
		g := UsageGroup{Value: v, Total: a.total, Counts: a.counts, Latency: a.latency.Percentiles()}
		if withAccount {
			g.AccountID = a.accountID
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b UsageGroup) int {
		return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.Value, b.Value))
	})
	return out
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
	// UsageTop returns the keys or accounts with the most requests in q's
	// period, most first: at most q.Limit, never the "" of requests that
	// named no known key.
	UsageTop(ctx context.Context, q UsageTopQuery) ([]UsageGroup, error)
	// UsageEvents returns raw events for q (Granularity ignored), oldest
	// first, at most limit of them.
	UsageEvents(ctx context.Context, q UsageQuery, limit int) ([]UsageEvent, error)
	// PruneUsage deletes raw events older than before and returns how many
	// it deleted. Aggregates are kept.
	PruneUsage(ctx context.Context, before time.Time) (int64, error)
}

// UsageStatus returns the status a usage rollup counts an event under:
// its HTTP status, or 0 for none or one outside 100–599.
func UsageStatus(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status
}

// UsageDay returns the start of t's UTC day: the day whose route limit an
// event counts against.
func UsageDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// AdmitRoutes returns which routes of want may be added to a day that
// has already admitted the routes in known: while fewer than
// MaxUsageRoutesPerDay are admitted, new routes in name order. Stores
// record the returned routes as admitted, in the transaction that counts
// them; any route neither known nor returned is counted as
// UsageRouteOther.
func AdmitRoutes(known map[string]bool, want map[string]bool) []string {
	room := MaxUsageRoutesPerDay - len(known)
	if room <= 0 {
		return nil
	}
	var add []string
	for r := range want {
		if r != "" && !known[r] {
			add = append(add, r)
		}
	}
	slices.Sort(add)
	return add[:min(len(add), room)]
}

// CountedRoute returns the route an event is counted under on a day that
// admitted the routes in admitted: its own when admitted (or empty),
// UsageRouteOther otherwise.
func CountedRoute(route string, admitted map[string]bool) string {
	if route == "" || admitted[route] {
		return route
	}
	return UsageRouteOther
}
