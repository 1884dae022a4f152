package redis_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/internal/testenv"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/postgres"
	"github.com/keygate/keygate/redis"
)

// instance is one keygate instance as `keygate serve` wires it on
// PostgreSQL and Redis: store, Redis limiter and change feed, engine and
// the admin service, with the engine's and limiter's loops running.
type instance struct {
	store   *postgres.Store
	limiter *redis.Limiter
	feed    *redis.Feed
	engine  *engine.Engine
	admin   *manage.Service
	stop    func()
}

// cluster is the shared services of several instances: one PostgreSQL
// schema, one Redis key prefix, one clock.
type cluster struct {
	db, redis, prefix string
	clock             *clock
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	db := testenv.PostgresSchema(t)
	url := testenv.Redis(t)
	_, p := open(t, url)
	return &cluster{db: db, redis: url, prefix: p, clock: newClock()}
}

// start opens an instance whose Redis connections go to redisURL (the
// shared server, or a proxy to it). syncEvery is how often it polls the
// store while its feed is down; a long one shows that the feed alone (or
// the sync when it resubscribes) delivers changes.
func (c *cluster) start(t testing.TB, redisURL string, syncEvery time.Duration) *instance {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, c.db)
	if err != nil {
		t.Fatal(err)
	}
	st.Now = c.clock.Now
	rc, err := redis.Open(ctx, redisURL)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{store: st}
	in.limiter = redis.NewLimiter(rc, redis.LimiterOptions{Prefix: c.prefix, Now: c.clock.Now, ProbeInterval: 50 * time.Millisecond})
	in.feed = redis.NewFeed(rc, redis.FeedOptions{Prefix: c.prefix})
	hasher := apikey.NewHasher(nil)
	in.engine = engine.New(st, engine.Options{
		Hasher: hasher, Limiter: in.limiter, Feed: in.feed, Now: c.clock.Now, FailureLimit: -1,
		SyncInterval: syncEvery, FeedSyncInterval: time.Hour,
	})
	if err := in.engine.Load(ctx); err != nil {
		t.Fatal(err)
	}
	in.admin = &manage.Service{Store: st, Hasher: hasher, Now: c.clock.Now}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { in.engine.Run(runCtx) })
	wg.Go(func() { in.limiter.Run(runCtx) })
	var once sync.Once
	in.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			in.engine.Close()
			rc.Close()
			st.Close()
		})
	}
	t.Cleanup(in.stop)
	waitFor(t, "the change feed to subscribe", in.engine.FeedUp)
	return in
}

// waitFor polls cond until it holds. The bound is generous: the figures for
// how fast changes travel are in docs/BENCHMARKS.md, not asserted here.
func waitFor(t testing.TB, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for deadline := start.Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return time.Since(start)
		}
	}
	t.Fatalf("waited 15s for %s", what)
	return 0
}

func (in *instance) verify(key string) keygate.Outcome {
	return in.engine.Verify(context.Background(), keygate.VerifyRequest{Key: key, IP: netip.MustParseAddr("198.51.100.7")}).Outcome
}

func ptr[T any](v T) *T { return &v }

// newKey creates an account and a key on in, with the given daily quota
// and a rate too high to matter, and waits until other knows the key.
func newKey(t testing.TB, c *cluster, in, other *instance, quota int64) (*keygate.Key, string) {
	t.Helper()
	ctx := context.Background()
	c.clock.Add(time.Millisecond)
	a := &keygate.Account{Name: "Ada", Email: rand8() + "@example.com"}
	if err := in.admin.CreateAccount(ctx, manage.ActorSystem, a); err != nil {
		t.Fatal(err)
	}
	k := &keygate.Key{AccountID: a.ID, QuotaPerDay: ptr(quota), RatePerSecond: ptr(1e6), Burst: ptr(int64(1e6))}
	plaintext, err := in.admin.CreateKey(ctx, manage.ActorSystem, k)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other instance to know the new key", func() bool { return other.verify(plaintext) == keygate.OutcomeValid })
	return k, plaintext
}

func rand8() string { return rand.Text()[:8] }

// TestTwoInstancesShareTheQuota hammers a 1,000/day key through two
// instances at once: exactly 1,000 pass. A restarted instance keeps
// refusing it.
func TestTwoInstancesShareTheQuota(t *testing.T) {
	c := newCluster(t)
	a := c.start(t, c.redis, time.Hour)
	b := c.start(t, c.redis, time.Hour)
	_, key := newKey(t, c, a, b, 1000)
	// newKey spent one request on b.
	var mu sync.Mutex
	got := map[keygate.Outcome]int{}
	var wg sync.WaitGroup
	for i := range 8 {
		in := a
		if i%2 == 1 {
			in = b
		}
		wg.Go(func() {
			for range 250 {
				o := in.verify(key)
				mu.Lock()
				got[o]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got[keygate.OutcomeValid] != 999 || got[keygate.OutcomeQuotaExceeded] != 1001 {
		t.Fatalf("2,000 requests through two instances on a 1,000/day key (one already used): got %v, want 999 VALID", got)
	}
	if a.limiter.LocalDecisions()+b.limiter.LocalDecisions() != 0 {
		t.Fatal("some requests were decided locally: Redis was not used")
	}

	// Restart b: the count is in Redis and, flushed, in PostgreSQL.
	b.engine.Flush(context.Background())
	b.stop()
	b2 := c.start(t, c.redis, time.Hour)
	if o := b2.verify(key); o != keygate.OutcomeQuotaExceeded {
		t.Errorf("after restarting an instance: got %s, want QUOTA_EXCEEDED", o)
	}
	day := c.clock.Now().Format(time.DateOnly)
	cs, err := b2.store.Counters(context.Background(), day)
	if err != nil {
		t.Fatal(err)
	}
	var stored int64
	for _, ct := range cs {
		stored = max(stored, ct.Count)
	}
	if stored != 1000 {
		t.Errorf("count saved to PostgreSQL: %d, want 1000", stored)
	}
}

// TestChangesReachOtherInstance: a key revoked, a tier changed and a root
// key revoked on one instance are applied by the other through the feed
// (its store polling is off).
func TestChangesReachOtherInstance(t *testing.T) {
	c := newCluster(t)
	a := c.start(t, c.redis, time.Hour)
	b := c.start(t, c.redis, time.Hour)
	ctx := context.Background()

	k, key := newKey(t, c, a, b, 1000)
	c.clock.Add(time.Millisecond)
	if _, err := a.admin.RevokeKey(ctx, manage.ActorSystem, k.ID, "test"); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, "the other instance to refuse the revoked key", func() bool { return b.verify(key) == keygate.OutcomeRevoked })
	t.Logf("key revoked on A refused by B after %s", d)

	_, rootKey, err := a.admin.CreateRootKey(ctx, manage.ActorSystem, "ops", []string{keygate.PermAdminRead})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other instance to know the new root key", func() bool { _, ok := b.engine.RootKey(rootKey); return ok })
	r, _ := b.engine.RootKey(rootKey)
	c.clock.Add(time.Millisecond)
	if _, err := a.admin.RevokeRootKey(ctx, manage.ActorSystem, r.ID); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, "the other instance to refuse the revoked root key", func() bool { _, ok := b.engine.RootKey(rootKey); return !ok })
	t.Logf("root key revoked on A refused by B after %s", d)

	// A tier change applies to the keys on it, on every instance.
	k2, key2 := newKey(t, c, a, b, 1000)
	c.clock.Add(time.Millisecond)
	if _, err := a.admin.UpdateKey(ctx, manage.ActorSystem, k2.ID, func(k *keygate.Key) { k.QuotaPerDay = nil; k.Tier = "pro" }); err != nil {
		t.Fatal(err)
	}
	c.clock.Add(time.Millisecond)
	if _, err := a.admin.UpdateTier(ctx, manage.ActorSystem, "pro", func(t *keygate.Tier) { t.QuotaPerDay = 2 }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other instance to apply the tier's new quota", func() bool {
		return b.engine.Verify(ctx, keygate.VerifyRequest{Key: key2}).Limits.QuotaLimit == 2
	})
	if a.feed.Published() == 0 || b.feed.Received() == 0 {
		t.Errorf("published %d, received %d: the feed carried nothing", a.feed.Published(), b.feed.Received())
	}
}

// TestRedisCutAndBack cuts one instance off Redis mid-test: it keeps
// verifying with local counts, misses the feed's messages, and once Redis
// is back it counts in Redis again and catches up with the changes it
// missed from the store.
func TestRedisCutAndBack(t *testing.T) {
	c := newCluster(t)
	px := testenv.NewProxy(t, c.redis)
	a := c.start(t, c.redis, time.Hour)
	b := c.start(t, px.URL, time.Hour) // polls the store only when its feed (re)subscribes
	ctx := context.Background()
	k, key := newKey(t, c, a, b, 100)

	px.Cut()
	// Requests on b pass from its local count, seeded by what it saw.
	got := map[keygate.Outcome]int{}
	for range 120 {
		got[b.verify(key)]++
	}
	if got[keygate.OutcomeValid] != 99 || got[keygate.OutcomeQuotaExceeded] != 21 {
		t.Errorf("on the instance cut off Redis, 120 requests on 100/day with 1 used: got %v, want 99 VALID", got)
	}
	if b.limiter.Shared() {
		t.Error("the cut-off limiter still claims to count in Redis")
	}
	waitFor(t, "the cut-off feed to notice", func() bool { return !b.engine.FeedUp() })

	// Revoked on a while b cannot hear of it.
	c.clock.Add(time.Millisecond)
	if _, err := a.admin.RevokeKey(ctx, manage.ActorSystem, k.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if o := a.verify(key); o != keygate.OutcomeRevoked {
		t.Fatalf("on the revoking instance: got %s", o)
	}

	px.Restore()
	d := waitFor(t, "the reconnected instance to refuse the key revoked meanwhile", func() bool { return b.verify(key) == keygate.OutcomeRevoked })
	t.Logf("refused %s after Redis came back", d)
	waitFor(t, "the limiter to count in Redis again", b.limiter.Shared)
	n, err := a.limiter.Peek(ctx, k.ID, keygate.Limits{QuotaPerDay: 100, RatePerSecond: 1e6, Burst: 1e6}, c.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n.QuotaRemaining != 0 {
		t.Errorf("after the hand-over, Redis has %d left of 100: the local counts were not added", n.QuotaRemaining)
	}
}

// BenchmarkRevocationReachesOtherInstance measures how long a key revoked
// on one instance takes to be refused by another (the revoking write
// included), through PostgreSQL and the Redis feed: ns/op is that delay.
func BenchmarkRevocationReachesOtherInstance(b *testing.B) {
	c := newCluster(b)
	x := c.start(b, c.redis, time.Hour)
	y := c.start(b, c.redis, time.Hour)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		k, key := newKey(b, c, x, y, 1000)
		c.clock.Add(time.Millisecond)
		b.StartTimer()
		if _, err := x.admin.RevokeKey(ctx, manage.ActorSystem, k.ID, "bench"); err != nil {
			b.Fatal(err)
		}
		for y.verify(key) != keygate.OutcomeRevoked {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// TestImportOverflowsTheFeed: an import of more keys than the feed queues
// makes the importing instance tell the others to catch up from the store,
// so they know every imported key without waiting for a poll.
func TestImportOverflowsTheFeed(t *testing.T) {
	c := newCluster(t)
	a := c.start(t, c.redis, time.Hour)
	b := c.start(t, c.redis, time.Hour) // polls only on a resync
	// The sync each instance runs on subscribing must be over before the
	// import, or the import's resync may coalesce with it into one.
	waitFor(t, "the other instance's sync at subscription", func() bool { return b.engine.Syncs() >= 1 })
	before := b.engine.Syncs()
	ctx := context.Background()
	acct := &keygate.Account{Name: "Importer", Email: rand8() + "@example.com"}
	if err := a.admin.CreateAccount(ctx, manage.ActorSystem, acct); err != nil {
		t.Fatal(err)
	}
	const n = 6000
	in := make([]*keygate.Key, n)
	plain := make([]string, n)
	for i := range in {
		plain[i] = "legacy_" + rand.Text()
		sum := sha256.Sum256([]byte(plain[i]))
		in[i] = &keygate.Key{AccountID: acct.ID, Hash: hex.EncodeToString(sum[:])}
	}
	c.clock.Add(time.Millisecond)
	res, err := a.admin.ImportKeys(ctx, manage.ActorSystem, in, true)
	if err != nil || res.Inserted != n {
		t.Fatalf("ImportKeys: %+v, %v", res, err)
	}
	waitFor(t, "the other instance to know every imported key", func() bool {
		for _, p := range plain {
			if _, ok := b.engine.Find(p); !ok {
				return false
			}
		}
		return true
	})
	// The sync that applied the keys counts itself once it has applied them.
	waitFor(t, "the other instance to count a sync for the import", func() bool { return b.engine.Syncs() > before })
	if got := b.feed.Received(); got > n/2 {
		t.Errorf("the other instance received %d messages for %d imported keys: the flood was not replaced by a resync", got, n)
	}
}
