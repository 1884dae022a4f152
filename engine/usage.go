package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
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
	// PerIPEvents is how many raw events one client IP (an IPv6 /64) may
	// add per minute; past it, its events are counted as aggregates (per
	// hour, key, route and outcome) instead of stored one row each.
	// 0 = 600; less than 0 = no cap.
	PerIPEvents int
	// Now is the clock for retention; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// UsageBuffer takes usage events from the hot path without blocking and
// writes them to the store in batches. It is safe for concurrent use.
//
// Events go into small per-shard chunks; a full chunk is queued for the
// writer and the shard takes an empty one. Keeping chunks small keeps the
// memory the hot path writes to warm in the cache; the number of chunks
// bounds the memory, and when none is free the event is dropped.
type UsageBuffer struct {
	store     keygate.UsageStore
	o         UsageOptions
	shards    []usageShard
	full      chan []keygate.UsageEvent // chunks ready to write
	ready     chan struct{}             // a batch's worth of events is queued
	free      sync.Pool                 // empty chunks
	chunks    atomic.Int64              // chunks taken and not yet written
	maxChunks int64
	queued    atomic.Int64 // events out of the shards and not yet written
	dropped   atomic.Uint64
	capped    atomic.Uint64 // raw events counted as aggregates past PerIPEvents
	written   atomic.Uint64
	failures  atomic.Uint64
	lastDrop  atomic.Int64 // unix nanos of the last "dropping" log line
	loggedAt  atomic.Uint64

	// writeMu serializes store writes (Run's and Flush's) and guards
	// pending: the events taken out of chunks and not yet written, failed
	// writes included. Its array is reused from write to write. perIP
	// counts the raw events of each client IP in the current minute.
	writeMu sync.Mutex
	pending []keygate.UsageEvent
	perIP   map[ipMinute]int
	minute  int64
}

// ipMinute is a client (see throttleKey) in one minute.
type ipMinute struct {
	ip     netip.Addr
	minute int64
}

// aggKey is what an aggregated event counts by.
type aggKey struct {
	hour             int64 // Unix seconds of the start of the hour
	keyID, accountID string
	route            string
	outcome          keygate.Outcome
	status           int // keygate.UsageStatus of the answer: at most 501 values
}

// maxShardAggregates bounds the distinct aggregates one shard holds
// between flushes; past it, new ones are dropped and counted.
const maxShardAggregates = 4096

// maxUsageClients bounds the clients whose raw events are counted per
// minute; events of clients past it are aggregated.
const maxUsageClients = 100_000

// chunkSize is the events of one chunk.
const chunkSize = 512

type usageShard struct {
	mu  sync.Mutex
	cur []keygate.UsageEvent
	agg map[aggKey]int64 // anonymous and throttled requests, counted
	_   [32]byte         // keep neighbouring shards' locks off one cache line
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
	if o.PerIPEvents == 0 {
		o.PerIPEvents = 600
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) {
		n <<= 1
	}
	maxChunks := max(int64((o.Capacity+chunkSize-1)/chunkSize), 1)
	b := &UsageBuffer{store: store, o: o, shards: make([]usageShard, n), maxChunks: maxChunks, full: make(chan []keygate.UsageEvent, maxChunks), ready: make(chan struct{}, 1)}
	b.free.New = func() any { return make([]keygate.UsageEvent, 0, chunkSize) }
	return b
}

// Record queues one event. It never blocks: when the buffer is full the
// event is dropped, counted, and reported in the log at most every 10s.
//
// Anonymous and throttled requests (keygate.Aggregated) are only counted,
// per hour, key, route and outcome: a flood without a valid key costs a
// map entry, not a queued event and a row each, and cannot crowd the
// buffer.
func (b *UsageBuffer) Record(ev keygate.UsageEvent) bool {
	// A per-thread random shard: no counter shared between cores.
	s := &b.shards[rand.Uint32()&uint32(len(b.shards)-1)]
	if keygate.Aggregated(ev.KeyID, ev.Outcome) {
		k := aggKey{hour: ev.Time.Unix() - ev.Time.Unix()%3600, keyID: ev.KeyID, accountID: ev.AccountID, route: ev.Route, outcome: ev.Outcome, status: keygate.UsageStatus(ev.Status)}
		s.mu.Lock()
		if s.agg == nil {
			s.agg = make(map[aggKey]int64)
		}
		n, ok := s.agg[k]
		if !ok && len(s.agg) >= maxShardAggregates {
			s.mu.Unlock()
			b.drop()
			return false
		}
		s.agg[k] = n + max(ev.Count, 1)
		s.mu.Unlock()
		return true
	}
	s.mu.Lock()
	if s.cur == nil {
		if b.chunks.Add(1) > b.maxChunks {
			b.chunks.Add(-1)
			s.mu.Unlock()
			b.drop()
			return false
		}
		s.cur = b.free.Get().([]keygate.UsageEvent)
	}
	s.cur = append(s.cur, ev)
	if len(s.cur) < chunkSize {
		s.mu.Unlock()
		return true
	}
	chunk := s.cur
	s.cur = nil
	s.mu.Unlock()
	queued := b.queued.Add(chunkSize)
	b.full <- chunk // never blocks: the channel holds every chunk there can be
	if queued >= int64(b.o.BatchSize) {
		select {
		case b.ready <- struct{}{}:
		default: // the writer has been told already
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
	n := int(b.queued.Load())
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		n += len(s.cur)
		s.mu.Unlock()
	}
	return n
}

// Dropped returns how many events were dropped because the buffer was full.
func (b *UsageBuffer) Dropped() uint64 { return b.dropped.Load() }

// Capped returns how many raw events were counted as aggregates because
// their client IP passed PerIPEvents.
func (b *UsageBuffer) Capped() uint64 { return b.capped.Load() }

// Written returns how many requests' events were written to the store,
// an aggregate counting for as many requests as it stands for.
func (b *UsageBuffer) Written() uint64 { return b.written.Load() }

// WriteFailures returns how many store writes failed (and were retried).
func (b *UsageBuffer) WriteFailures() uint64 { return b.failures.Load() }

// take appends to into the events of full chunks until into holds at
// least limit events (or every full chunk, with limit < 0), recycling each
// chunk it empties. It reports whether full chunks remain.
func (b *UsageBuffer) take(into []keygate.UsageEvent, limit int) ([]keygate.UsageEvent, bool) {
	for limit < 0 || len(into) < limit {
		select {
		case chunk := <-b.full:
			into = append(into, chunk...)
			b.recycle(chunk)
			continue
		default:
		}
		return into, false
	}
	return into, len(b.full) > 0
}

// takePartial appends to into the events of the shards' partly filled
// chunks and their aggregated counts, recycling each chunk it empties.
func (b *UsageBuffer) takePartial(into []keygate.UsageEvent) []keygate.UsageEvent {
	var merged map[aggKey]int64
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		chunk := s.cur
		s.cur = nil
		agg := s.agg
		s.agg = nil
		s.mu.Unlock()
		if chunk != nil {
			b.queued.Add(int64(len(chunk)))
			into = append(into, chunk...)
			b.recycle(chunk)
		}
		if merged == nil {
			merged = agg
			continue
		}
		for k, n := range agg {
			merged[k] += n
		}
	}
	b.queued.Add(int64(len(merged)))
	for k, n := range merged {
		into = append(into, k.event(n))
	}
	return into
}

func (k aggKey) event(n int64) keygate.UsageEvent {
	return keygate.UsageEvent{Time: time.Unix(k.hour, 0).UTC(), KeyID: k.keyID, AccountID: k.accountID,
		Route: k.route, Outcome: k.outcome, Status: k.status, Count: n}
}

// capPerIP turns the raw events of events[from:] past PerIPEvents per
// client IP and minute into aggregates, so that one client cannot add
// rows without bound, and returns the events to write.
func (b *UsageBuffer) capPerIP(events []keygate.UsageEvent, from int) []keygate.UsageEvent {
	if b.o.PerIPEvents < 0 || from >= len(events) {
		return events
	}
	if b.perIP == nil {
		b.perIP = make(map[ipMinute]int)
	}
	var over map[aggKey]int64
	out := events[:from]
	for _, ev := range events[from:] {
		if ev.Count > 0 || !ev.IP.IsValid() {
			out = append(out, ev)
			continue
		}
		m := ev.Time.Unix() / 60
		if m > b.minute {
			b.minute = m
			for k := range b.perIP {
				if k.minute < m-1 {
					delete(b.perIP, k)
				}
			}
		}
		k := ipMinute{throttleKey(ev.IP), m}
		n, tracked := b.perIP[k]
		if (tracked || len(b.perIP) < maxUsageClients) && n < b.o.PerIPEvents {
			b.perIP[k] = n + 1
			out = append(out, ev)
			continue
		}
		if over == nil {
			over = make(map[aggKey]int64)
		}
		over[aggKey{hour: ev.Time.Unix() - ev.Time.Unix()%3600, keyID: ev.KeyID, accountID: ev.AccountID, route: ev.Route, outcome: ev.Outcome, status: keygate.UsageStatus(ev.Status)}]++
	}
	folded := len(events) - len(out)
	for k, n := range over {
		out = append(out, k.event(n))
	}
	b.queued.Add(int64(len(out) - len(events)))
	if folded > 0 {
		b.capped.Add(uint64(folded))
	}
	return out
}

func (b *UsageBuffer) recycle(chunk []keygate.UsageEvent) {
	clear(chunk) // drop references to strings for the GC
	b.free.Put(chunk[:0])
	b.chunks.Add(-1)
}

// Run writes buffered events every FlushInterval, and as soon as a batch's
// worth of chunks is full, and prunes raw events past Retention hourly,
// until ctx is done. Then it writes everything still buffered — call it
// after the server has stopped taking requests — and returns.
func (b *UsageBuffer) Run(ctx context.Context) {
	tick := time.NewTicker(b.o.FlushInterval)
	defer tick.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	_, _ = b.Prune(ctx) // a failure is logged; the next hour retries
	for {
		select {
		case <-ctx.Done():
			b.writeMu.Lock()
			from := len(b.pending)
			events, _ := b.take(b.pending, -1)
			events = b.capPerIP(b.takePartial(events), from)
			b.pending = nil
			b.writeMu.Unlock()
			b.final(events)
			return
		case <-tick.C:
			_ = b.flush(ctx, true) // a failure is logged and retried
		case <-b.ready:
			_ = b.flush(ctx, false)
		case <-prune.C:
			_, _ = b.Prune(ctx)
		}
	}
}

// Flush writes every event recorded before it was called, whether Run is
// running or not, and returns once they are stored. When the store fails
// it returns the error and keeps the events for the next flush.
func (b *UsageBuffer) Flush(ctx context.Context) error {
	return b.flush(ctx, true)
}

// flush writes what failed before, then the full chunks (and, with
// partial set, the partly filled ones) a batch at a time: the events
// taken out of chunks and not yet written never exceed a batch and what
// failed, so the writer's memory stays the same however far behind it is.
func (b *UsageBuffer) flush(ctx context.Context, partial bool) error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	// The rounds the chunks full now take: chunks filled meanwhile wait for
	// the next flush, so that a flush ends however busy the hot path is.
	rounds := len(b.full)*chunkSize/b.o.BatchSize + 1
	for more := true; more && rounds > 0; rounds-- {
		from := len(b.pending)
		b.pending, more = b.take(b.pending, b.o.BatchSize)
		if (!more || rounds == 1) && partial {
			b.pending = b.takePartial(b.pending)
		}
		b.pending = b.capPerIP(b.pending, from)
		left, err := b.write(ctx, b.pending)
		if err != nil {
			b.pending = left
			return err
		}
		clear(b.pending) // drop the strings for the GC; keep the capacity
		b.pending = b.pending[:0]
	}
	return nil
}

// write stores events in batches. When a write fails it returns the
// events it could not store, to be retried with the next flush, and the
// error. What waits is bounded by Capacity: past it the oldest are
// dropped, so a long store outage cannot exhaust memory.
func (b *UsageBuffer) write(ctx context.Context, events []keygate.UsageEvent) ([]keygate.UsageEvent, error) {
	for len(events) > 0 {
		n := min(len(events), b.o.BatchSize)
		if err := b.store.RecordUsage(ctx, events[:n]); err != nil {
			b.failures.Add(1)
			b.o.Logger.Error("writing usage events; will retry", "events", len(events), "err", err)
			if over := len(events) - b.o.Capacity; over > 0 {
				b.dropped.Add(uint64(over))
				b.queued.Add(-int64(over))
				events = events[over:]
			}
			return events, fmt.Errorf("write usage events: %w", err)
		}
		var requests uint64
		for i := range events[:n] {
			requests += uint64(events[i].N())
		}
		b.written.Add(requests)
		b.queued.Add(-int64(n))
		events = events[n:]
	}
	return nil, nil
}

// final writes what is left at shutdown, retrying a failing store for up
// to ShutdownTimeout before giving up and reporting the loss.
func (b *UsageBuffer) final(events []keygate.UsageEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), b.o.ShutdownTimeout)
	defer cancel()
	for {
		var err error
		if events, err = b.write(ctx, events); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			b.dropped.Add(uint64(len(events)))
			b.queued.Add(-int64(len(events)))
			b.o.Logger.Error("shutdown: usage events could not be written and are lost", "events", len(events))
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Prune deletes the raw events older than Retention at the buffer's clock
// (none when Retention is 0) and returns how many it deleted. Run calls it
// as it starts and hourly.
func (b *UsageBuffer) Prune(ctx context.Context) (int64, error) {
	if b.o.Retention <= 0 {
		return 0, nil
	}
	before := b.o.Now().Add(-b.o.Retention)
	n, err := b.store.PruneUsage(ctx, before)
	if err != nil {
		b.o.Logger.Error("pruning raw usage events", "before", before, "err", err)
		return 0, fmt.Errorf("prune usage events before %s: %w", before.Format(time.RFC3339), err)
	}
	if n > 0 {
		b.o.Logger.Info("pruned raw usage events past retention", "deleted", n, "before", before)
	}
	return n, nil
}
