package engine

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate"
)

// UsageOptions configure a UsageBuffer.
type UsageOptions struct {
	// Capacity is how many events may wait to be written; past it, events
	// are dropped (and counted) rather than slowing requests. 0 = 100,000.
	Capacity int
	// FlushInterval is how often buffered events are written; a crash
	// loses at most this much usage. 0 = 200ms.
	FlushInterval time.Duration
	// BatchSize bounds the events of one store write. 0 = 5,000.
	BatchSize int
	// Retention is how long raw events are kept; aggregates are kept for
	// good. 0 keeps raw events for good.
	Retention time.Duration
	// ShutdownTimeout bounds how long Run keeps retrying a failing store
	// at shutdown before it reports the unwritten events lost. 0 = 10s.
	ShutdownTimeout time.Duration
	// Now is the clock for retention; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// UsageBuffer takes usage events from the hot path without blocking and
// writes them to the store in batches. It is safe for concurrent use.
type UsageBuffer struct {
	store     keygate.UsageStore
	o         UsageOptions
	shards    []usageShard
	perShard  int
	next      atomic.Uint32
	kick      chan struct{}
	dropped   atomic.Uint64
	written   atomic.Uint64
	failures  atomic.Uint64
	pending   atomic.Int64 // collected, not yet written
	lastDrop  atomic.Int64 // unix nanos of the last "dropping" log line
	loggedAt  atomic.Uint64
	spareMu   sync.Mutex
	spareBufs [][]keygate.UsageEvent
}

type usageShard struct {
	mu  sync.Mutex
	buf []keygate.UsageEvent
	_   [40]byte // keep neighbouring shards' locks off one cache line
}

// NewUsageBuffer returns a buffer that writes to store. Call Run to start
// writing.
func NewUsageBuffer(store keygate.UsageStore, o UsageOptions) *UsageBuffer {
	if o.Capacity <= 0 {
		o.Capacity = 100_000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 5_000
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) {
		n <<= 1
	}
	b := &UsageBuffer{store: store, o: o, shards: make([]usageShard, n), perShard: max(o.Capacity/n, 1), kick: make(chan struct{}, 1)}
	return b
}

// Record queues one event. It never blocks: when the buffer is full the
// event is dropped, counted, and reported in the log at most every 10s.
func (b *UsageBuffer) Record(ev keygate.UsageEvent) bool {
	s := &b.shards[b.next.Add(1)&uint32(len(b.shards)-1)]
	s.mu.Lock()
	n := len(s.buf)
	if n >= b.perShard {
		s.mu.Unlock()
		b.drop()
		return false
	}
	s.buf = append(s.buf, ev)
	s.mu.Unlock()
	if n+1 == b.perShard/2 {
		select {
		case b.kick <- struct{}{}: // half full: write now rather than at the tick
		default:
		}
	}
	return true
}

func (b *UsageBuffer) drop() {
	b.dropped.Add(1)
	now := time.Now().UnixNano()
	last := b.lastDrop.Load()
	if now-last > int64(10*time.Second) && b.lastDrop.CompareAndSwap(last, now) {
		total := b.dropped.Load()
		b.o.Logger.Warn("usage buffer full: dropping usage events; requests still pass",
			"dropped_since_last_report", total-b.loggedAt.Swap(total), "dropped_total", total, "capacity", b.o.Capacity)
	}
}

// Depth returns how many events wait to be written.
func (b *UsageBuffer) Depth() int {
	n := int(b.pending.Load())
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		n += len(s.buf)
		s.mu.Unlock()
	}
	return n
}

// Dropped returns how many events were dropped because the buffer was full.
func (b *UsageBuffer) Dropped() uint64 { return b.dropped.Load() }

// Written returns how many events were written to the store.
func (b *UsageBuffer) Written() uint64 { return b.written.Load() }

// WriteFailures returns how many store writes failed (and were retried).
func (b *UsageBuffer) WriteFailures() uint64 { return b.failures.Load() }

// collect takes every buffered event out of the shards.
func (b *UsageBuffer) collect(into []keygate.UsageEvent) []keygate.UsageEvent {
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		if len(s.buf) == 0 {
			s.mu.Unlock()
			continue
		}
		full := s.buf
		s.buf = b.spare()
		s.mu.Unlock()
		into = append(into, full...)
		b.putSpare(full)
	}
	return into
}

func (b *UsageBuffer) spare() []keygate.UsageEvent {
	b.spareMu.Lock()
	defer b.spareMu.Unlock()
	if n := len(b.spareBufs); n > 0 {
		s := b.spareBufs[n-1]
		b.spareBufs = b.spareBufs[:n-1]
		return s
	}
	return nil
}

func (b *UsageBuffer) putSpare(s []keygate.UsageEvent) {
	clear(s) // drop references to strings for the GC
	b.spareMu.Lock()
	b.spareBufs = append(b.spareBufs, s[:0])
	b.spareMu.Unlock()
}

// Run writes buffered events every FlushInterval (sooner when the buffer
// fills) and prunes raw events past Retention hourly, until ctx is done.
// Then it writes everything still buffered — call it after the server has
// stopped taking requests — and returns.
func (b *UsageBuffer) Run(ctx context.Context) {
	tick := time.NewTicker(b.o.FlushInterval)
	defer tick.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	b.prune(ctx)
	// buf is reused from flush to flush; failed holds the events of a
	// failed write (a part of buf) to go first in the next one.
	var buf, failed []keygate.UsageEvent
	for {
		select {
		case <-ctx.Done():
			b.final(b.collect(append(buf[:0], failed...)))
			return
		case <-tick.C:
		case <-b.kick:
		case <-prune.C:
			b.prune(ctx)
			continue
		}
		buf = b.collect(append(buf[:0], failed...))
		failed = b.write(ctx, buf)
		if failed == nil {
			clear(buf) // drop the strings for the GC; keep the capacity
		}
	}
}

// write stores events in batches and returns those it could not store, to
// be retried with the next flush. What waits is bounded by Capacity: past
// it the oldest are dropped, so a long store outage cannot exhaust memory.
func (b *UsageBuffer) write(ctx context.Context, events []keygate.UsageEvent) []keygate.UsageEvent {
	for len(events) > 0 {
		n := min(len(events), b.o.BatchSize)
		b.pending.Store(int64(len(events)))
		if err := b.store.RecordUsage(ctx, events[:n]); err != nil {
			b.failures.Add(1)
			b.o.Logger.Error("writing usage events; will retry", "events", len(events), "err", err)
			if over := len(events) - b.o.Capacity; over > 0 {
				b.dropped.Add(uint64(over))
				events = events[over:]
			}
			b.pending.Store(int64(len(events)))
			return events
		}
		b.written.Add(uint64(n))
		events = events[n:]
	}
	b.pending.Store(0)
	return nil
}

// final writes what is left at shutdown, retrying a failing store for up
// to ShutdownTimeout before giving up and reporting the loss.
func (b *UsageBuffer) final(events []keygate.UsageEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), b.o.ShutdownTimeout)
	defer cancel()
	for {
		events = b.write(ctx, events)
		if len(events) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			b.dropped.Add(uint64(len(events)))
			b.o.Logger.Error("shutdown: usage events could not be written and are lost", "events", len(events))
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (b *UsageBuffer) prune(ctx context.Context) {
	if b.o.Retention <= 0 {
		return
	}
	before := b.o.Now().Add(-b.o.Retention)
	n, err := b.store.PruneUsage(ctx, before)
	if err != nil {
		b.o.Logger.Error("pruning raw usage events", "before", before, "err", err)
		return
	}
	if n > 0 {
		b.o.Logger.Info("pruned raw usage events past retention", "deleted", n, "before", before)
	}
}
