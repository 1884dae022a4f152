package storetest

import (
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// Aggregated events (Count > 0) add to the rollups and the route counts
// and store no raw event; raw events count in the route counts too.
func testRecordUsageAggregates(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	k := f.key(t, a.ID)
	hour := time.Date(2026, 5, 2, 9, 0, 0, 0, time.UTC)
	route := "/" + f.name("route")
	evs := []keygate.UsageEvent{
		{Time: hour, Outcome: keygate.OutcomeNotFound, Route: route, Count: 700},
		{Time: hour, Outcome: keygate.OutcomeMissingKey, Route: route, Count: 5},
		{Time: hour, KeyID: k.ID, AccountID: a.ID, Outcome: keygate.OutcomeQuotaExceeded, Route: route, Count: 40},
	}
	evs = append(evs, usageEvents(k, hour.Add(10*time.Minute), []time.Duration{0, time.Second}, keygate.OutcomeValid)...)
	for i := range evs[3:] {
		evs[3+i].Route = route
	}
	if err := f.s.RecordUsage(f.ctx, evs); err != nil {
		t.Fatalf("RecordUsage: %v", err)
	}
	// Another batch adds to the same hour.
	if err := f.s.RecordUsage(f.ctx, []keygate.UsageEvent{{Time: hour, Outcome: keygate.OutcomeNotFound, Route: route, Count: 300}}); err != nil {
		t.Fatalf("RecordUsage: %v", err)
	}

	raw, err := f.s.UsageEvents(f.ctx, keygate.UsageQuery{KeyID: k.ID, From: hour, To: hour.Add(time.Hour)}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 {
		t.Fatalf("raw events of the key: got %d, want the 2 valid ones (the 40 throttled are counted only)", len(raw))
	}
	byKey, err := f.s.Usage(f.ctx, keygate.UsageQuery{KeyID: k.ID, From: hour, To: hour.Add(time.Hour), Granularity: keygate.GranularityHour})
	if err != nil {
		t.Fatal(err)
	}
	if len(byKey) != 1 || byKey[0].Counts["valid"] != 2 || byKey[0].Counts["quota_exceeded"] != 40 || byKey[0].Total != 42 {
		t.Fatalf("rollups of the key: got %+v, want valid 2, quota_exceeded 40", byKey)
	}
	day, err := f.s.Usage(f.ctx, keygate.UsageQuery{AccountID: a.ID, From: hour, To: hour.Add(24 * time.Hour), Granularity: keygate.GranularityDay})
	if err != nil {
		t.Fatal(err)
	}
	if len(day) != 1 || day[0].Total != 42 {
		t.Fatalf("daily rollups of the account: got %+v, want 42", day)
	}
	if got, _ := f.s.Key(f.ctx, k.ID); got.LastUsedAt == nil || !got.LastUsedAt.Equal(hour.Add(10*time.Minute+time.Second)) {
		t.Errorf("last_used_at: got %v, want the last raw event's time (aggregates do not move it)", got.LastUsedAt)
	}

	counts, err := f.s.RouteUsage(f.ctx, hour, hour.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, c := range counts {
		if c.Route != route {
			continue
		}
		if !c.Start.Equal(hour) {
			t.Errorf("route count %+v: start, want %s", c, hour)
		}
		got[c.Outcome] = c.Count
	}
	want := map[string]int64{"not_found": 1000, "missing_key": 5, "quota_exceeded": 40, "valid": 2}
	if len(got) != len(want) {
		t.Fatalf("route counts: got %v, want %v", got, want)
	}
	for o, n := range want {
		if got[o] != n {
			t.Errorf("route counts[%s]: got %d, want %d", o, got[o], n)
		}
	}
	// To is exclusive.
	if later, err := f.s.RouteUsage(f.ctx, hour.Add(time.Hour), hour.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	} else {
		for _, c := range later {
			if c.Route == route {
				t.Errorf("route counts of the next hour: got %+v", c)
			}
		}
	}
}

// RunUsageFailure checks that a store whose usage writes fail keeps every
// other write working: breakUsage makes RecordUsage fail on s (a broken
// usage table, a full reserve); keys, accounts and revocations must still
// be written, read back and notified.
func RunUsageFailure(t *testing.T, newStore func(t *testing.T) keygate.Store, breakUsage func(t *testing.T, s keygate.Store)) {
	s := newStore(t)
	f := newFixture(t, s)
	a := f.account(t, keygate.TierFree)
	k := f.key(t, a.ID)
	breakUsage(t, s)
	if err := s.RecordUsage(f.ctx, usageEvents(k, f.now, []time.Duration{0}, keygate.OutcomeValid)); err == nil {
		t.Fatal("RecordUsage succeeded on a store whose usage writes were broken")
	}
	var notified int
	s.OnChange(func(c keygate.Change) {
		if c.ID == k.ID {
			notified++
		}
	})
	at := f.now.Add(time.Minute)
	revoked, err := s.UpdateKey(f.ctx, k.ID, func(k *keygate.Key) ([]*keygate.AuditEvent, error) {
		k.RevokedAt, k.RevokedReason, k.RevokedBy, k.UpdatedAt = ptr(at), "leaked", "system", at
		return []*keygate.AuditEvent{f.event(f.actor(), "key.revoked", "key", k.ID)}, nil
	})
	if err != nil {
		t.Fatalf("revoking while usage writes fail: %v", err)
	}
	if revoked.RevokedAt == nil || notified != 1 {
		t.Fatalf("revocation: got %+v, %d notifications", revoked, notified)
	}
	if got, err := s.Key(f.ctx, k.ID); err != nil || got.RevokedAt == nil {
		t.Fatalf("the revocation read back: %+v, %v", got, err)
	}
	f.key(t, f.account(t, keygate.TierFree).ID)
	if err := s.SaveCounters(f.ctx, []keygate.Counter{{KeyID: k.ID, Day: "2026-05-02", Count: 3}}); err != nil {
		t.Fatalf("SaveCounters while usage writes fail: %v", err)
	}
	if err := s.RecordUsage(f.ctx, usageEvents(k, f.now, []time.Duration{0}, keygate.OutcomeValid)); err == nil {
		t.Fatal("RecordUsage recovered by itself")
	}
}
