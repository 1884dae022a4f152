package engine_test

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/manage"
)

// BenchmarkVerifyScale is a whole hot-path check as `keygate serve` makes
// it — verification with rate limit and daily quota, then the usage event
// recorded — with 1,000 and with 1,000,000 keys in the index, cycling
// through 1,000 of them. The index is filled through Engine.Apply, as the
// store's change notifications fill it, so the benchmark needs no
// million-row store. It reports the usage events the buffer dropped, which
// must be 0: a dropped event is work the figure did not pay for.
func BenchmarkVerifyScale(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			f := newFixture(b, true)
			eng := productionEngine(b, f, true)
			ctx := context.Background()
			// The keys' tier allows far more than the benchmark sends, so
			// every check is counted and none is refused.
			tier := &keygate.Tier{Name: "bench", QuotaPerDay: keygate.MaxQuotaPerDay, RatePerSecond: keygate.MaxRatePerSecond, Burst: keygate.MaxBurst}
			if err := f.admin.CreateTier(ctx, manage.ActorSystem, tier); err != nil {
				b.Fatal(err)
			}
			now := time.Now().UTC()
			ids := keygate.NewIDs(keygate.PrefixKey, now, n)
			const hot = 1_000
			plain := make([]string, 0, hot)
			heapBefore := heapInUse()
			for i := range n {
				raw, err := apikey.Generate(apikey.DefaultPrefix, keygate.EnvLive)
				if err != nil {
					b.Fatal(err)
				}
				if i < hot {
					plain = append(plain, raw)
				}
				k := &keygate.Key{ID: ids[i], AccountID: f.account.ID, Name: "bench", Env: keygate.EnvLive,
					Start: apikey.Start(raw), Last4: apikey.Last4(raw), Hash: f.hasher.Hex(raw), HashAlg: keygate.HashKeygate,
					Tier: tier.Name, Scopes: []string{"weather:read"}, Enabled: true,
					CreatedAt: now, UpdatedAt: now}
				eng.Apply(ctx, keygate.Change{Kind: keygate.ChangeKey, ID: k.ID, Key: k})
			}
			// What the index holds per key once the records handed to
			// Apply are garbage, as they are after a store load.
			perKey := float64(heapInUse()-heapBefore) / float64(n)
			buf := engine.NewUsageBuffer(discardUsage{}, engine.UsageOptions{})
			stop := run(buf)
			defer stop()
			reqs := make([]keygate.VerifyRequest, hot)
			for i := range reqs {
				reqs[i] = keygate.VerifyRequest{Key: plain[i], Scopes: []string{"weather:read"}, IP: netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})}
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				req := &reqs[i%hot]
				i++
				start := time.Now()
				v := eng.Verify(ctx, *req)
				if v.Outcome != keygate.OutcomeValid {
					b.Fatalf("got %s, want VALID", v.Outcome)
				}
				buf.Record(keygate.UsageEvent{Time: start, KeyID: v.Key.ID, AccountID: v.Key.AccountID, Outcome: v.Outcome,
					Method: "POST", Route: "/v1/keys/verify", Status: 200, Latency: time.Since(start), IP: req.IP})
			}
			b.StopTimer()
			b.ReportMetric(float64(buf.Dropped()), "dropped")
			b.ReportMetric(perKey, "heapB/key")
		})
	}
}

// heapInUse returns the bytes of live heap objects after a full collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
