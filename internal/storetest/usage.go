package storetest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// usageEvents makes events for key k at the given offsets from base, with
// the outcomes given in turn.
func usageEvents(k *keygate.Key, base time.Time, offsets []time.Duration, outcomes ...keygate.Outcome) []keygate.UsageEvent {
	evs := make([]keygate.UsageEvent, len(offsets))
	for i, d := range offsets {
		evs[i] = keygate.UsageEvent{
			Time: base.Add(d), KeyID: k.ID, AccountID: k.AccountID, Outcome: outcomes[i%len(outcomes)],
			Method: "GET", Route: "/weather", Status: 200, Latency: 1500 * time.Microsecond,
			IP: netip.MustParseAddr("2001:db8::7"),
		}
	}
	return evs
}

func testRecordUsage(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	k := f.key(t, a.ID)
	other := f.key(t, a.ID)
	base := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	evs := usageEvents(k, base, []time.Duration{0, time.Minute, 59 * time.Minute, 61 * time.Minute, 25 * time.Hour},
		keygate.OutcomeValid, keygate.OutcomeValid, keygate.OutcomeQuotaExceeded)
	evs = append(evs, usageEvents(other, base, []time.Duration{30 * time.Minute}, keygate.OutcomeRateLimited)...)
	if err := f.s.RecordUsage(f.ctx, evs); err != nil {
		t.Fatalf("RecordUsage: %v", err)
	}
	// A second batch adds to the same buckets.
	if err := f.s.RecordUsage(f.ctx, usageEvents(k, base, []time.Duration{2 * time.Minute}, keygate.OutcomeValid)); err != nil {
		t.Fatalf("RecordUsage: %v", err)
	}

	hourly, err := f.s.Usage(f.ctx, keygate.UsageQuery{KeyID: k.ID, From: base, To: base.Add(48 * time.Hour), Granularity: keygate.GranularityHour})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		start  time.Time
		counts map[string]int64
	}{
		{base, map[string]int64{"valid": 3, "quota_exceeded": 1}},
		{base.Add(time.Hour), map[string]int64{"valid": 1}},
		{base.Add(25 * time.Hour), map[string]int64{"valid": 1}},
	}
	if len(hourly) != len(want) {
		t.Fatalf("hourly buckets: got %+v, want %d buckets", hourly, len(want))
	}
	for i, w := range want {
		b := hourly[i]
		var total int64
		for _, n := range w.counts {
			total += n
		}
		if !b.Start.Equal(w.start) || b.Total != total || len(b.Counts) != len(w.counts) {
			t.Errorf("hourly[%d]: got %+v, want start %s counts %v", i, b, w.start, w.counts)
			continue
		}
		for o, n := range w.counts {
			if b.Counts[o] != n {
				t.Errorf("hourly[%d][%s]: got %d, want %d", i, o, b.Counts[o], n)
			}
		}
	}

	daily, err := f.s.Usage(f.ctx, keygate.UsageQuery{AccountID: a.ID, From: base, To: base.Add(48 * time.Hour), Granularity: keygate.GranularityDay})
	if err != nil {
		t.Fatal(err)
	}
	if len(daily) != 2 || daily[0].Total != 6 || daily[0].Counts["rate_limited"] != 1 || daily[1].Total != 1 {
		t.Fatalf("daily usage of the account: got %+v, want 6 then 1", daily)
	}
	if !daily[0].Start.Equal(time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("daily bucket start: got %s, want the UTC midnight", daily[0].Start)
	}

	// To is exclusive: the 25h event is outside [base, base+25h).
	cut, err := f.s.Usage(f.ctx, keygate.UsageQuery{KeyID: k.ID, From: base, To: base.Add(25 * time.Hour), Granularity: keygate.GranularityHour})
	if err != nil {
		t.Fatal(err)
	}
	if len(cut) != 2 {
		t.Errorf("to is exclusive: got %d buckets, want 2", len(cut))
	}

	got, err := f.s.Key(f.ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(base.Add(25*time.Hour)) {
		t.Errorf("last_used_at: got %v, want %s", got.LastUsedAt, base.Add(25*time.Hour))
	}
	// An older batch does not move last_used_at back.
	if err := f.s.RecordUsage(f.ctx, usageEvents(k, base, []time.Duration{-time.Hour}, keygate.OutcomeValid)); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.s.Key(f.ctx, k.ID); got.LastUsedAt == nil || !got.LastUsedAt.Equal(base.Add(25*time.Hour)) {
		t.Errorf("last_used_at after an older event: got %v", got.LastUsedAt)
	}

	if _, err := f.s.Usage(f.ctx, keygate.UsageQuery{KeyID: k.ID, From: base, To: base.Add(time.Hour), Granularity: "week"}); keygate.ErrorCode(err) != keygate.EINVALID {
		t.Errorf("unknown granularity: got %v, want EINVALID", err)
	}
}

func testUsageEvents(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	k := f.key(t, a.ID)
	base := f.now.Truncate(time.Second)
	evs := usageEvents(k, base, []time.Duration{2 * time.Second, time.Second, 3 * time.Second}, keygate.OutcomeValid, keygate.OutcomeInsufficientScope)
	evs = append(evs, keygate.UsageEvent{Time: base, Outcome: keygate.OutcomeMalformed, Method: "GET", Route: "/weather", Status: 401})
	if err := f.s.RecordUsage(f.ctx, evs); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.UsageEvents(f.ctx, keygate.UsageQuery{KeyID: k.ID, From: base, To: base.Add(time.Minute)}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("raw events of the key: got %d, want 3", len(got))
	}
	for i, ev := range got {
		if !ev.Time.Equal(base.Add(time.Duration(i+1) * time.Second)) {
			t.Errorf("event %d time: got %s, want oldest first", i, ev.Time)
		}
		if ev.KeyID != k.ID || ev.AccountID != a.ID || ev.Method != "GET" || ev.Route != "/weather" || ev.Status != 200 ||
			ev.Latency != 1500*time.Microsecond || ev.IP != netip.MustParseAddr("2001:db8::7") {
			t.Errorf("event %d: got %+v", i, ev)
		}
	}
	if got, _ := f.s.UsageEvents(f.ctx, keygate.UsageQuery{KeyID: k.ID}, 2); len(got) != 2 {
		t.Errorf("limit 2: got %d events", len(got))
	}
}

func testPruneUsage(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	k := f.key(t, a.ID)
	old := time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC)
	recent := f.now.Truncate(time.Hour)
	evs := append(usageEvents(k, old, []time.Duration{0, time.Minute}, keygate.OutcomeValid),
		usageEvents(k, recent, []time.Duration{0}, keygate.OutcomeValid)...)
	if err := f.s.RecordUsage(f.ctx, evs); err != nil {
		t.Fatal(err)
	}
	n, err := f.s.PruneUsage(f.ctx, old.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Errorf("PruneUsage: got %d deleted, want at least this test's 2", n)
	}
	raw, err := f.s.UsageEvents(f.ctx, keygate.UsageQuery{KeyID: k.ID}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1 || !raw[0].Time.Equal(recent) {
		t.Fatalf("raw events after pruning: got %+v, want only the recent one", raw)
	}
	agg, err := f.s.Usage(f.ctx, keygate.UsageQuery{KeyID: k.ID, From: old, To: old.Add(24 * time.Hour), Granularity: keygate.GranularityDay})
	if err != nil {
		t.Fatal(err)
	}
	if len(agg) != 1 || agg[0].Total != 2 {
		t.Fatalf("aggregates after pruning: got %+v, want the 2 pruned events still counted", agg)
	}
}

func testRecordUsageIsNotAChange(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	k := f.key(t, a.ID)
	var changes int
	f.s.OnChange(func(c keygate.Change) {
		if c.ID == k.ID {
			changes++
		}
	})
	if err := f.s.RecordUsage(f.ctx, usageEvents(k, f.now, []time.Duration{0}, keygate.OutcomeValid)); err != nil {
		t.Fatal(err)
	}
	if changes != 0 {
		t.Fatalf("RecordUsage notified %d changes, want none", changes)
	}
}
