package storetest

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/keygate/keygate"
)

// analyticsEvents makes n events spread over three days for keys (and
// for no key), with routes, statuses, outcomes and latencies drawn from a
// seeded source, latencies in whole microseconds as raw events keep them.
func analyticsEvents(base time.Time, n int, keys []*keygate.Key) []keygate.UsageEvent {
	rng := rand.New(rand.NewPCG(14, 2026))
	routes := []string{"/weather", "GET /alerts/{id}", "rule:admin", ""}
	statuses := []int{200, 200, 201, 404, 429, 500, 0}
	outcomes := []keygate.Outcome{keygate.OutcomeValid, keygate.OutcomeValid, keygate.OutcomeValid, keygate.OutcomeRateLimited, keygate.OutcomeInsufficientScope}
	evs := make([]keygate.UsageEvent, n)
	for i := range evs {
		ev := keygate.UsageEvent{
			Time:    base.Add(time.Duration(rng.Int64N(int64(72 * time.Hour)))).Truncate(time.Millisecond),
			Outcome: outcomes[rng.IntN(len(outcomes))],
			Method:  "GET",
			Route:   routes[rng.IntN(len(routes))],
			Status:  statuses[rng.IntN(len(statuses))],
			// Log-uniform from 1µs to about 8 s.
			Latency: time.Duration(math.Exp2(rng.Float64()*23)) * time.Microsecond,
		}
		if k := rng.IntN(len(keys) + 1); k < len(keys) {
			ev.KeyID, ev.AccountID = keys[k].ID, keys[k].AccountID
		} else {
			ev.Outcome, ev.Status = keygate.OutcomeNotFound, 401
		}
		evs[i] = ev
	}
	return evs
}

// groupValue is the value an event is grouped under by dim.
func groupValue(ev keygate.UsageEvent, dim string) string {
	switch dim {
	case keygate.GroupByRoute:
		return ev.Route
	case keygate.GroupByStatus:
		return strconv.Itoa(keygate.UsageStatus(ev.Status))
	case keygate.GroupByOutcome:
		return keygate.OutcomeKey(ev.Outcome)
	case keygate.GroupByKey:
		return ev.KeyID
	case keygate.GroupByAccount:
		return ev.AccountID
	}
	return ""
}

type tally struct {
	total   int64
	counts  map[string]int64
	latency keygate.LatencyHistogram
	account string
}

func (t *tally) add(ev keygate.UsageEvent) {
	if t.counts == nil {
		t.counts = map[string]int64{}
	}
	t.total++
	t.counts[keygate.OutcomeKey(ev.Outcome)]++
	t.latency.Observe(ev.Latency)
	t.account = ev.AccountID
}

// expectedUsage is what Usage should answer for q, worked out from raw
// events one by one.
func expectedUsage(evs []keygate.UsageEvent, q keygate.UsageQuery) []keygate.UsageBucket {
	type bucket struct {
		tally
		groups map[string]*tally
	}
	from := q.From.Truncate(time.Hour) // the store truncates From to the granularity
	if q.Granularity == keygate.GranularityDay {
		from = keygate.UsageDay(q.From)
	}
	buckets := map[time.Time]*bucket{}
	for _, ev := range evs {
		if (q.KeyID != "" && ev.KeyID != q.KeyID) || (q.AccountID != "" && ev.AccountID != q.AccountID) {
			continue
		}
		start := ev.Time.UTC().Truncate(time.Hour)
		if q.Granularity == keygate.GranularityDay {
			start = keygate.UsageDay(ev.Time)
		}
		if start.Before(from) || !start.Before(q.To) {
			continue
		}
		b := buckets[start]
		if b == nil {
			b = &bucket{groups: map[string]*tally{}}
			buckets[start] = b
		}
		b.add(ev)
		if q.GroupBy != "" {
			v := groupValue(ev, q.GroupBy)
			if b.groups[v] == nil {
				b.groups[v] = &tally{}
			}
			b.groups[v].add(ev)
		}
	}
	var out []keygate.UsageBucket
	for _, start := range slices.SortedFunc(maps.Keys(buckets), time.Time.Compare) {
		b := buckets[start]
		ub := keygate.UsageBucket{Start: start, Total: b.total, Counts: b.counts, Latency: b.latency.Percentiles()}
		for v, g := range b.groups {
			ug := keygate.UsageGroup{Value: v, Total: g.total, Counts: g.counts, Latency: g.latency.Percentiles()}
			if q.GroupBy == keygate.GroupByKey {
				ug.AccountID = g.account
			}
			ub.Groups = append(ub.Groups, ug)
		}
		slices.SortFunc(ub.Groups, func(a, b keygate.UsageGroup) int {
			return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.Value, b.Value))
		})
		out = append(out, ub)
	}
	return out
}

// Grouped usage, with its latency percentiles, equals what the raw events
// it was built from give when counted one by one: by every dimension, at
// both granularities, narrowed to a key or an account, with the events
// recorded in several batches whose histograms the store merged.
func testUsageGroupedMatchesRaw(t *testing.T, f *fixture) {
	a, b := f.account(t, keygate.TierFree), f.account(t, keygate.TierFree)
	keys := []*keygate.Key{f.key(t, a.ID), f.key(t, a.ID), f.key(t, b.ID)}
	base := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	evs := analyticsEvents(base, 900, keys)
	for i := 0; i < len(evs); i += 300 {
		if err := f.s.RecordUsage(f.ctx, evs[i:i+300]); err != nil {
			t.Fatalf("RecordUsage: %v", err)
		}
	}
	raw, err := f.s.UsageEvents(f.ctx, keygate.UsageQuery{From: base, To: base.Add(72 * time.Hour)}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != len(evs) {
		t.Fatalf("raw events: got %d, want %d", len(raw), len(evs))
	}
	for _, g := range []string{keygate.GranularityHour, keygate.GranularityDay} {
		for _, dim := range append([]string{""}, keygate.UsageGroupBys...) {
			for _, narrow := range []keygate.UsageQuery{{}, {AccountID: a.ID}, {KeyID: keys[2].ID}} {
				q := narrow
				q.Granularity, q.GroupBy = g, dim
				q.From, q.To = base.Add(5*time.Hour), base.Add(60*time.Hour)
				got, err := f.s.Usage(f.ctx, q)
				if err != nil {
					t.Fatalf("Usage(%+v): %v", q, err)
				}
				if diff := gocmp.Diff(expectedUsage(raw, q), got); diff != "" {
					t.Errorf("Usage by %s %q, key %q, account %q (-from raw events +got):\n%s", g, dim, q.KeyID, q.AccountID, diff)
				}
			}
		}
	}
	if _, err := f.s.Usage(f.ctx, keygate.UsageQuery{From: base, To: base.Add(time.Hour), Granularity: keygate.GranularityHour, GroupBy: "path"}); keygate.ErrorCode(err) != keygate.EINVALID {
		t.Errorf("group by path: got %v, want EINVALID", err)
	}
}

// The keys and accounts with the most requests, most first, with their
// outcomes and latencies; requests that named no key rank nowhere.
func testUsageTop(t *testing.T, f *fixture) {
	a, b := f.account(t, keygate.TierFree), f.account(t, keygate.TierFree)
	k1, k2, k3 := f.key(t, a.ID), f.key(t, a.ID), f.key(t, b.ID)
	base := time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC)
	var evs []keygate.UsageEvent
	for k, n := range map[*keygate.Key]int{k1: 5, k2: 2, k3: 4} {
		for i := range n {
			evs = append(evs, keygate.UsageEvent{Time: base.Add(time.Duration(i) * time.Minute), KeyID: k.ID, AccountID: k.AccountID,
				Outcome: keygate.OutcomeValid, Route: "/weather", Status: 200, Latency: time.Duration(i+1) * time.Millisecond})
		}
	}
	evs = append(evs, keygate.UsageEvent{Time: base, Outcome: keygate.OutcomeNotFound, Status: 401},
		keygate.UsageEvent{Time: base, KeyID: k2.ID, AccountID: a.ID, Outcome: keygate.OutcomeRateLimited, Status: 429, Latency: time.Millisecond},
		// Outside the period.
		keygate.UsageEvent{Time: base.Add(48 * time.Hour), KeyID: k2.ID, AccountID: a.ID, Outcome: keygate.OutcomeValid, Status: 200})
	if err := f.s.RecordUsage(f.ctx, evs); err != nil {
		t.Fatal(err)
	}
	top := func(by, account string, limit int) []keygate.UsageGroup {
		t.Helper()
		got, err := f.s.UsageTop(f.ctx, keygate.UsageTopQuery{By: by, AccountID: account, From: base, To: base.Add(24 * time.Hour),
			Granularity: keygate.GranularityDay, Limit: limit})
		if err != nil {
			t.Fatalf("UsageTop(%s): %v", by, err)
		}
		return got
	}
	type row struct {
		Value, Account string
		Total, Valid   int64
		HasLatency     bool
	}
	rows := func(gs []keygate.UsageGroup) []row {
		var out []row
		for _, g := range gs {
			out = append(out, row{g.Value, g.AccountID, g.Total, g.Counts["valid"], g.Latency != nil})
		}
		return out
	}
	if diff := gocmp.Diff([]row{{k1.ID, a.ID, 5, 5, true}, {k3.ID, b.ID, 4, 4, true}}, rows(top(keygate.GroupByKey, "", 2))); diff != "" {
		t.Errorf("top 2 keys (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]row{{k1.ID, a.ID, 5, 5, true}, {k2.ID, a.ID, 3, 2, true}}, rows(top(keygate.GroupByKey, a.ID, 10))); diff != "" {
		t.Errorf("top keys of an account (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]row{{a.ID, "", 8, 7, true}, {b.ID, "", 4, 4, true}}, rows(top(keygate.GroupByAccount, "", 10))); diff != "" {
		t.Errorf("top accounts (-want +got):\n%s", diff)
	}
	if got, want := top(keygate.GroupByKey, "", 1)[0].Latency, histOf(1, 2, 3, 4, 5).Percentiles(); got == nil || *got != *want {
		t.Errorf("top key latency: got %+v, want %+v, the percentiles of 1 to 5 ms", got, want)
	}
	if _, err := f.s.UsageTop(f.ctx, keygate.UsageTopQuery{By: keygate.GroupByRoute, From: base, To: base.Add(time.Hour), Granularity: keygate.GranularityHour, Limit: 5}); keygate.ErrorCode(err) != keygate.EINVALID {
		t.Errorf("top by route: got %v, want EINVALID", err)
	}
}

// histOf returns the histogram of latencies of ms milliseconds each.
func histOf(ms ...int) keygate.LatencyHistogram {
	var h keygate.LatencyHistogram
	for _, m := range ms {
		h.Observe(time.Duration(m) * time.Millisecond)
	}
	return h
}

// However many distinct routes arrive, a day keeps at most
// MaxUsageRoutesPerDay of them by name; the rest are counted, under
// UsageRouteOther, and the next day starts afresh. The empty route does
// not take a place.
func testUsageRoutesBounded(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	k := f.key(t, a.ID)
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	extra := 30
	var evs []keygate.UsageEvent
	for i := range keygate.MaxUsageRoutesPerDay + extra {
		evs = append(evs, keygate.UsageEvent{Time: day.Add(time.Duration(i) * time.Second), KeyID: k.ID, AccountID: a.ID,
			Outcome: keygate.OutcomeValid, Route: fmt.Sprintf("/items/%04d", i), Status: 200, Latency: time.Millisecond})
	}
	evs = append(evs, keygate.UsageEvent{Time: day, KeyID: k.ID, AccountID: a.ID, Outcome: keygate.OutcomeValid, Status: 200})
	// In two batches: the second finds the day full.
	half := len(evs) / 2
	for _, batch := range [][]keygate.UsageEvent{evs[:half], evs[half:]} {
		if err := f.s.RecordUsage(f.ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	// A route seen again later in the day keeps its name; the next day
	// names a new route.
	later := []keygate.UsageEvent{
		{Time: day.Add(23 * time.Hour), KeyID: k.ID, AccountID: a.ID, Outcome: keygate.OutcomeValid, Route: "/items/0000", Status: 200},
		{Time: day.Add(25 * time.Hour), KeyID: k.ID, AccountID: a.ID, Outcome: keygate.OutcomeValid, Route: "/items/9999", Status: 200},
	}
	if err := f.s.RecordUsage(f.ctx, later); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{keygate.GranularityDay, keygate.GranularityHour} {
		got, err := f.s.Usage(f.ctx, keygate.UsageQuery{KeyID: k.ID, From: day, To: day.Add(24 * time.Hour), Granularity: g, GroupBy: keygate.GroupByRoute})
		if err != nil {
			t.Fatal(err)
		}
		routes := map[string]int64{}
		var total int64
		for _, b := range got {
			total += b.Total
			for _, gr := range b.Groups {
				routes[gr.Value] += gr.Total
			}
		}
		if total != int64(len(evs)+1) {
			t.Errorf("by %s: counted %d requests, want %d", g, total, len(evs)+1)
		}
		if len(routes) != keygate.MaxUsageRoutesPerDay+2 || routes[keygate.UsageRouteOther] != int64(extra) || routes[""] != 1 || routes["/items/0000"] != 2 {
			t.Errorf("by %s: got %d routes, %d under %s, %d unnamed, /items/0000 %d times; want %d named, %d other, 1 unnamed, 2",
				g, len(routes), routes[keygate.UsageRouteOther], keygate.UsageRouteOther, routes[""], routes["/items/0000"],
				keygate.MaxUsageRoutesPerDay, extra)
		}
	}
	next, err := f.s.Usage(f.ctx, keygate.UsageQuery{KeyID: k.ID, From: day.Add(24 * time.Hour), To: day.Add(48 * time.Hour), Granularity: keygate.GranularityDay, GroupBy: keygate.GroupByRoute})
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != 1 || len(next[0].Groups) != 1 || next[0].Groups[0].Value != "/items/9999" {
		t.Errorf("next day: got %+v, want /items/9999 by name", next)
	}
}
