package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/keygate/keygate/engine"
)

// Loading the verification index decodes every key record: most of what
// it allocates is garbage at once, while the index it builds grows to its
// full size. With the default GOGC the collector runs each time the heap
// doubles over a live heap that keeps growing, and marks the growing index
// over and over: about a third of the load's CPU (docs/BENCHMARKS.md,
// start-up). loadIndex therefore collects less often while it loads, under
// a memory limit that keeps the peak bounded, and puts both settings back
// when it is done.
const (
	loadGCPercent   = 400
	loadMemoryLimit = 512 << 20
)

// loadIndex runs eng.Load with the load's GC settings, then hands the
// garbage back to the OS at once rather than over the next minutes.
func loadIndex(ctx context.Context, eng *engine.Engine) error {
	restore := loadGC()
	defer debug.FreeOSMemory()
	defer restore()
	return eng.Load(ctx)
}

// loadGC applies the load's GC settings unless the operator turned the
// collector off, and returns the func that puts the previous ones back.
// A GOMEMLIMIT the operator set is kept when it is lower. Once the live
// heap passes three quarters of the limit (an index of a few million keys), a watcher
// puts the settings back early, so that a large index never makes the
// collector run continuously near the limit.
func loadGC() (restore func()) {
	gcPercent := debug.SetGCPercent(loadGCPercent)
	if gcPercent < 0 {
		debug.SetGCPercent(gcPercent)
		return func() {}
	}
	limit := debug.SetMemoryLimit(-1)
	loadLimit := min(limit, loadMemoryLimit)
	debug.SetMemoryLimit(loadLimit)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				metrics.Read(live)
				if live[0].Value.Kind() == metrics.KindUint64 && live[0].Value.Uint64() > uint64(loadLimit)/4*3 {
					debug.SetGCPercent(gcPercent)
					debug.SetMemoryLimit(limit)
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		debug.SetGCPercent(gcPercent)
		debug.SetMemoryLimit(limit)
	}
}
