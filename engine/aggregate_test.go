package engine_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/engine"
)

// routeTotal sums the route counts of [from, from+2h) per outcome.
func routeTotal(t *testing.T, f *fixture, from time.Time) map[string]int64 {
	t.Helper()
	counts, err := f.store.RouteUsage(context.Background(), from, from.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, c := range counts {
		out[c.Route+" "+c.Outcome] += c.Count
	}
	return out
}

// 20,000 requests without a valid key, from as many addresses, become a
// handful of counts: no raw row each, nothing queued, nothing dropped
// even in a small buffer.
func TestUsageAnonymousAggregated(t *testing.T) {
	f := newFixture(t, false)
	b := engine.NewUsageBuffer(f.store, engine.UsageOptions{Capacity: 512})
	now := f.clock.Now()
	const n = 20_000
	outcomes := []keygate.Outcome{keygate.OutcomeMissingKey, keygate.OutcomeMalformed, keygate.OutcomeNotFound, keygate.OutcomeTooManyFailures}
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if !b.Record(keygate.UsageEvent{Time: now.Add(time.Duration(i) * time.Millisecond), Outcome: outcomes[i%len(outcomes)],
			Method: "GET", Route: "/weather", Status: 401, IP: ip}) {
			t.Fatalf("event %d dropped", i)
		}
	}
	if b.Depth() != 0 || b.Dropped() != 0 {
		t.Fatalf("anonymous events: depth %d, dropped %d; want 0, 0 (counted, not queued)", b.Depth(), b.Dropped())
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw, err := f.store.UsageEvents(context.Background(), keygate.UsageQuery{}, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 0 {
		t.Fatalf("raw events stored: %d, want none", len(raw))
	}
	if b.Written() != n {
		t.Errorf("written: %d requests, want %d", b.Written(), n)
	}
	if rows, err := f.store.RouteUsage(context.Background(), now.Truncate(time.Hour), now.Add(2*time.Hour)); err != nil || len(rows) > 8 {
		t.Errorf("route counts: %d rows (%v), want at most 8 (4 outcomes, 2 hours)", len(rows), err)
	}
	got := routeTotal(t, f, now.Truncate(time.Hour))
	for _, o := range outcomes {
		if got["/weather "+keygate.OutcomeKey(o)] != n/4 {
			t.Errorf("route count of %s: got %d, want %d", o, got["/weather "+keygate.OutcomeKey(o)], n/4)
		}
	}
	day, err := f.store.Usage(context.Background(), keygate.UsageQuery{From: now, To: now.Add(24 * time.Hour), Granularity: keygate.GranularityDay})
	if err != nil {
		t.Fatal(err)
	}
	if len(day) != 1 || day[0].Total != n {
		t.Fatalf("daily rollups: got %+v, want %d", day, n)
	}
}

// Throttled requests of a key are counted against the key, not stored raw.
func TestUsageThrottledAggregated(t *testing.T) {
	f := newFixture(t, false)
	k, _ := f.key(t, nil)
	b := engine.NewUsageBuffer(f.store, engine.UsageOptions{})
	now := f.clock.Now()
	for i := range 1000 {
		ev := usageEvent(k, now, i)
		ev.Outcome, ev.Status = keygate.OutcomeQuotaExceeded, 429
		if i%10 == 0 {
			ev.Outcome, ev.Status = keygate.OutcomeValid, 200
		}
		b.Record(ev)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw, err := f.store.UsageEvents(context.Background(), keygate.UsageQuery{KeyID: k.ID}, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 100 {
		t.Fatalf("raw events: got %d, want the 100 valid ones", len(raw))
	}
	u, err := f.store.Usage(context.Background(), keygate.UsageQuery{KeyID: k.ID, From: now, To: now.Add(24 * time.Hour), Granularity: keygate.GranularityDay})
	if err != nil {
		t.Fatal(err)
	}
	if len(u) != 1 || u[0].Counts["valid"] != 100 || u[0].Counts["quota_exceeded"] != 900 {
		t.Fatalf("key's usage: got %+v, want valid 100, quota_exceeded 900", u)
	}
}

// One client IP adds at most PerIPEvents raw events a minute; the rest of
// its requests are counted, and other clients are not affected.
func TestUsagePerIPCap(t *testing.T) {
	f := newFixture(t, false)
	k, _ := f.key(t, nil)
	b := engine.NewUsageBuffer(f.store, engine.UsageOptions{PerIPEvents: 100})
	now := f.clock.Now().Truncate(time.Minute)
	for i := range 1000 {
		b.Record(usageEvent(k, now, i)) // all from 192.0.2.1 within a second
	}
	for i := range 10 {
		ev := usageEvent(k, now, i)
		ev.IP = netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1))
		b.Record(ev) // one /64: one client
	}
	for i := range 5 {
		ev := usageEvent(k, now, i)
		ev.IP = netip.MustParseAddr("198.51.100.7")
		b.Record(ev)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The next minute starts a new allowance.
	b.Record(usageEvent(k, now.Add(time.Minute), 0))
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw, err := f.store.UsageEvents(context.Background(), keygate.UsageQuery{KeyID: k.ID}, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 100+10+5+1 {
		t.Fatalf("raw events: got %d, want 116 (100 of the busy client, every one of the others)", len(raw))
	}
	if b.Capped() != 900 {
		t.Errorf("capped: got %d, want 900", b.Capped())
	}
	u, err := f.store.Usage(context.Background(), keygate.UsageQuery{KeyID: k.ID, From: now, To: now.Add(24 * time.Hour), Granularity: keygate.GranularityDay})
	if err != nil {
		t.Fatal(err)
	}
	if len(u) != 1 || u[0].Counts["valid"] != 1016 {
		t.Fatalf("key's usage: got %+v, want all 1016 counted", u)
	}
	if b.Depth() != 0 {
		t.Errorf("depth after flush: %d", b.Depth())
	}
}

// BenchmarkUsageRecord records keyed events (queued for a raw row) and
// anonymous ones (counted in place), from every core.
func BenchmarkUsageRecord(b *testing.B) {
	for _, tt := range []struct {
		name  string
		keyID string
		o     keygate.Outcome
	}{{"keyed", "key_01", keygate.OutcomeValid}, {"anonymous", "", keygate.OutcomeNotFound}} {
		b.Run(tt.name, func(b *testing.B) {
			buf := engine.NewUsageBuffer(nopUsage{}, engine.UsageOptions{Capacity: 1 << 20})
			ev := keygate.UsageEvent{Time: time.Unix(1_800_000_000, 0), KeyID: tt.keyID, Outcome: tt.o, Route: "GET /weather", Method: "GET", Status: 200}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					buf.Record(ev)
					if i%100_000 == 0 {
						_ = buf.Flush(context.Background())
					}
				}
			})
		})
	}
}

// nopUsage is a usage store that takes everything and keeps nothing.
type nopUsage struct{ keygate.UsageStore }

func (nopUsage) RecordUsage(context.Context, []keygate.UsageEvent) error { return nil }
func (nopUsage) PruneUsage(context.Context, time.Time) (int64, error)    { return 0, nil }
