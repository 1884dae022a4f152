package sqlite_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// BenchmarkRecordUsage stores batches of 5,000 usage events, as the usage
// buffer's writer does (its default batch), for 100 keys; ns/op is per
// batch and events/s is what one writer can store. It is the capacity the
// HTTP figures of docs/BENCHMARKS.md are compared with: past it, events
// wait in the buffer and then are dropped.
func BenchmarkRecordUsage(b *testing.B) {
	ctx := context.Background()
	s := open(b, tempPath(b))
	const batch = 5000
	evs := make([]keygate.UsageEvent, batch)
	start := time.Now()
	for i := range evs {
		evs[i] = keygate.UsageEvent{
			Time: start, KeyID: "key_bench" + string(rune('a'+i%26)) + string(rune('a'+i/26%4)), AccountID: "acc_bench",
			Outcome: keygate.OutcomeValid, Method: "POST", Route: "/v1/keys/verify", Status: 200,
			Latency: 80 * time.Microsecond, IP: netip.MustParseAddr("198.51.100.7"),
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.RecordUsage(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}
