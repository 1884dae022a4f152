package engine_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/engine"
)

func usageEvent(k *keygate.Key, at time.Time, i int) keygate.UsageEvent {
	return keygate.UsageEvent{
		Time: at.Add(time.Duration(i) * time.Millisecond), KeyID: k.ID, AccountID: k.AccountID, Outcome: keygate.OutcomeValid,
		Method: "GET", Route: "/weather", Status: 200, Latency: time.Millisecond, IP: netip.MustParseAddr("192.0.2.1"),
	}
}

// run starts b.Run and returns a function that stops it and waits.
func run(b *engine.UsageBuffer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

func TestUsageBufferWritesEverything(t *testing.T) {
	f := newFixture(t, false)
	k, _ := f.key(t, nil)
	b := engine.NewUsageBuffer(f.store, engine.UsageOptions{FlushInterval: 10 * time.Millisecond, BatchSize: 100, PerIPEvents: -1})
	stop := run(b)
	const n = 5000
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			for i := range n / 10 {
				if !b.Record(usageEvent(k, f.clock.Now(), g*n+i)) {
					t.Error("Record dropped an event with room in the buffer")
				}
			}
		})
	}
	wg.Wait()
	stop() // shutdown writes whatever is still buffered
	evs, err := f.store.UsageEvents(context.Background(), keygate.UsageQuery{KeyID: k.ID}, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != n || b.Written() != n || b.Dropped() != 0 || b.Depth() != 0 {
		t.Fatalf("got %d stored, %d written, %d dropped, depth %d; want %d, %d, 0, 0", len(evs), b.Written(), b.Dropped(), b.Depth(), n, n)
	}
}

func TestUsageBufferDropsWhenFull(t *testing.T) {
	f := newFixture(t, false)
	k, _ := f.key(t, nil)
	b := engine.NewUsageBuffer(f.store, engine.UsageOptions{Capacity: 256})
	// Nothing drains the buffer: Run is not started.
	accepted := 0
	for i := range 1000 {
		if b.Record(usageEvent(k, f.clock.Now(), i)) {
			accepted++
		}
	}
	if accepted == 0 || accepted > 256 || b.Dropped() != uint64(1000-accepted) || b.Depth() != accepted {
		t.Fatalf("accepted %d, dropped %d, depth %d; want at most 256 accepted and the rest dropped", accepted, b.Dropped(), b.Depth())
	}
	stop := run(b)
	stop()
	if b.Written() != uint64(accepted) {
		t.Fatalf("written after drain: got %d, want %d", b.Written(), accepted)
	}
}

func TestUsageBufferKeepsEventsWhileStoreIsDown(t *testing.T) {
	f := newFixture(t, false)
	k, _ := f.key(t, nil)
	b := engine.NewUsageBuffer(f.store, engine.UsageOptions{ShutdownTimeout: 50 * time.Millisecond})
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		b.Record(usageEvent(k, f.clock.Now(), i))
	}
	for try := range 2 {
		if err := b.Flush(context.Background()); keygate.ErrorCode(err) != keygate.EUNAVAILABLE {
			t.Fatalf("Flush %d with the store down: got %v, want EUNAVAILABLE", try, err)
		}
	}
	if b.WriteFailures() != 2 || b.Depth() != 10 || b.Written() != 0 {
		t.Fatalf("with the store down: %d failures, depth %d, written %d; want 2 failures, depth 10, none written", b.WriteFailures(), b.Depth(), b.Written())
	}
	stop := run(b)
	stop()
	if b.Dropped() != 10 {
		t.Fatalf("after giving up at shutdown: dropped %d, want 10 reported lost", b.Dropped())
	}
}

func TestUsageBufferFlush(t *testing.T) {
	f := newFixture(t, false)
	k, _ := f.key(t, nil)
	b := engine.NewUsageBuffer(f.store, engine.UsageOptions{BatchSize: 100, PerIPEvents: -1})
	stop := run(b) // Flush works beside Run's own writes
	defer stop()
	ctx := context.Background()
	for round, n := range []int{3, 1500} { // a partial chunk; full chunks and a partial one
		for i := range n {
			b.Record(usageEvent(k, f.clock.Now(), round*10_000+i))
		}
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if b.Depth() != 0 {
			t.Fatalf("round %d: depth after Flush %d, want 0", round, b.Depth())
		}
	}
	evs, err := f.store.UsageEvents(ctx, keygate.UsageQuery{KeyID: k.ID}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1503 || b.Written() != 1503 {
		t.Fatalf("after Flush: %d stored, %d written; want 1503, 1503", len(evs), b.Written())
	}
}

func TestUsageRetention(t *testing.T) {
	f := newFixture(t, false)
	k, _ := f.key(t, nil)
	old := f.clock.Now().Add(-10 * 24 * time.Hour)
	if err := f.store.RecordUsage(context.Background(), []keygate.UsageEvent{usageEvent(k, old, 0), usageEvent(k, f.clock.Now(), 1)}); err != nil {
		t.Fatal(err)
	}
	b := engine.NewUsageBuffer(f.store, engine.UsageOptions{Retention: 7 * 24 * time.Hour, Now: f.clock.Now})
	if n, err := b.Prune(context.Background()); err != nil || n != 1 {
		t.Fatalf("Prune: got %d, %v; want 1 deleted", n, err)
	}
	evs, err := f.store.UsageEvents(context.Background(), keygate.UsageQuery{KeyID: k.ID}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("raw events after retention: got %d, want 1", len(evs))
	}
	agg, err := f.store.Usage(context.Background(), keygate.UsageQuery{KeyID: k.ID, From: old.Add(-time.Hour), To: f.clock.Now().Add(time.Hour), Granularity: keygate.GranularityDay})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, b := range agg {
		total += b.Total
	}
	if total != 2 {
		t.Fatalf("aggregates after retention: got %d, want 2 (aggregates are kept)", total)
	}
}

// discardUsage stands in for the store in BenchmarkVerifyRecorded, so that
// the benchmark measures what recording costs the request, not what SQLite
// costs the background writer (BenchmarkRecordUsage in package sqlite
// measures that, and the load test measures both together).
type discardUsage struct{ keygate.UsageStore }

func (discardUsage) RecordUsage(context.Context, []keygate.UsageEvent) error { return nil }

// BenchmarkVerifyRecorded is BenchmarkVerifyLimited plus building and
// recording the usage event, with the buffer's writer running: the cost
// of usage tracking on the hot path.
func BenchmarkVerifyRecorded(b *testing.B) {
	f := newFixture(b, true)
	huge, rate, burst := int64(keygate.MaxQuotaPerDay), float64(keygate.MaxRatePerSecond), int64(keygate.MaxBurst)
	_, plaintext := f.key(b, &keygate.Key{Scopes: []string{"weather:read"}, QuotaPerDay: &huge, RatePerSecond: &rate, Burst: &burst})
	eng := productionEngine(b, f, true)
	buf := engine.NewUsageBuffer(discardUsage{}, engine.UsageOptions{})
	stop := run(buf)
	defer stop()
	req := keygate.VerifyRequest{Key: plaintext, Scopes: []string{"weather:read"}, IP: netip.MustParseAddr("198.51.100.7")}
	ctx := context.Background()
	at := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		v := eng.Verify(ctx, req)
		if v.Outcome != keygate.OutcomeValid {
			b.Fatalf("got %s", v.Outcome)
		}
		buf.Record(keygate.UsageEvent{Time: at, KeyID: v.Key.ID, AccountID: v.Key.AccountID, Outcome: v.Outcome,
			Method: "GET", Route: "/weather", Status: 200, Latency: time.Microsecond, IP: req.IP})
	}
	b.StopTimer()
	b.ReportMetric(float64(buf.Dropped()), "dropped")
}
