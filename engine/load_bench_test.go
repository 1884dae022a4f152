package engine_test

import (
	"context"
	"os"
	"runtime"
	"testing"

	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/quota"
	"github.com/keygate/keygate/sqlite"
)

// BenchmarkLoad loads the verification index from the SQLite database
// named by KEYGATE_BENCH_DB, as `keygate serve` does at start (bench/run.sh
// makes one with 1,000,000 keys), and reports the heap it keeps. It is
// skipped without one.
func BenchmarkLoad(b *testing.B) {
	path := os.Getenv("KEYGATE_BENCH_DB")
	if path == "" {
		b.Skip("KEYGATE_BENCH_DB names no SQLite database to load")
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var heap int64
	for b.Loop() {
		before := heapInUse()
		e := engine.New(s, engine.Options{Limiter: quota.NewLocal(quota.Options{})})
		if err := e.Load(ctx); err != nil {
			b.Fatal(err)
		}
		heap = heapInUse() - before
		runtime.KeepAlive(e)
		e.Close()
	}
	b.ReportMetric(float64(heap)/(1<<20), "heapMiB")
}
