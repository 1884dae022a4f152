package sqlstore

import (
	"maps"
	"slices"
	"time"

	"github.com/keygate/keygate"
)

// Truncate returns the start of t's hour or UTC day (granularity).
func Truncate(t time.Time, granularity string) time.Time {
	t = t.UTC()
	if granularity == keygate.GranularityDay {
		return keygate.UsageDay(t)
	}
	return t.Truncate(time.Hour)
}

// RollupKey is one row of usage_rollups: the usage of a key in an hour or
// a day, by outcome, counted route and status.
type RollupKey struct {
	Granularity string
	KeyID       string
	Bucket      time.Time
	Outcome     string
	Route       string
	Status      int
}

// RollupSum is what a batch adds to a rollup row.
type RollupSum struct {
	AccountID string
	Count     int64
	Latency   keygate.LatencyHistogram
}

// RouteKey is one row of usage_routes: the requests of an hour to a route,
// by outcome.
type RouteKey struct {
	Bucket         time.Time
	Route, Outcome string
}

// SumUsage sums events in memory into their hourly and daily rollups and
// their hourly route counts, so that a batch costs one upsert per row
// rather than one per event. A route a day has not admitted (admitted,
// per UTC day in Unix ms) is counted as keygate.CountedRoute says.
// Aggregated events (Count > 0) add their count and no latency.
func SumUsage(events []keygate.UsageEvent, admitted map[int64]map[string]bool) (map[RollupKey]*RollupSum, map[RouteKey]int64) {
	rollups := map[RollupKey]*RollupSum{}
	routes := map[RouteKey]int64{}
	for _, ev := range events {
		route := keygate.CountedRoute(ev.Route, admitted[keygate.UsageDay(ev.Time).UnixMilli()])
		outcome, n := keygate.OutcomeKey(ev.Outcome), ev.N()
		for _, g := range []string{keygate.GranularityHour, keygate.GranularityDay} {
			k := RollupKey{g, ev.KeyID, Truncate(ev.Time, g), outcome, route, keygate.UsageStatus(ev.Status)}
			r := rollups[k]
			if r == nil {
				r = &RollupSum{AccountID: ev.AccountID}
				rollups[k] = r
			}
			r.Count += n
			if ev.Count == 0 {
				r.Latency.Observe(ev.Latency)
			}
		}
		routes[RouteKey{Truncate(ev.Time, keygate.GranularityHour), route, outcome}] += n
	}
	return rollups, routes
}

// RouteDaysCached is how many days of admitted routes a store keeps in
// memory: today's, and yesterday's for events that arrive late.
const RouteDaysCached = 3

// TrimRouteDays drops the oldest days of routes (admitted routes per UTC
// day in Unix ms) beyond RouteDaysCached.
func TrimRouteDays(routes map[int64]map[string]bool) {
	for len(routes) > RouteDaysCached {
		delete(routes, slices.Min(slices.Collect(maps.Keys(routes))))
	}
}
