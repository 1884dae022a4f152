// Package engine is keygate's verification engine: the in-memory index of
// keys by hash that answers every key check without touching the store, the
// rate and quota limiter it consults, and the upkeep that keeps both
// current (change notifications, counter flushes).
package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
)

// Limiter enforces rate limits and daily quotas per counter. quota.Local
// is the in-process implementation; redis.Limiter counts across instances.
//
// A counter is named by the identity keygate.CounterID gives a key on its
// tier: the account's ID when the tier counts per account (all of the
// account's keys share one bucket and one daily count, each checked
// against its own limits), or the key's lineage ID when it counts per key
// (a rotated key continues the counts of the key it replaced). The
// limiter treats it as an opaque string.
//
// An error means the limiter could not decide. The engine then lets the
// request pass without limit figures, logs the error (at most once every
// LimiterErrorLogInterval) and counts it in LimiterErrors: limits fail
// open, so that a broken limiter cannot lock every client out of the API
// it guards. A limiter that can degrade better does so itself, as
// redis.Limiter does by counting locally while Redis is unreachable.
type Limiter interface {
	// Take decides one request at time now and consumes from the
	// counter's bucket and daily count when it is allowed.
	Take(ctx context.Context, counter string, lim keygate.Limits, now time.Time) (keygate.LimitResult, error)
	// Peek reports the counter's figures at time now without consuming
	// anything.
	Peek(ctx context.Context, counter string, lim keygate.Limits, now time.Time) (keygate.LimitResult, error)
}

// LocalCounters is implemented by a Limiter that holds counts in this
// process's memory, which the engine then saves to the store and restores
// from it: Load calls Restore with today's stored counters, and Run calls
// Dirty every FlushInterval (and at shutdown) to save what changed, and
// Reclaim every minute.
type LocalCounters interface {
	// Dirty returns the counters changed since the last call.
	Dirty() []keygate.Counter
	// Restore loads counters saved earlier, keeping the larger count where
	// it already holds one; counters of other days than today are ignored.
	Restore(cs []keygate.Counter)
	// Reclaim drops idle per-key state and returns how many keys it
	// dropped.
	Reclaim() int
}

// LimiterErrorLogInterval is the least time between two logged limiter
// errors; the others are only counted.
const LimiterErrorLogInterval = 10 * time.Second

// Options configure an Engine.
type Options struct {
	// Hasher hashes presented keys; it must match the one keys were
	// created with. Nil means unpeppered SHA-256.
	Hasher *apikey.Hasher
	// Limiter enforces tiers' rates and quotas; nil means no limits.
	Limiter Limiter
	// FlushInterval is how often Run saves the limiter's counters to the
	// store: a crash loses at most this much counted usage. Zero means 1s.
	FlushInterval time.Duration
	// FailureLimit is how many failed authentications (malformed, unknown,
	// revoked or expired keys) one client IP may send per FailureWindow
	// before all its verifications are refused with TOO_MANY_FAILURES
	// until the window refills. 0 means 30; a negative value turns the
	// throttle off. FailureWindow 0 means one minute.
	FailureLimit  int
	FailureWindow time.Duration
	// Thresholds, when set, receives a keygate.QuotaThreshold whenever a
	// request takes a key's daily count to 80% or 100% of its quota. The
	// send never blocks: when the channel is full the report is dropped
	// and counted (ThresholdsDropped).
	Thresholds chan<- keygate.QuotaThreshold
	// Feed, when set, carries change notifications between the instances
	// sharing the store: the engine publishes every change this
	// instance's store reports and, in Run, applies those of the others.
	Feed Feed
	// SyncInterval, when more than zero, makes Run catch up with other
	// instances' writes from the store (Sync) that often while no Feed is
	// subscribed, and every FeedSyncInterval while one is, as a backstop
	// for a lost message. Zero means never: right for a store that only
	// this engine writes to.
	SyncInterval     time.Duration
	FeedSyncInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// entry is one key in the index: what Verify needs of it and nothing more,
// so that a million keys fit in little memory. Entries are never changed
// once in the index (a change replaces the entry), so a Verification may
// point into one after the lock is released.
type entry struct {
	key     keygate.VerifiedKey
	rare    *rareFields // nil when the key has none of them
	updated int64       // UpdatedAt in Unix nanoseconds, to order changes
	enabled bool
	legacy  bool // hashed with plain SHA-256 (imported)
}

// rareFields are what most keys do not have; keeping them behind one
// pointer keeps the common entry small.
type rareFields struct {
	quotaPerDay   *int64 // the key's own limits; nil means the tier's
	ratePerSecond *float64
	burst         *int64
	cidrs         []netip.Prefix // parsed IPAllow
	revokedAt     *time.Time
	// The limiter's counter identities (keygate.CounterID) that differ
	// from the key's ID and account ID: the lineage of a rotated key, and
	// the account's test counter for a test key.
	lineage     string
	testAccount string
}

// counter returns the identity the limiter counts this key under on tier
// t: keygate.CounterID, from strings made when the entry was.
func (ent *entry) counter(t *keygate.Tier) string {
	r := ent.rare
	own := r != nil && (r.quotaPerDay != nil || r.ratePerSecond != nil || r.burst != nil)
	if t.QuotaScope != keygate.QuotaScopeKey && !own {
		if r != nil && r.testAccount != "" {
			return r.testAccount
		}
		return ent.key.AccountID
	}
	if r != nil && r.lineage != "" {
		return r.lineage
	}
	return ent.key.ID
}

// limits returns the tier's limits with the key's own applied.
func (ent *entry) limits(t *keygate.Tier) keygate.Limits {
	l := keygate.Limits{QuotaPerDay: t.QuotaPerDay, RatePerSecond: t.RatePerSecond, Burst: t.Burst}
	if o := ent.rare; o != nil {
		l = l.Override(o.quotaPerDay, o.ratePerSecond, o.burst)
	}
	return l
}

// status follows keygate.Key.Status: revoked wins over expired, which
// wins over disabled.
func (ent *entry) status(now time.Time) string {
	switch {
	case ent.rare != nil && ent.rare.revokedAt != nil && !now.Before(*ent.rare.revokedAt):
		return keygate.StatusRevoked
	case ent.key.ExpiresAt != nil && !now.Before(*ent.key.ExpiresAt):
		return keygate.StatusExpired
	case !ent.enabled:
		return keygate.StatusDisabled
	}
	return keygate.StatusActive
}

// interner shares the strings and scope lists that many keys hold alike
// (tiers, environments, scope sets) so the index stores each once. Account
// IDs are shared with the account records the index holds.
type interner struct {
	accounts map[string]*keygate.Account
	strs     map[string]string
	scopes   map[string][]string
}

func newInterner(accounts map[string]*keygate.Account) *interner {
	return &interner{accounts: accounts, strs: map[string]string{}, scopes: map[string][]string{}}
}

func (in *interner) account(id string) string {
	if a := in.accounts[id]; a != nil {
		return a.ID
	}
	return strings.Clone(id)
}

func (in *interner) str(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := in.strs[s]; ok {
		return v
	}
	s = strings.Clone(s)
	in.strs[s] = s
	return s
}

func (in *interner) scopeSet(scopes []string) []string {
	if len(scopes) == 0 {
		return nil
	}
	k := strings.Join(scopes, "\x00")
	if v, ok := in.scopes[k]; ok {
		return v
	}
	v := make([]string, len(scopes))
	for i, sc := range scopes {
		v[i] = in.str(sc)
	}
	in.scopes[k] = v
	return v
}

// Engine verifies keys from memory. It is safe for concurrent use.
type Engine struct {
	store    keygate.Store
	hasher   *apikey.Hasher
	limiter  Limiter
	counters LocalCounters // limiter, when it keeps counts in memory
	flush    time.Duration
	now      func() time.Time
	log      *slog.Logger
	failures *failureThrottle // nil when off

	thresholds        chan<- keygate.QuotaThreshold
	thresholdsDropped atomic.Uint64

	mu       sync.RWMutex
	keys     map[[32]byte]*entry
	accounts map[string]*keygate.Account
	tiers    map[string]*keygate.Tier
	roots    map[[32]byte]*keygate.RootKey
	intern   *interner // guarded by mu

	// legacyKeys counts imported SHA-256 keys; while it is zero, a key that
	// does not parse is refused without any lookup.
	legacyKeys atomic.Int64

	unlisten func() // stops the store's change notifications

	feed                  Feed
	syncEvery, feedSyncEv time.Duration
	syncMu                sync.Mutex
	mark                  time.Time       // when the last Load or Sync began; guarded by syncMu
	revokedRoots          map[string]bool // root key IDs seen revoked; guarded by mu
	feedUp                atomic.Bool
	syncs, syncFailures   atomic.Uint64

	flushMu       sync.Mutex
	pending       []keygate.Counter // counters whose save failed
	flushFailures atomic.Uint64

	limiterErrors  atomic.Uint64
	rootFailures   atomic.Uint64 // wrong root keys (AuthenticateRoot)
	limiterErrLast atomic.Int64  // Unix nanoseconds of the last logged limiter error
}

// FlushFailures returns how many counter flushes failed (and were retried).
func (e *Engine) FlushFailures() uint64 { return e.flushFailures.Load() }

// LimiterErrors returns how many requests passed without limits because
// the Limiter returned an error.
func (e *Engine) LimiterErrors() uint64 { return e.limiterErrors.Load() }

// New returns an Engine over store. It registers for the store's change
// notifications, so call Load before serving and the index stays current
// from then on; Close unregisters it.
func New(store keygate.Store, o Options) *Engine {
	e := &Engine{
		store:      store,
		hasher:     o.Hasher,
		limiter:    o.Limiter,
		thresholds: o.Thresholds,
		flush:      o.FlushInterval,
		now:        o.Now,
		log:        o.Logger,
		keys:       map[[32]byte]*entry{},
		accounts:   map[string]*keygate.Account{},
		tiers:      map[string]*keygate.Tier{},
		roots:      map[[32]byte]*keygate.RootKey{},
		feed:       o.Feed,
		syncEvery:  o.SyncInterval,
		feedSyncEv: o.FeedSyncInterval,

		revokedRoots: map[string]bool{},
	}
	if e.feed != nil && e.syncEvery <= 0 {
		e.syncEvery = time.Second
	}
	if e.feedSyncEv <= 0 {
		e.feedSyncEv = 10 * e.syncEvery
	}
	e.intern = newInterner(e.accounts)
	e.counters, _ = o.Limiter.(LocalCounters)
	if e.hasher == nil {
		e.hasher = apikey.NewHasher(nil)
	}
	if e.flush <= 0 {
		e.flush = time.Second
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if o.FailureLimit >= 0 {
		limit, window := o.FailureLimit, o.FailureWindow
		if limit == 0 {
			limit = 30
		}
		if window <= 0 {
			window = time.Minute
		}
		e.failures = newFailureThrottle(limit, window)
	}
	e.unlisten = store.OnChange(func(c keygate.Change) {
		e.Apply(context.Background(), c)
		if e.feed != nil {
			e.feed.Publish(c)
		}
	})
	return e
}

// Close unregisters the engine from the store's change notifications, so
// that a discarded engine is neither kept alive nor called by the store.
// The index stops following writes; Verify still answers from it. Close
// does not close the store.
func (e *Engine) Close() {
	e.unlisten()
}

// Load reads every tier, account, key and root key from the store into
// memory, and today's counters into the limiter.
func (e *Engine) Load(ctx context.Context) error {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	e.mark = e.now()
	tiers, err := e.store.Tiers(ctx)
	if err != nil {
		return fmt.Errorf("load tiers: %w", err)
	}
	tmap := make(map[string]*keygate.Tier, len(tiers))
	for _, t := range tiers {
		tmap[t.Name] = t
	}

	amap := map[string]*keygate.Account{}
	for after := ""; ; {
		page, err := e.store.Accounts(ctx, keygate.AccountFilter{After: after, Limit: keygate.MaxPageSize})
		if err != nil {
			return fmt.Errorf("load accounts: %w", err)
		}
		for _, a := range page {
			amap[a.ID] = a
		}
		if len(page) < keygate.MaxPageSize {
			break
		}
		after = page[len(page)-1].ID
	}

	kmap := map[[32]byte]*entry{}
	in := newInterner(amap)
	var legacy int64
	err = e.store.ForEachKey(ctx, func(k *keygate.Key) error {
		sum, ent, err := newEntry(k, in)
		if err != nil {
			e.log.Error("skipping key with unreadable hash", "key_id", k.ID, "err", err)
			return nil
		}
		if ent.legacy {
			legacy++
		}
		kmap[sum] = ent
		return nil
	})
	if err != nil {
		return fmt.Errorf("load keys: %w", err)
	}

	roots, err := e.store.RootKeys(ctx)
	if err != nil {
		return fmt.Errorf("load root keys: %w", err)
	}
	rmap := map[[32]byte]*keygate.RootKey{}
	for _, r := range roots {
		if sum, ok := keygate.ParseHash(r.Hash); ok && r.RevokedAt == nil {
			rmap[sum] = r
		}
	}

	e.mu.Lock()
	e.tiers, e.accounts, e.keys, e.roots, e.intern = tmap, amap, kmap, rmap, in
	e.mu.Unlock()
	e.legacyKeys.Store(legacy)

	if e.counters != nil {
		cs, err := e.store.Counters(ctx, e.now().UTC().Format(time.DateOnly))
		if err != nil {
			return fmt.Errorf("load counters: %w", err)
		}
		e.counters.Restore(cs)
	}
	e.log.Info("verification index loaded", "keys", len(kmap), "accounts", len(amap), "tiers", len(tmap), "root_keys", len(rmap))
	return nil
}

// newEntry returns k's index entry and the hash it is found by. Strings
// and scope lists many keys share come from in.
func newEntry(k *keygate.Key, in *interner) ([32]byte, *entry, error) {
	sum, ok := keygate.ParseHash(k.Hash)
	if !ok {
		return sum, nil, errors.New("hash is not 64 hex characters")
	}
	ent := &entry{
		key: keygate.VerifiedKey{
			ID: strings.Clone(k.ID), AccountID: in.account(k.AccountID), Name: strings.Clone(k.Name),
			Env: keygate.Env(in.str(string(k.Env))), Tier: in.str(k.Tier),
			Scopes: in.scopeSet(k.Scopes), ExpiresAt: k.ExpiresAt,
		},
		updated: k.UpdatedAt.UnixNano(),
		enabled: k.Enabled,
		legacy:  k.HashAlg == keygate.HashSHA256,
	}
	if len(k.Meta) > 0 {
		ent.key.Meta = slices.Clone(k.Meta)
	}
	if k.QuotaPerDay == nil && k.RatePerSecond == nil && k.Burst == nil && len(k.IPAllow) == 0 && k.RevokedAt == nil &&
		k.LineageID == "" && k.Env != keygate.EnvTest {
		return sum, ent, nil
	}
	r := &rareFields{quotaPerDay: k.QuotaPerDay, ratePerSecond: k.RatePerSecond, burst: k.Burst, revokedAt: k.RevokedAt}
	if k.LineageID != "" && k.LineageID != k.ID {
		r.lineage = strings.Clone(k.LineageID)
	}
	if k.Env == keygate.EnvTest {
		r.testAccount = in.str(keygate.CounterID(keygate.QuotaScopeAccount, k.AccountID, k.Env, "", false))
	}
	for _, c := range k.IPAllow {
		p, err := keygate.ParseCIDR(c)
		if err != nil {
			return sum, nil, err
		}
		r.cidrs = append(r.cidrs, p)
	}
	ent.rare = r
	return sum, ent, nil
}

// Apply brings the index up to date with one change. Stores call it through
// OnChange after every committed write; a multi-instance fan-out calls it
// for changes made elsewhere.
func (e *Engine) Apply(ctx context.Context, c keygate.Change) {
	if err := e.apply(ctx, c); err != nil {
		e.log.Error("applying change to the verification index", "kind", c.Kind, "id", c.ID, "err", err)
	}
}

func (e *Engine) apply(ctx context.Context, c keygate.Change) error {
	switch c.Kind {
	case keygate.ChangeKey:
		k := c.Key
		if k == nil {
			var err error
			if k, err = e.store.Key(ctx, c.ID); err != nil {
				return err
			}
		}
		e.mu.Lock()
		sum, ent, err := newEntry(k, e.intern)
		if err != nil {
			e.mu.Unlock()
			return err
		}
		old := e.keys[sum]
		if old != nil && old.updated > ent.updated {
			// Notifications of two writes can arrive out of order; the
			// index keeps the newer version.
			e.mu.Unlock()
			return nil
		}
		e.keys[sum] = ent
		e.mu.Unlock()
		if old == nil && ent.legacy {
			e.legacyKeys.Add(1)
		}
	case keygate.ChangeAccount:
		a, err := e.store.Account(ctx, c.ID)
		if err != nil {
			return err
		}
		e.mu.Lock()
		e.accounts[a.ID] = a
		e.mu.Unlock()
	case keygate.ChangeTier:
		t, err := e.store.Tier(ctx, c.ID)
		if keygate.ErrorCode(err) == keygate.ENOTFOUND {
			e.mu.Lock()
			delete(e.tiers, c.ID)
			e.mu.Unlock()
			return nil
		} else if err != nil {
			return err
		}
		e.mu.Lock()
		e.tiers[t.Name] = t
		e.mu.Unlock()
	case keygate.ChangeRootKey:
		r, err := e.store.RootKey(ctx, c.ID)
		if err != nil {
			return err
		}
		sum, ok := keygate.ParseHash(r.Hash)
		if !ok {
			return errors.New("root key hash is not 64 hex characters")
		}
		e.mu.Lock()
		// Revocation is final: a read that raced it must not bring the
		// root key back.
		if r.RevokedAt != nil || e.revokedRoots[r.ID] {
			e.revokedRoots[r.ID] = true
			delete(e.roots, sum)
		} else {
			e.roots[sum] = r
		}
		e.mu.Unlock()
	default:
		return fmt.Errorf("unknown change kind %q", c.Kind)
	}
	return nil
}

// Verify runs every check on a presented key, in the order of
// docs/ARCHITECTURE.md, and counts the request against the key's limits
// when it passes. It never touches the store.
func (e *Engine) Verify(ctx context.Context, req keygate.VerifyRequest) keygate.Verification {
	if req.Key == "" {
		return keygate.Verification{Outcome: keygate.OutcomeMissingKey}
	}
	now := e.now()
	if e.failures != nil {
		if wait, blocked := e.failures.blocked(req.IP, now); blocked {
			return keygate.Verification{Outcome: keygate.OutcomeTooManyFailures, Limits: keygate.LimitResult{RetryAfter: wait}}
		}
	}
	v := e.verify(ctx, req, now)
	if e.failures != nil && countsAsFailure(v.Outcome) {
		e.failures.fail(req.IP, now)
	}
	return v
}

func (e *Engine) verify(ctx context.Context, req keygate.VerifyRequest, now time.Time) keygate.Verification {
	ent, v, ok := e.lookup(req.Key)
	if !ok {
		return v
	}
	k := &ent.key
	switch ent.status(now) {
	case keygate.StatusRevoked:
		v.Outcome = keygate.OutcomeRevoked
		return v
	case keygate.StatusExpired:
		v.Outcome = keygate.OutcomeExpired
		return v
	case keygate.StatusDisabled:
		v.Outcome = keygate.OutcomeDisabled
		return v
	}
	if v.Account != nil && v.Account.DisabledAt != nil {
		// An operator disabled the whole account (manage.SetAccountDisabled).
		v.Outcome = keygate.OutcomeDisabled
		return v
	}
	lim := ent.limits(v.Tier)
	if ent.rare != nil && len(ent.rare.cidrs) > 0 && !allowed(ent.rare.cidrs, req.IP) {
		v.Outcome = keygate.OutcomeIPNotAllowed
		e.peek(ctx, &v, ent.counter(v.Tier), lim, now)
		return v
	}
	if len(req.Scopes) > 0 {
		if missing, ok := keygate.MissingScope(k.Scopes, req.Scopes); ok {
			v.Outcome = keygate.OutcomeInsufficientScope
			v.MissingScope = missing
			e.peek(ctx, &v, ent.counter(v.Tier), lim, now)
			return v
		}
	}
	v.Outcome = keygate.OutcomeValid
	if e.limiter != nil {
		ctr := ent.counter(v.Tier)
		r, err := e.limiter.Take(ctx, ctr, lim, now)
		if err != nil {
			e.limiterFailed(k.ID, err)
			return v
		}
		v.Limits, v.HasLimits, v.Outcome = r, true, r.Outcome
		if e.thresholds != nil && v.Outcome == keygate.OutcomeValid {
			e.crossed(k, ctr, v.Limits, now)
		}
	}
	return v
}

// limiterFailed counts a limiter error and logs it, unless one was logged
// less than LimiterErrorLogInterval ago.
func (e *Engine) limiterFailed(keyID string, err error) {
	e.limiterErrors.Add(1)
	now := time.Now().UnixNano()
	last := e.limiterErrLast.Load()
	if now-last < int64(LimiterErrorLogInterval) || !e.limiterErrLast.CompareAndSwap(last, now) {
		return
	}
	e.log.Error("rate limiter failed: requests pass without limits", "key_id", keyID, "err", err, "errors_so_far", e.limiterErrors.Load())
}

// crossed reports the quota thresholds that this request's count (of
// counter ctr) reached, if any, without blocking or allocating.
func (e *Engine) crossed(k *keygate.VerifiedKey, ctr string, l keygate.LimitResult, now time.Time) {
	used := l.QuotaLimit - l.QuotaRemaining
	if l.QuotaLimit <= 0 {
		return
	}
	for _, p := range keygate.QuotaThresholdPercents {
		if used != keygate.QuotaThresholdAt(l.QuotaLimit, p) {
			continue
		}
		select {
		case e.thresholds <- keygate.QuotaThreshold{KeyID: k.ID, AccountID: k.AccountID, Counter: ctr, Percent: p, Used: used, Limit: l.QuotaLimit, Time: now}:
		default:
			e.thresholdsDropped.Add(1)
		}
	}
}

// ThresholdsDropped returns how many quota threshold reports were dropped
// because Options.Thresholds was full.
func (e *Engine) ThresholdsDropped() uint64 { return e.thresholdsDropped.Load() }

// lookup finds the presented key in the index. When it is not found it
// returns ok false and the verdict to give.
func (e *Engine) lookup(presented string) (*entry, keygate.Verification, bool) {
	legacy := e.legacyKeys.Load() > 0
	_, perr := apikey.Parse(presented)
	if perr != nil && (!legacy || !plausibleLegacy(presented)) {
		return nil, keygate.Verification{Outcome: keygate.OutcomeMalformed}, false
	}
	// Imported keys are stored by plain SHA-256. Without a pepper that is
	// the hash a keygate key has too, so one lookup serves both; with one,
	// or for a key that is not in keygate's format, the plain hash is
	// looked up as well.
	peppered := e.hasher.Peppered()
	var sum, plain [32]byte
	if perr == nil {
		sum = e.hasher.Sum(presented)
	}
	tryPlain := legacy && (perr != nil || peppered)
	if tryPlain {
		plain = sha256.Sum256([]byte(presented))
	}

	var v keygate.Verification
	e.mu.RLock()
	var ent *entry
	if c := e.keys[sum]; perr == nil && c != nil && !(c.legacy && peppered) {
		ent = c
	}
	if c := e.keys[plain]; ent == nil && tryPlain && c != nil && c.legacy {
		ent = c
	}
	if ent != nil {
		v.Key = &ent.key
		v.Account = e.accounts[ent.key.AccountID]
		tier := ent.key.Tier
		if tier == "" && v.Account != nil {
			tier = v.Account.Tier
		}
		if v.Tier = e.tiers[tier]; v.Tier == nil {
			v.Tier = e.tiers[keygate.TierFree]
		}
	}
	e.mu.RUnlock()

	if ent == nil {
		return nil, keygate.Verification{Outcome: keygate.OutcomeNotFound}, false
	}
	if v.Tier == nil {
		// Only possible if the store lost its built-in tiers; fail closed
		// with the free tier's limits rather than serve without limits.
		v.Tier = fallbackTier
	}
	return ent, v, true
}

var fallbackTier = keygate.DefaultTiers(time.Time{})[0]

// plausibleLegacy reports whether s could be an imported key: printable
// ASCII of a sane length. It keeps arbitrary junk from being hashed.
func plausibleLegacy(s string) bool {
	if len(s) < 16 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func allowed(cidrs []netip.Prefix, ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, p := range cidrs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (e *Engine) peek(ctx context.Context, v *keygate.Verification, counter string, lim keygate.Limits, now time.Time) {
	if e.limiter == nil {
		return
	}
	r, err := e.limiter.Peek(ctx, counter, lim, now)
	if err != nil {
		e.limiterFailed(v.Key.ID, err)
		return
	}
	v.Limits, v.HasLimits = r, true
}

// RootKey authenticates a root key from memory. It returns false for
// anything that is not a live root key.
func (e *Engine) RootKey(presented string) (*keygate.RootKey, bool) {
	p, err := apikey.Parse(presented)
	if err != nil || p.Prefix != apikey.RootPrefix {
		return nil, false
	}
	sum := e.hasher.Sum(presented)
	e.mu.RLock()
	r := e.roots[sum]
	e.mu.RUnlock()
	return r, r != nil
}

// Run does the engine's upkeep until ctx is done: when the limiter keeps
// LocalCounters, it saves their changes to the store every FlushInterval
// (and once more when ctx is done) and reclaims idle limiter state every
// minute; it also forgets the failure throttle's idle client IPs. With a
// Feed or a SyncInterval it also follows other instances' changes (see
// Feed and Sync).
func (e *Engine) Run(ctx context.Context) {
	if e.feed != nil || e.syncEvery > 0 {
		followDone := make(chan struct{})
		go func() { e.follow(ctx); close(followDone) }()
		defer func() { <-followDone }()
	}
	var flush <-chan time.Time
	if e.counters != nil {
		t := time.NewTicker(e.flush)
		defer t.Stop()
		flush = t.C
	}
	reclaim := time.NewTicker(time.Minute)
	defer reclaim.Stop()
	for {
		select {
		case <-ctx.Done():
			e.Flush(context.WithoutCancel(ctx))
			return
		case <-flush:
			e.Flush(ctx)
		case <-reclaim.C:
			if e.counters != nil {
				if n := e.counters.Reclaim(); n > 0 {
					e.log.Debug("reclaimed idle limiter state", "entries", n)
				}
			}
			if e.failures != nil {
				e.failures.reclaim(e.now())
			}
		}
	}
}

// Flush saves the limiter's changed counters to the store, when it keeps
// LocalCounters. Counters that cannot be saved are kept and saved with the
// next flush.
func (e *Engine) Flush(ctx context.Context) {
	if e.counters == nil {
		return
	}
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	cs := mergeCounters(e.pending, e.counters.Dirty())
	e.pending = nil
	if len(cs) == 0 {
		return
	}
	if err := e.store.SaveCounters(ctx, cs); err != nil {
		e.flushFailures.Add(1)
		e.log.Error("saving quota counters; will retry", "counters", len(cs), "err", err)
		e.pending = cs // SaveCounters keeps the larger count, so resaving is safe
	}
}

// mergeCounters returns a and b with one counter per key and day, the
// larger count winning, so retried flushes do not pile up.
func mergeCounters(a, b []keygate.Counter) []keygate.Counter {
	if len(a) == 0 {
		return b
	}
	type dayKey struct{ key, day string }
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

// Find returns the key a presented key (or an imported legacy key)
// belongs to, whatever its status, without counting anything or touching
// the failure throttle. It serves bookkeeping — telling real keys from
// false positives in leak reports, auditing a key seen in a URL — not
// authentication.
func (e *Engine) Find(presented string) (*keygate.VerifiedKey, bool) {
	ent, _, ok := e.lookup(presented)
	if !ok {
		return nil, false
	}
	return &ent.key, true
}

// AuthenticateRoot authenticates a root key presented by the client at
// ip, counting a failure against ip in the same throttle as failed API
// keys: a client that sent too many bad keys of either kind is refused,
// valid root key or not, until its bucket refills. It returns the root
// key, or nil and, when ip is throttled, how long until it may try again.
func (e *Engine) AuthenticateRoot(presented string, ip netip.Addr) (*keygate.RootKey, time.Duration) {
	if e.failures == nil {
		r, ok := e.RootKey(presented)
		if !ok {
			e.rootFailures.Add(1)
		}
		return r, 0
	}
	now := e.now()
	if wait, blocked := e.failures.blocked(ip, now); blocked {
		return nil, max(wait, time.Nanosecond)
	}
	r, ok := e.RootKey(presented)
	if !ok {
		e.rootFailures.Add(1)
		e.failures.fail(ip, now)
	}
	return r, 0
}

// RootKeyFailures returns how many wrong root keys AuthenticateRoot saw.
func (e *Engine) RootKeyFailures() uint64 { return e.rootFailures.Load() }
