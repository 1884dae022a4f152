// Package quota is keygate's in-process limiter: a token-bucket rate limit
// and a daily quota, resetting at 00:00 UTC, for every key that the
// verification engine lets through its other checks.
//
// The rate limit is a token bucket kept in the form of its generic cell rate
// algorithm (GCRA) twin: per key, the instant at which the bucket is full
// again and the emission interval, a whole number of nanoseconds per token
// rounded up from 1/rate. All bucket arithmetic is on int64 nanoseconds, so
// no amount of traffic makes rounding errors pile up: under unchanged
// limits, over any span of time e, a key gets at most burst + rate*e
// requests through, exactly.
//
// Today's counts live here and are saved by the caller: Dirty hands over
// what changed since the last call, and Restore loads what the store holds
// at start-up. See Local for when a key's state is dropped.
//
// With Options.Reserve, quota is also reserved ahead: before a request
// takes a unit of quota beyond what was last reserved, Take has Reserve
// persist "used up to N" (N a step of the quota ahead) and admits it only
// once that is stored. A crash then never gives a key back quota it has
// spent: after a restart, Restore starts the count at the last
// reservation, at most one step above what was really used.
package quota

import (
	"context"
	"hash/maphash"
	"math"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/keygate/keygate"
)

const (
	defaultIdleAfter = 10 * time.Minute
	minShards        = 64

	nsPerDay    = int64(24 * time.Hour)
	nsPerSecond = int64(time.Second)

	// maxWindow bounds burst*interval, the time an empty bucket takes to
	// fill, so that bucket arithmetic cannot overflow int64. It is about
	// 73 years; only rates of less than one token per 73/burst years are
	// affected (they refill that much faster).
	maxWindow = int64(1) << 61

	dayLayout = time.DateOnly // "2006-01-02"
)

// Local is the in-process limiter. Its state is a map of per-key entries
// split into shards, each behind its own mutex, so that requests for
// different keys rarely wait for each other. It is safe for concurrent use.
//
// Memory grows with the keys in use: Reclaim drops a key's entry once it
// has been idle for Options.IdleAfter, its bucket is full, and it holds no
// count that is still needed, that is, no count for today and no count not
// yet returned by Dirty. Entries of keys used today therefore live until the
// day is over: dropping one would forget how much of today's quota is spent.
type Local struct {
	now func() time.Time
	// base is the origin of bucket times: they are offsets from it, which
	// follow the monotonic clock when Now's times carry a reading (as
	// time.Now's do), so that a wall clock stepped back or forward neither
	// empties nor fills buckets. Days follow the wall clock: they are UTC
	// dates.
	base      time.Time
	idleAfter int64
	seed      maphash.Seed
	mask      uint64
	shards    []shard

	reserve      func(context.Context, keygate.Counter) error
	reserveSteps int64
	// reserveRetry is when (nanoseconds since base) a failed Reserve may
	// be tried again; until then requests pass unreserved.
	reserveRetry atomic.Int64
	reserveFails atomic.Uint64
}

// Options configure a Local.
type Options struct {
	// Now is the clock; nil means time.Now. Tests drive it.
	Now func() time.Time
	// Shards is the number of independently locked parts of the state,
	// rounded up to a power of two; 0 means 64 or four per CPU, whichever
	// is more.
	Shards int
	// IdleAfter is how long a key's state must go unused before Reclaim may
	// drop it; 0 means 10 minutes.
	IdleAfter time.Duration
	// Reserve, when set, persists a counter ("used up to Count") before
	// Take admits a request beyond the last reservation, and must keep the
	// larger count where one is stored (keygate.Store.SaveCounters does).
	// Take waits for it. When it fails, requests pass unreserved for
	// ReserveRetry, counted and saved by Dirty as without Reserve.
	Reserve func(ctx context.Context, c keygate.Counter) error
	// ReserveSteps is how many reservations a full day's quota takes: each
	// reserves ceil(quota/ReserveSteps) requests ahead; 0 means 100. A
	// crash can count as used at most one step that was not (and never
	// gives any back).
	ReserveSteps int
}

// ReserveRetry is how long requests pass unreserved after Reserve failed.
const ReserveRetry = time.Second

// shardState is the part of a shard that matters; shard pads it.
type shardState struct {
	mu sync.Mutex
	m  map[string]*entry
	// dirty lists the entries whose count changed since the last Dirty, so
	// that Dirty costs what changed, not what is held. An entry may appear
	// more than once, or no longer be dirty; Dirty skips those.
	dirty []*entry
	// carry holds counts of past days that changed after the last Dirty
	// and were then replaced by a new day's count.
	carry []keygate.Counter
}

// shard pads shardState to a multiple of 128 bytes so that neighbouring
// shards' mutexes never share a cache line (or an adjacent-line prefetch
// pair), which would make unrelated keys contend.
type shard struct {
	shardState
	_ [128 - unsafe.Sizeof(shardState{})%128]byte
}

// entry is one key's state. Times are nanoseconds since Local.base, days
// are whole UTC days since the Unix epoch.
type entry struct {
	key string // the map's key, so that dirty and carry lists can name it

	// The bucket: fullAt is when it is full again (at or before now, it is
	// full); it holds (burst*interval - (fullAt-now)) / interval tokens.
	// interval 0 means not yet shaped by any Limits.
	fullAt   int64
	interval int64
	window   int64 // burst*interval: how long the empty bucket takes to fill
	// burst and rate are the Limits that interval and window were derived
	// from, kept as given so that a change is noticed with two comparisons.
	burst int64
	rate  float64

	day   int64 // the UTC day that count belongs to
	count int64 // requests allowed on day
	dirty bool  // count changed since the last Dirty
	// reserved is the count persisted for day through Options.Reserve (or
	// restored); reserving is closed when the reservation under way ends.
	reserved  int64
	reserving chan struct{}

	seen int64 // last Take or Restore, for Reclaim
}

// NewLocal returns an empty Local configured by o.
func NewLocal(o Options) *Local {
	l := &Local{now: o.Now, idleAfter: int64(o.IdleAfter), seed: maphash.MakeSeed(), reserve: o.Reserve, reserveSteps: int64(o.ReserveSteps)}
	if l.reserveSteps <= 0 {
		l.reserveSteps = 100
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.base = l.now()
	if l.idleAfter <= 0 {
		l.idleAfter = int64(defaultIdleAfter)
	}
	n := o.Shards
	if n <= 0 {
		n = max(minShards, 4*runtime.GOMAXPROCS(0))
	}
	n = 1 << bits.Len(uint(n-1)) // round up to a power of two, for masking
	l.mask = uint64(n - 1)
	l.shards = make([]shard, n)
	for i := range l.shards {
		l.shards[i].m = make(map[string]*entry)
	}
	return l
}

// clock returns t as nanoseconds since base, for buckets, and as Unix
// nanoseconds, for days.
func (l *Local) clock(t time.Time) (now, wall int64) {
	return int64(t.Sub(l.base)), t.UnixNano()
}

// shard picks id's shard by hashing the string in place: the hot path must
// not copy or allocate.
func (l *Local) shard(id string) *shard {
	return &l.shards[maphash.String(l.seed, id)&l.mask]
}

// Take decides one request of key id under lim at time now and, when it is
// allowed, consumes one token and one unit of today's quota. The rate limit
// is checked first (OutcomeRateLimited, RetryAfter until one token has
// refilled), then the quota (OutcomeQuotaExceeded, RetryAfter until
// 00:00 UTC). A refused request consumes nothing. It implements
// engine.Limiter and never returns an error.
//
// lim applies at once, whatever the key was last checked under: the bucket
// keeps its tokens, up to lim.Burst, and refills at lim.RatePerSecond; the
// quota is lim.QuotaPerDay against what was used today. lim should satisfy
// keygate.ValidateLimits; other values are clamped, never a panic.
func (l *Local) Take(ctx context.Context, id string, lim keygate.Limits, now time.Time) (keygate.LimitResult, error) {
	return l.takeCtx(ctx, id, lim, now), nil
}

// Peek returns what Take would answer for key id under lim at time now,
// without consuming anything: the remaining figures are those before the
// request, and Outcome and RetryAfter say whether a Take now would pass. It
// is for the headers of failed checks and for the verify API. Peek does
// not create state for a key it has not seen. It never returns an error.
func (l *Local) Peek(ctx context.Context, id string, lim keygate.Limits, now time.Time) (keygate.LimitResult, error) {
	return l.PeekAt(id, lim, now), nil
}

// TakeAt is Take without the context and the error, for callers that hold
// a *Local. t should come from the same clock as Options.Now.
func (l *Local) TakeAt(id string, lim keygate.Limits, t time.Time) keygate.LimitResult {
	return l.takeCtx(context.Background(), id, lim, t)
}

func (l *Local) takeCtx(ctx context.Context, id string, lim keygate.Limits, t time.Time) keygate.LimitResult {
	now, wall := l.clock(t)
	today := dayOf(wall)
	s := l.shard(id)
	s.mu.Lock()
	e := s.m[id]
	if e == nil {
		// Clone so that the map does not pin the caller's memory (id may be
		// a slice of a request body); this is the only allocation, once per
		// key.
		e = &entry{key: strings.Clone(id), day: today}
		s.m[e.key] = e
	}
	s.roll(e, today)
	for l.reserve != nil && e.count >= e.reserved && e.count < lim.QuotaPerDay && now >= l.reserveRetry.Load() {
		// This request would take quota not yet reserved: reserve the
		// next step first (or wait for the reservation under way), with
		// the shard unlocked, then look again.
		if ch := e.reserving; ch != nil {
			s.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
			}
			s.mu.Lock()
			if ctx.Err() != nil {
				break
			}
			s.roll(e, today)
			continue
		}
		step := max((lim.QuotaPerDay+l.reserveSteps-1)/l.reserveSteps, 1)
		target, day := min(e.count+step, lim.QuotaPerDay), e.day
		ch := make(chan struct{})
		e.reserving = ch
		s.mu.Unlock()
		err := l.reserve(ctx, keygate.Counter{KeyID: e.key, Day: dayString(day), Count: target})
		s.mu.Lock()
		e.reserving = nil
		close(ch)
		if err != nil {
			l.reserveFails.Add(1)
			l.reserveRetry.Store(now + int64(ReserveRetry))
			break
		}
		if e.day == day {
			e.reserved = max(e.reserved, target)
		}
		s.roll(e, today)
	}
	e.shape(now, lim)
	r := e.decide(now, wall, today, lim, true)
	e.seen = now
	if r.Outcome == keygate.OutcomeValid && !e.dirty {
		e.dirty = true
		s.dirty = append(s.dirty, e)
	}
	s.mu.Unlock()
	return r
}

// PeekAt is Peek without the context and the error; see TakeAt.
func (l *Local) PeekAt(id string, lim keygate.Limits, t time.Time) keygate.LimitResult {
	now, wall := l.clock(t)
	today := dayOf(wall)
	s := l.shard(id)
	var e entry
	s.mu.Lock()
	if p := s.m[id]; p != nil {
		e = *p
	} else {
		e.day = today
	}
	s.mu.Unlock()
	// The copy is private: roll it forward and reshape it outside the lock.
	if today > e.day {
		e.day, e.count = today, 0
	}
	e.shape(now, lim)
	return e.decide(now, wall, today, lim, false)
}

// Dirty returns the counters that changed since the last call, and marks
// them clean, for the caller to save to the store. They are today's, except
// that the first call after midnight UTC also returns yesterday's final
// counts that changed after the last call before midnight, so that no
// counted request is left unsaved.
func (l *Local) Dirty() []keygate.Counter {
	var out []keygate.Counter
	// Nearly every counter is for the same day: format it once.
	day, dayStr := int64(math.MinInt64), ""
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		out = append(out, s.carry...)
		s.carry = nil // midnight's burst need not stay allocated all day
		for j, e := range s.dirty {
			if e.dirty {
				e.dirty = false
				if e.day != day {
					day, dayStr = e.day, dayString(e.day)
				}
				out = append(out, keygate.Counter{KeyID: e.key, Day: dayStr, Count: e.count})
			}
			s.dirty[j] = nil // let reclaimed entries go
		}
		s.dirty = s.dirty[:0]
		s.mu.Unlock()
	}
	return out
}

// Restore loads counters, typically today's from the store at start-up.
// Counters of days other than today (UTC, by Now) are ignored. For a key it
// already holds, it keeps the larger of its count and the given one, so
// that restoring never gives back quota already spent. Restored counts are
// not reported by Dirty: the store has them already.
func (l *Local) Restore(cs []keygate.Counter) {
	now, wall := l.clock(l.now())
	today := dayOf(wall)
	todayStr := dayString(today)
	for _, c := range cs {
		if c.Day != todayStr || c.Count <= 0 {
			continue
		}
		s := l.shard(c.KeyID)
		s.mu.Lock()
		e := s.m[c.KeyID]
		if e == nil {
			e = &entry{key: strings.Clone(c.KeyID), day: today}
			s.m[e.key] = e
		}
		s.roll(e, today)
		if e.day == today { // not so when the clock has stepped back across midnight
			e.count = max(e.count, c.Count)
			e.reserved = max(e.reserved, c.Count)
		}
		e.seen = now
		s.mu.Unlock()
	}
}

// Reclaim drops the state of keys that have been idle for IdleAfter, whose
// bucket is full and which hold no count still needed (see Local), and
// returns how many it dropped. A key whose count for a past day has not yet
// been returned by Dirty is kept until it has.
func (l *Local) Reclaim() int {
	now, wall := l.clock(l.now())
	today := dayOf(wall)
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if now-e.seen >= l.idleAfter && e.fullAt <= now && !e.dirty && e.reserving == nil &&
				(e.count == 0 || e.day < today) {
				delete(s.m, k)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// ReserveFailures returns how many reservations failed (after each,
// requests passed unreserved for ReserveRetry).
func (l *Local) ReserveFailures() uint64 { return l.reserveFails.Load() }

// Len returns how many keys have state.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// roll moves e to today when its day is past, carrying a count that Dirty
// has not yet returned so that it is still saved. It never moves e back: a
// wall clock stepping back across midnight must not hand out a fresh quota.
func (s *shard) roll(e *entry, today int64) {
	if today <= e.day {
		return
	}
	if e.dirty {
		s.carry = append(s.carry, keygate.Counter{KeyID: e.key, Day: dayString(e.day), Count: e.count})
		e.dirty = false
	}
	e.day, e.count, e.reserved = today, 0, 0
}

// shape brings e's bucket to lim's burst and rate at now. A new bucket
// starts full; an existing one keeps its tokens, clamped to the new burst,
// so that lowering a limit bites at once and raising one gives no windfall.
func (e *entry) shape(now int64, lim keygate.Limits) {
	if e.interval != 0 && lim.Burst == e.burst && lim.RatePerSecond == e.rate {
		return // the steady state
	}
	burst, interval := bucket(lim.RatePerSecond, lim.Burst)
	window := burst * interval
	if e.interval == 0 {
		e.fullAt = now
	} else {
		// Tokens held, in nanoseconds of the old interval, converted to the
		// new interval exactly (128-bit), rounding down.
		held := max(e.window-max(e.fullAt-now, 0), 0) // below 0 only if the clock stepped back
		content := held
		if interval != e.interval {
			hi, lo := bits.Mul64(uint64(held), uint64(interval))
			if hi >= uint64(e.interval) {
				content = window // more than any bucket holds
			} else {
				q, _ := bits.Div64(hi, lo, uint64(e.interval))
				content = int64(min(q, uint64(window)))
			}
		}
		e.fullAt = now + window - min(content, window)
	}
	e.interval, e.window = interval, window
	e.burst, e.rate = lim.Burst, lim.RatePerSecond
}

// bucket returns burst clamped to what the arithmetic can hold and the
// emission interval for rate: the smallest whole number of nanoseconds per
// token that is not shorter than 1/rate, so that the bucket never refills
// faster than rate. Rounding up costs less than 1ns per token: 0.1% at
// 1,000,000/s, nothing measurable at the rates tiers use.
func bucket(rate float64, burst int64) (int64, int64) {
	burst = min(max(burst, 0), maxWindow)
	maxInterval := maxWindow / max(burst, 1)
	if !(rate > 0) { // also NaN
		return burst, maxInterval
	}
	f := math.Ceil(1e9 / rate)
	if !(f < float64(maxInterval)) {
		return burst, maxInterval
	}
	iv := max(int64(f), 1)
	if iv < 1<<53 {
		// 1e9/rate was rounded before Ceil saw it; settle the last
		// nanosecond with an exact sign test (FMA rounds only once).
		for iv > 1 && math.FMA(float64(iv-1), rate, -1e9) >= 0 {
			iv--
		}
		for iv < maxInterval && math.FMA(float64(iv), rate, -1e9) < 0 {
			iv++
		}
	}
	return burst, iv
}

// decide answers one request against e, already rolled to today and shaped
// to lim, consuming from e when consume is set and the request is allowed.
func (e *entry) decide(now, wall, today int64, lim keygate.Limits, consume bool) keygate.LimitResult {
	window := e.window
	debt := max(e.fullAt-now, 0) // how long until the bucket is full
	if debt > window {
		// Only a clock without a monotonic reading, stepped back, does
		// this; the bucket is empty, not more than empty.
		debt, e.fullAt = window, now+window
	}
	left := max(lim.QuotaPerDay-e.count, 0)
	r := keygate.LimitResult{
		Outcome:       keygate.OutcomeValid,
		QuotaLimit:    lim.QuotaPerDay,
		QuotaReset:    time.Duration((today+1)*nsPerDay - wall),
		RateLimit:     lim.Burst,
		RatePerSecond: lim.RatePerSecond,
	}
	switch {
	case debt+e.interval > window:
		r.Outcome = keygate.OutcomeRateLimited
		r.RetryAfter = retryAfter(debt + e.interval - window)
	case left == 0:
		r.Outcome = keygate.OutcomeQuotaExceeded
		r.RetryAfter = retryAfter(int64(r.QuotaReset))
	case consume:
		debt += e.interval
		e.fullAt = now + debt
		e.count++
		left--
	}
	r.QuotaRemaining = left
	r.RateRemaining = max(window-debt, 0) / e.interval
	r.RateReset = time.Duration(debt)
	return r
}

// retryAfter rounds d up to whole seconds, and to at least one, because
// Retry-After carries whole seconds and a client told 0 would retry at once.
func retryAfter(d int64) time.Duration {
	return time.Duration(max(keygate.CeilSeconds(time.Duration(d)), 1)) * time.Second
}

// dayOf returns the UTC day of Unix nanoseconds ns, rounding down.
func dayOf(ns int64) int64 {
	d := ns / nsPerDay
	if ns%nsPerDay < 0 {
		d--
	}
	return d
}

func dayString(day int64) string {
	return time.Unix(day*(nsPerDay/nsPerSecond), 0).UTC().Format(dayLayout)
}
