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
	b := engine.NewUsageBuffer(f.store, engine.UsageOptions{FlushInterval: 10 * time.Millisecond, BatchSize: 100})
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
	b := engine.NewUsageBuffer(f.store, engine.UsageOptions{FlushInterval: 5 * time.Millisecond, ShutdownTimeout: 50 * time.Millisecond})
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	stop := run(b)
	for i := range 10 {
		b.Record(usageEvent(k, f.clock.Now(), i))
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.WriteFailures() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if b.WriteFailures() == 0 || b.Depth() != 10 || b.Written() != 0 {
		t.Fatalf("with the store down: %d failures, depth %d, written %d; want failures, depth 10, none written", b.WriteFailures(), b.Depth(), b.Written())
	}
	stop()
	if b.Dropped() != 10 {
		t.Fatalf("after giving up at shutdown: dropped %d, want 10 reported lost", b.Dropped())
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
	stop := run(b) // Run prunes once as it starts, then hourly
	defer stop()
	var evs []keygate.UsageEvent
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var err error
		if evs, err = f.store.UsageEvents(context.Background(), keygate.UsageQuery{KeyID: k.ID}, 10); err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 {
			break
		}
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
	if d := buf.Dropped(); d > 0 {
		b.Logf("dropped %d of %d events", d, b.N)
	}
}
