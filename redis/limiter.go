package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/quota"
)

var (
	_ engine.Limiter       = (*Limiter)(nil)
	_ engine.LocalCounters = (*Limiter)(nil)
)

// maxWindowMicros bounds burst*interval, in microseconds, so that every
// figure the script computes is an integer a Lua number (a double) holds
// exactly: about 142 years, far beyond any tier's bucket.
const maxWindowMicros = int64(1) << 52

// DefaultProbeInterval is how often Limiter.Run checks Redis.
const DefaultProbeInterval = time.Second

// takeScript decides one request of one key, atomically, in one round
// trip: the rate limit as GCRA, the token bucket's twin (KEYS[1], a hash of
// the instant the bucket is full again, t, and the interval i and window w
// it was shaped with), then the day's count (KEYS[2]). A refused request
// consumes nothing. ARGV: now and the emission interval and window in
// microseconds, the quota, 1 to consume, and the day key's time to live in
// milliseconds. It returns {outcome (0 pass, 1 rate, 2 quota), count after
// this request, debt in microseconds}.
//
// When the interval or window differ from those stored (the key's limits
// changed), the tokens held are converted to the new interval and clamped
// to the new burst, as quota.Local does: lowering a limit bites at once and
// raising one gives no windfall.
var takeScript = goredis.NewScript(`
local now = tonumber(ARGV[1])
local iv = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local quota = tonumber(ARGV[4])
local st = redis.call('HMGET', KEYS[1], 't', 'i', 'w')
local debt = 0
local tat = tonumber(st[1])
if tat then
  debt = math.max(tat - now, 0)
  local oiv, ow = tonumber(st[2]), tonumber(st[3])
  if oiv and ow and (oiv ~= iv or ow ~= window) then
    local held = math.max(ow - debt, 0)
    local content = math.floor(held * iv / oiv)
    debt = window - math.min(content, window)
  end
  debt = math.min(debt, window)
end
local count = tonumber(redis.call('GET', KEYS[2]) or '0')
local out = 0
if debt + iv > window then
  out = 1
elseif count >= quota then
  out = 2
elseif ARGV[5] == '1' then
  debt = debt + iv
  redis.call('HSET', KEYS[1], 't', string.format('%.0f', now + debt), 'i', ARGV[2], 'w', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(debt / 1000) + 1000)
  count = redis.call('INCR', KEYS[2])
  if count == 1 then
    redis.call('PEXPIRE', KEYS[2], ARGV[6])
  end
end
return {out, count, debt}
`)

// addScript adds ARGV[1] to a day count, giving it a time to live of
// ARGV[2] milliseconds when it has none, and returns the new count.
var addScript = goredis.NewScript(`
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
`)

// raiseScript raises a day count to ARGV[1] unless it is already higher,
// and returns the count.
var raiseScript = goredis.NewScript(`
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if n > v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return n
end
return v
`)

// LimiterOptions configure a Limiter.
type LimiterOptions struct {
	// Prefix starts every key the limiter writes; empty means
	// DefaultPrefix. Every instance of one installation must use the same.
	Prefix string
	// Now is the clock for the limiter's own upkeep (which day it is when
	// counters are restored or handed over); nil means time.Now. Requests
	// are judged at the time the engine passes, which should come from the
	// same clock.
	Now func() time.Time
	// ProbeInterval is how often Run checks Redis: while it is unreachable,
	// whether it is back; while it answers, whether it lost its data. Zero
	// means DefaultProbeInterval.
	ProbeInterval time.Duration
	Logger        *slog.Logger
}

// Limiter is an engine.Limiter that counts in Redis, so that every keygate
// instance using the same Redis shares each key's rate limit and daily
// quota. Each Take or Peek is one script call, one round trip: the rate
// (GCRA) and the quota are decided together and atomically, so that no
// number of instances or concurrent requests lets more than the quota
// through.
//
// Requests are judged at the time the engine passes (the instance's
// clock): instances' clocks should agree, as NTP keeps them. Days are UTC.
//
// When Redis cannot be reached, the Limiter does not fail: it counts in
// this process (a quota.Local seeded with the last counts it saw for each
// key), logs the change once, and returns to Redis when Run sees it answer
// again, adding what it counted meanwhile to the shared counts. While it
// counts alone, each instance enforces each key's limits by itself, so
// across N instances a key can get up to N times what was left of its
// quota. Shared reports which mode it is in.
//
// It also implements engine.LocalCounters, so that the engine saves the
// day counts it sees to the store and restores them at start: Restore
// raises Redis's counts to the stored ones, so that counts survive a Redis
// that lost its data. Run also notices a Redis that restarted empty while
// keygate ran and raises its counts again to the last ones this instance
// saw.
type Limiter struct {
	client *Client
	prefix string
	epoch  string
	now    func() time.Time
	probe  time.Duration
	log    *slog.Logger

	fb        atomic.Pointer[fallback] // nil while Redis answers
	mu        sync.Mutex               // serialises going down and coming back
	fallbacks atomic.Uint64
	local     atomic.Uint64
	repushes  atomic.Uint64

	seen seen
}

// fallback is the local limiter of one outage, and the count of each key
// and day it started from or last handed over to Redis.
type fallback struct {
	local *quota.Local
	mu    sync.Mutex
	base  map[dayKey]int64
	// pending holds counts taken from local that a failed hand-over did
	// not deliver.
	pending []keygate.Counter
	since   time.Time
}

// NewLimiter returns a Limiter on client. Call Run for its upkeep.
func NewLimiter(client *Client, o LimiterOptions) *Limiter {
	l := &Limiter{client: client, prefix: o.Prefix, now: o.Now, probe: o.ProbeInterval, log: o.Logger}
	if l.prefix == "" {
		l.prefix = DefaultPrefix
	}
	l.epoch = l.prefix + "epoch"
	if l.now == nil {
		l.now = time.Now
	}
	if l.probe <= 0 {
		l.probe = DefaultProbeInterval
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.seen.init()
	return l
}

// Shared reports whether the limiter counts in Redis (true) or, Redis
// being unreachable, in this process alone.
func (l *Limiter) Shared() bool { return l.fb.Load() == nil }

// Fallbacks returns how many times Redis became unreachable and the
// limiter started counting locally.
func (l *Limiter) Fallbacks() uint64 { return l.fallbacks.Load() }

// LocalDecisions returns how many requests were decided locally because
// Redis was unreachable.
func (l *Limiter) LocalDecisions() uint64 { return l.local.Load() }

// Take decides one request of key id under lim at time now and, when it is
// allowed, consumes one token of the rate limit and one unit of today's
// quota, in Redis. The rate limit is checked first (OutcomeRateLimited),
// then the quota (OutcomeQuotaExceeded); a refused request consumes
// nothing. It returns an error only when ctx ended; when Redis fails, the
// request is decided locally (see Limiter).
func (l *Limiter) Take(ctx context.Context, id string, lim keygate.Limits, now time.Time) (keygate.LimitResult, error) {
	return l.decide(ctx, id, lim, now, true)
}

// Peek returns what Take would answer for key id under lim at time now,
// without consuming anything.
func (l *Limiter) Peek(ctx context.Context, id string, lim keygate.Limits, now time.Time) (keygate.LimitResult, error) {
	return l.decide(ctx, id, lim, now, false)
}

func (l *Limiter) decide(ctx context.Context, id string, lim keygate.Limits, now time.Time, consume bool) (keygate.LimitResult, error) {
	if fb := l.fb.Load(); fb != nil {
		return l.decideLocally(fb, id, lim, now, consume), nil
	}
	burst, iv := bucket(lim.RatePerSecond, lim.Burst)
	window := burst * iv
	now = now.UTC()
	nowUs := now.UnixMicro()
	day := now.Format(time.DateOnly)
	reset := nextMidnight(now).Sub(now)
	c := "0"
	if consume {
		c = "1"
	}
	res, err := takeScript.Run(ctx, l.client, []string{l.rateKey(id), l.dayKey(id, day)},
		nowUs, iv, window, lim.QuotaPerDay, c, ttl(reset)).Int64Slice()
	if err == nil && len(res) != 3 {
		err = fmt.Errorf("redis: limiter script answered %d values, want 3", len(res))
	}
	if err != nil {
		if ctx.Err() != nil {
			return keygate.LimitResult{}, ctx.Err()
		}
		return l.decideLocally(l.goLocal(err), id, lim, now, consume), nil
	}
	out, count, debt := res[0], res[1], res[2]
	if consume && out == 0 {
		l.seen.note(id, day, count)
	}
	r := keygate.LimitResult{
		Outcome:        keygate.OutcomeValid,
		QuotaLimit:     lim.QuotaPerDay,
		QuotaRemaining: max(lim.QuotaPerDay-count, 0),
		QuotaReset:     reset,
		RateLimit:      lim.Burst,
		RateRemaining:  max(window-debt, 0) / iv,
		RateReset:      time.Duration(debt) * time.Microsecond,
		RatePerSecond:  lim.RatePerSecond,
	}
	switch out {
	case 1:
		r.Outcome = keygate.OutcomeRateLimited
		r.RetryAfter = retryAfter(time.Duration(debt+iv-window) * time.Microsecond)
	case 2:
		r.Outcome = keygate.OutcomeQuotaExceeded
		r.RetryAfter = retryAfter(reset)
	}
	return r, nil
}

func (l *Limiter) decideLocally(fb *fallback, id string, lim keygate.Limits, now time.Time, consume bool) keygate.LimitResult {
	l.local.Add(1)
	if consume {
		return fb.local.TakeAt(id, lim, now)
	}
	return fb.local.PeekAt(id, lim, now)
}

// goLocal switches to counting locally, once per outage, and returns the
// local limiter.
func (l *Limiter) goLocal(cause error) *fallback {
	l.mu.Lock()
	defer l.mu.Unlock()
	if fb := l.fb.Load(); fb != nil {
		return fb
	}
	now := l.now()
	fb := &fallback{local: quota.NewLocal(quota.Options{Now: l.now}), base: map[dayKey]int64{}, since: now}
	cs := l.seen.day(now.UTC().Format(time.DateOnly))
	fb.local.Restore(cs)
	for _, c := range cs {
		fb.base[dayKey{c.KeyID, c.Day}] = c.Count
	}
	l.fb.Store(fb)
	l.fallbacks.Add(1)
	l.log.Error("Redis is unreachable: rate limits and quotas are counted by this instance alone until it is back",
		"err", cause, "keys_seeded", len(cs))
	return fb
}

// Run checks Redis every ProbeInterval until ctx is done: while the
// limiter counts locally, whether Redis answers again (then it hands the
// local counts over and returns to Redis); while Redis answers, whether it
// lost its data (restarted empty), in which case it raises the counts of
// the keys this instance saw today back to what it last saw.
func (l *Limiter) Run(ctx context.Context) {
	t := time.NewTicker(l.probe)
	defer t.Stop()
	l.Check(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Check(ctx)
		}
	}
}

// Check runs one of Run's checks now.
func (l *Limiter) Check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if fb := l.fb.Load(); fb != nil {
		if err := l.client.Ping(ctx).Err(); err != nil {
			return
		}
		if err := l.comeBack(ctx, fb); err != nil {
			l.log.Warn("Redis answers again, but handing over the local counts failed; still counting locally", "err", err)
		}
		return
	}
	// The epoch key exists for as long as Redis keeps its data: when SET NX
	// succeeds, Redis started empty (or was flushed).
	fresh, err := l.client.SetNX(ctx, l.epoch, time.Now().UTC().Format(time.RFC3339), 0).Result()
	if err != nil {
		if !errors.Is(ctx.Err(), context.Canceled) {
			l.goLocal(err)
		}
		return
	}
	if fresh {
		if n, err := l.repush(ctx); err != nil {
			l.log.Warn("raising the counts of a Redis that started empty", "err", err)
		} else if n > 0 {
			l.repushes.Add(1)
			l.log.Warn("Redis lost its counts (restarted empty?): raised them again to the last ones this instance saw", "keys", n)
		}
	}
}

// comeBack hands what the local limiter counted over to Redis and returns
// to it: first what was counted so far, then, after the switch, what
// requests still under way counted.
func (l *Limiter) comeBack(ctx context.Context, fb *fallback) error {
	if err := l.handOver(ctx, fb); err != nil {
		return err
	}
	l.mu.Lock()
	l.fb.Store(nil)
	l.mu.Unlock()
	err := l.handOver(ctx, fb)
	l.log.Info("Redis answers again: rate limits and quotas are shared again", "local_for", l.now().Sub(fb.since).Round(time.Millisecond))
	return err
}

// handOver adds to Redis what fb counted since its last hand-over.
func (l *Limiter) handOver(ctx context.Context, fb *fallback) error {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	cs := latest(fb.pending, fb.local.Dirty())
	fb.pending = nil
	if len(cs) == 0 {
		return nil
	}
	now := l.now()
	pipe := l.client.Pipeline()
	cmds := make([]*goredis.Cmd, 0, len(cs))
	var adds []keygate.Counter
	for _, c := range cs {
		d := c.Count - fb.base[dayKey{c.KeyID, c.Day}]
		if d <= 0 {
			continue
		}
		adds = append(adds, keygate.Counter{KeyID: c.KeyID, Day: c.Day, Count: d})
		cmds = append(cmds, addScript.Eval(ctx, pipe, []string{l.dayKey(c.KeyID, c.Day)}, d, dayTTL(c.Day, now)))
	}
	if len(cmds) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// Not handed over: try again with the next attempt. A later count
		// of the same key supersedes an earlier one.
		fb.pending = cs
		return err
	}
	for i, c := range adds {
		fb.base[dayKey{c.KeyID, c.Day}] += c.Count
		if n, err := cmds[i].Int64(); err == nil {
			l.seen.note(c.KeyID, c.Day, n)
		}
	}
	return nil
}

// latest returns a and b with one counter per key and day, the larger
// count winning: a local count only grows.
func latest(a, b []keygate.Counter) []keygate.Counter {
	if len(a) == 0 {
		return b
	}
	idx := make(map[dayKey]int, len(a)+len(b))
	out := make([]keygate.Counter, 0, len(a)+len(b))
	for _, c := range append(a, b...) {
		k := dayKey{c.KeyID, c.Day}
		if i, ok := idx[k]; ok {
			out[i].Count = max(out[i].Count, c.Count)
			continue
		}
		idx[k] = len(out)
		out = append(out, c)
	}
	return out
}

// Dirty returns the day counts seen since the last call, for the engine to
// save to the store.
func (l *Limiter) Dirty() []keygate.Counter { return l.seen.dirty() }

// Restore raises the counts in Redis to the stored ones (today's; others
// are ignored), so that counts a Redis lost come back, and remembers them
// as seen. When Redis cannot be reached, they seed the local count.
func (l *Limiter) Restore(cs []keygate.Counter) {
	today := l.now().UTC().Format(time.DateOnly)
	var keep []keygate.Counter
	for _, c := range cs {
		if c.Day == today && c.Count > 0 {
			l.seen.restore(c)
			keep = append(keep, c)
		}
	}
	if len(keep) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.raise(ctx, keep); err != nil {
		l.goLocal(err).local.Restore(keep)
	}
}

// repush raises Redis's counts to every count this instance saw today,
// and returns how many it sent.
func (l *Limiter) repush(ctx context.Context) (int, error) {
	cs := l.seen.day(l.now().UTC().Format(time.DateOnly))
	return len(cs), l.raise(ctx, cs)
}

// raise raises Redis's counts to cs, a thousand per round trip. (Scripts
// in a pipeline are sent whole: EVALSHA's fallback on NOSCRIPT cannot work
// there.)
func (l *Limiter) raise(ctx context.Context, cs []keygate.Counter) error {
	now := l.now()
	for len(cs) > 0 {
		n := min(len(cs), 1000)
		pipe := l.client.Pipeline()
		for _, c := range cs[:n] {
			raiseScript.Eval(ctx, pipe, []string{l.dayKey(c.KeyID, c.Day)}, c.Count, dayTTL(c.Day, now))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		cs = cs[n:]
	}
	return nil
}

// Reclaim forgets the counts of past days that have been handed to the
// engine, and returns how many it dropped. Redis expires its own.
func (l *Limiter) Reclaim() int {
	return l.seen.reclaim(l.now().UTC().Format(time.DateOnly))
}

// rateKey and dayKey name a key's bucket and its count for day; the braces
// make them one Redis Cluster slot.
func (l *Limiter) rateKey(id string) string {
	return l.prefix + "{" + id + "}:rate"
}

func (l *Limiter) dayKey(id, day string) string {
	return l.prefix + "{" + id + "}:day:" + day
}

// bucket returns burst clamped to what the script's arithmetic holds
// exactly, and the emission interval for rate in microseconds: the
// smallest whole number not shorter than 1/rate, so that the bucket never
// refills faster than rate.
func bucket(rate float64, burst int64) (int64, int64) {
	burst = min(max(burst, 1), maxWindowMicros)
	maxInterval := maxWindowMicros / burst
	if !(rate > 0) { // also NaN
		return burst, maxInterval
	}
	f := math.Ceil(1e6 / rate)
	if !(f < float64(maxInterval)) {
		return burst, maxInterval
	}
	iv := max(int64(f), 1)
	for iv > 1 && float64(iv-1)*rate >= 1e6 {
		iv--
	}
	return burst, iv
}

// ttl is a time to live for Redis in whole milliseconds, at least one.
func ttl(d time.Duration) string {
	return strconv.FormatInt(max(d.Milliseconds()+int64(time.Hour/time.Millisecond), 1), 10)
}

// dayTTL is the time to live of day's count at now: until the day is over,
// and an hour more.
func dayTTL(day string, now time.Time) string {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return ttl(0)
	}
	return ttl(max(d.AddDate(0, 0, 1).Sub(now), 0))
}

func nextMidnight(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// retryAfter rounds d up to whole seconds, and to at least one, as
// Retry-After carries whole seconds.
func retryAfter(d time.Duration) time.Duration {
	return time.Duration(max(keygate.CeilSeconds(d), 1)) * time.Second
}

// dayKey names one key's count on one day.
type dayKey struct{ id, day string }

// seen holds the largest count this instance saw for each key and day, in
// shards so that requests for different keys rarely wait for each other.
type seen struct {
	seed   maphash.Seed
	shards [64]seenShard
}

type seenShard struct {
	mu sync.Mutex
	m  map[dayKey]*seenCount
	_  [40]byte // keep neighbouring shards' mutexes off one cache line
}

type seenCount struct {
	count int64
	dirty bool
}

func (s *seen) init() {
	s.seed = maphash.MakeSeed()
	for i := range s.shards {
		s.shards[i].m = map[dayKey]*seenCount{}
	}
}

func (s *seen) shard(id string) *seenShard {
	return &s.shards[maphash.String(s.seed, id)%uint64(len(s.shards))]
}

// note records that id's count on day is at least n.
func (s *seen) note(id, day string, n int64) {
	sh := s.shard(id)
	sh.mu.Lock()
	c := sh.m[dayKey{id, day}]
	if c == nil {
		c = &seenCount{}
		sh.m[dayKey{strings.Clone(id), day}] = c
	}
	if n > c.count {
		c.count, c.dirty = n, true
	}
	sh.mu.Unlock()
}

// restore records a stored count, which needs no saving.
func (s *seen) restore(k keygate.Counter) {
	sh := s.shard(k.KeyID)
	sh.mu.Lock()
	c := sh.m[dayKey{k.KeyID, k.Day}]
	if c == nil {
		c = &seenCount{}
		sh.m[dayKey{k.KeyID, k.Day}] = c
	}
	c.count = max(c.count, k.Count)
	sh.mu.Unlock()
}

func (s *seen) dirty() []keygate.Counter {
	var out []keygate.Counter
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, c := range sh.m {
			if c.dirty {
				c.dirty = false
				out = append(out, keygate.Counter{KeyID: k.id, Day: k.day, Count: c.count})
			}
		}
		sh.mu.Unlock()
	}
	return out
}

func (s *seen) day(day string) []keygate.Counter {
	var out []keygate.Counter
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, c := range sh.m {
			if k.day == day {
				out = append(out, keygate.Counter{KeyID: k.id, Day: k.day, Count: c.count})
			}
		}
		sh.mu.Unlock()
	}
	return out
}

func (s *seen) reclaim(today string) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, c := range sh.m {
			if k.day < today && !c.dirty {
				delete(sh.m, k)
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}
