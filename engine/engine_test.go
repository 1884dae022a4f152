package engine_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/quota"
	"github.com/keygate/keygate/sqlite"
)

// clock is a test clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	store   *sqlite.Store
	engine  *engine.Engine
	admin   *manage.Service
	clock   *clock
	account *keygate.Account
	path    string
	hasher  *apikey.Hasher
	limiter *quota.Local
}

func newFixture(t testing.TB, withLimits bool) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}, path: filepath.Join(t.TempDir(), "keygate.db")}
	f.hasher = apikey.NewHasher(nil)
	f.open(t, withLimits)
	f.account = &keygate.Account{Name: "Ada", Email: "ada@example.com"}
	if err := f.admin.CreateAccount(context.Background(), manage.ActorSystem, f.account); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) open(t testing.TB, withLimits bool) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.store = s
	o := engine.Options{Hasher: f.hasher, Now: f.clock.Now}
	if withLimits {
		f.limiter = quota.NewLocal(quota.Options{Now: f.clock.Now})
		o.Limiter = f.limiter
	}
	f.engine = engine.New(s, o)
	t.Cleanup(f.engine.Close)
	if err := f.engine.Load(ctx); err != nil {
		t.Fatal(err)
	}
	f.admin = &manage.Service{Store: s, Hasher: f.hasher, Now: f.clock.Now}
}

func (f *fixture) key(t testing.TB, k *keygate.Key) (*keygate.Key, string) {
	t.Helper()
	if k == nil {
		k = &keygate.Key{}
	}
	k.AccountID = f.account.ID
	plaintext, err := f.admin.CreateKey(context.Background(), manage.ActorSystem, k)
	if err != nil {
		t.Fatal(err)
	}
	return k, plaintext
}

func (f *fixture) verify(key string, scopes ...string) keygate.Verification {
	return f.engine.Verify(context.Background(), keygate.VerifyRequest{Key: key, Scopes: scopes, IP: netip.MustParseAddr("198.51.100.7")})
}

func TestVerifyOutcomes(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	_, valid := f.key(t, &keygate.Key{Scopes: []string{"weather:*"}})
	revokedKey, revoked := f.key(t, nil)
	if _, err := f.admin.RevokeKey(ctx, manage.ActorSystem, revokedKey.ID, "test"); err != nil {
		t.Fatal(err)
	}
	in1h := f.clock.Now().Add(time.Hour)
	_, expiring := f.key(t, &keygate.Key{ExpiresAt: &in1h})
	disabledKey, disabled := f.key(t, nil)
	if _, err := f.store.UpdateKey(ctx, disabledKey.ID, func(k *keygate.Key) ([]*keygate.AuditEvent, error) {
		k.Enabled = false
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	_, restricted := f.key(t, &keygate.Key{IPAllow: []string{"203.0.113.0/24", "2001:db8::/32"}})
	_, allowedIP := f.key(t, &keygate.Key{IPAllow: []string{"198.51.100.0/24"}})
	unknown, err := apikey.Generate(apikey.DefaultPrefix, keygate.EnvLive)
	if err != nil {
		t.Fatal(err)
	}
	badChecksum := valid[:len(valid)-1] + string("0123456789"[(valid[len(valid)-1]-'0'+1)%10])
	if valid[len(valid)-1] > '9' {
		badChecksum = valid[:len(valid)-1] + "0"
	}

	f.clock.Add(2 * time.Hour) // past the expiry

	tests := []struct {
		name   string
		key    string
		scopes []string
		want   keygate.Outcome
	}{
		{"valid", valid, nil, keygate.OutcomeValid},
		{"valid with granted scope", valid, []string{"weather:read"}, keygate.OutcomeValid},
		{"missing scope", valid, []string{"billing:read"}, keygate.OutcomeInsufficientScope},
		{"missing", "", nil, keygate.OutcomeMissingKey},
		{"garbage", "hello", nil, keygate.OutcomeMalformed},
		{"bad checksum", badChecksum, nil, keygate.OutcomeMalformed},
		{"truncated", valid[:len(valid)-3], nil, keygate.OutcomeMalformed},
		{"unknown", unknown, nil, keygate.OutcomeNotFound},
		{"revoked", revoked, nil, keygate.OutcomeRevoked},
		{"expired", expiring, nil, keygate.OutcomeExpired},
		{"disabled", disabled, nil, keygate.OutcomeDisabled},
		{"ip not allowed", restricted, nil, keygate.OutcomeIPNotAllowed},
		{"ip allowed", allowedIP, nil, keygate.OutcomeValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := f.verify(tt.key, tt.scopes...)
			if v.Outcome != tt.want {
				t.Fatalf("Verify: got %s, want %s", v.Outcome, tt.want)
			}
			if tt.want == keygate.OutcomeValid && (v.Key == nil || v.Account == nil || v.Tier == nil) {
				t.Fatalf("valid verification lacks key, account or tier: %+v", v)
			}
		})
	}
	if v := f.verify(valid, "billing:read"); v.MissingScope != "billing:read" {
		t.Errorf("MissingScope: got %q, want billing:read", v.MissingScope)
	}
}

func TestRevocationIsImmediate(t *testing.T) {
	f := newFixture(t, false)
	k, plaintext := f.key(t, nil)
	if got := f.verify(plaintext).Outcome; got != keygate.OutcomeValid {
		t.Fatalf("before revoke: got %s, want VALID", got)
	}
	if _, err := f.admin.RevokeKey(context.Background(), manage.ActorSystem, k.ID, "leaked"); err != nil {
		t.Fatal(err)
	}
	if got := f.verify(plaintext).Outcome; got != keygate.OutcomeRevoked {
		t.Fatalf("right after revoke, with no reload: got %s, want REVOKED", got)
	}
}

func TestTierFollowsAccount(t *testing.T) {
	f := newFixture(t, false)
	_, plaintext := f.key(t, nil)
	if got := f.verify(plaintext).Tier.Name; got != keygate.TierFree {
		t.Fatalf("tier: got %s, want free (the account's)", got)
	}
	if _, err := f.store.UpdateAccount(context.Background(), f.account.ID, func(a *keygate.Account) ([]*keygate.AuditEvent, error) {
		a.Tier = keygate.TierPro
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := f.verify(plaintext).Tier.Name; got != keygate.TierPro {
		t.Fatalf("after the account moved to pro: got %s, want pro", got)
	}
	_, own := f.key(t, &keygate.Key{Tier: keygate.TierFree})
	if got := f.verify(own).Tier.Name; got != keygate.TierFree {
		t.Fatalf("key with its own tier: got %s, want free", got)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	f := newFixture(t, false)
	_, live := f.key(t, nil)
	rk, revoked := f.key(t, nil)
	if _, err := f.admin.RevokeKey(context.Background(), manage.ActorSystem, rk.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(t, false)
	if got := f.verify(live).Outcome; got != keygate.OutcomeValid {
		t.Errorf("live key after restart: got %s, want VALID", got)
	}
	if got := f.verify(revoked).Outcome; got != keygate.OutcomeRevoked {
		t.Errorf("revoked key after restart: got %s, want REVOKED", got)
	}
}

func TestVerifiesWhileStoreIsDown(t *testing.T) {
	f := newFixture(t, false)
	_, plaintext := f.key(t, nil)
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	if got := f.verify(plaintext).Outcome; got != keygate.OutcomeValid {
		t.Fatalf("with the store closed: got %s, want VALID from memory", got)
	}
}

func TestPepperedHashes(t *testing.T) {
	f := newFixture(t, false)
	f.hasher = apikey.NewHasher([]byte("pepper-for-tests"))
	f.open(t, false)
	_, plaintext := f.key(t, nil)
	if got := f.verify(plaintext).Outcome; got != keygate.OutcomeValid {
		t.Fatalf("peppered key: got %s, want VALID", got)
	}
	// An engine without the pepper cannot find it.
	other := engine.New(f.store, engine.Options{Now: f.clock.Now})
	defer other.Close()
	if err := other.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := other.Verify(context.Background(), keygate.VerifyRequest{Key: plaintext}).Outcome; got != keygate.OutcomeNotFound {
		t.Fatalf("without the pepper: got %s, want NOT_FOUND", got)
	}
}

func TestCloseStopsFollowingTheStore(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	k, plaintext := f.key(t, nil)
	other := engine.New(f.store, engine.Options{Hasher: f.hasher, Now: f.clock.Now})
	if err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if _, err := f.admin.RevokeKey(ctx, manage.ActorSystem, k.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if got := f.verify(plaintext).Outcome; got != keygate.OutcomeRevoked {
		t.Errorf("the open engine: got %s, want REVOKED", got)
	}
	// The closed engine no longer hears about writes: it still holds the
	// key as it was when it closed.
	if got := other.Verify(ctx, keygate.VerifyRequest{Key: plaintext}).Outcome; got != keygate.OutcomeValid {
		t.Errorf("the closed engine: got %s, want VALID (it must not follow the store)", got)
	}
}

func TestRootKeys(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	rk, plaintext, err := f.admin.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := f.engine.RootKey(plaintext); !ok || got.ID != rk.ID {
		t.Fatalf("RootKey: got %v, %v; want %s", got, ok, rk.ID)
	}
	_, apiKey := f.key(t, nil)
	if _, ok := f.engine.RootKey(apiKey); ok {
		t.Fatal("an API key was accepted as a root key")
	}
	// The last root key with admin:write cannot be revoked: make another.
	if _, _, err := f.admin.CreateRootKey(ctx, manage.ActorSystem, "spare", keygate.AllPermissions); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.RevokeRootKey(ctx, manage.ActorSystem, rk.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.engine.RootKey(plaintext); ok {
		t.Fatal("a revoked root key was still accepted")
	}
}

func benchmarkVerify(b *testing.B, withLimits bool) {
	f := newFixture(b, withLimits)
	k := &keygate.Key{Scopes: []string{"weather:read"}}
	if withLimits {
		huge := int64(keygate.MaxQuotaPerDay)
		rate := float64(keygate.MaxRatePerSecond)
		burst := int64(keygate.MaxBurst)
		k.QuotaPerDay, k.RatePerSecond, k.Burst = &huge, &rate, &burst
	}
	_, plaintext := f.key(b, k)
	eng := productionEngine(b, f, withLimits)
	req := keygate.VerifyRequest{Key: plaintext, Scopes: []string{"weather:read"}, IP: netip.MustParseAddr("198.51.100.7")}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if v := eng.Verify(ctx, req); v.Outcome != keygate.OutcomeValid {
			b.Fatalf("got %s, want VALID", v.Outcome)
		}
	}
}

// productionEngine returns an engine over f's store configured as
// `keygate serve` configures it: the real clock (reading it is part of the
// cost on some machines) and, with limits, a quota.Local on the real clock.
func productionEngine(b *testing.B, f *fixture, withLimits bool) *engine.Engine {
	o := engine.Options{Hasher: f.hasher}
	if withLimits {
		o.Limiter = quota.NewLocal(quota.Options{})
	}
	e := engine.New(f.store, o)
	b.Cleanup(e.Close)
	if err := e.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkVerify measures one valid verification: parse, hash, index
// lookup, status and scope checks, without limits.
func BenchmarkVerify(b *testing.B) { benchmarkVerify(b, false) }

// BenchmarkVerifyLimited is BenchmarkVerify with the rate limit and daily
// quota enforced; the two are compared in docs/BENCHMARKS.md.
func BenchmarkVerifyLimited(b *testing.B) { benchmarkVerify(b, true) }

func TestImportedKeysWithAPepper(t *testing.T) {
	for _, pepper := range []string{"", "pepper-for-tests"} {
		t.Run("pepper="+pepper, func(t *testing.T) {
			f := newFixture(t, false)
			if pepper != "" {
				f.hasher = apikey.NewHasher([]byte(pepper))
				f.open(t, false)
			}
			ctx := context.Background()
			legacy := "doda_Zm9vYmFyYmF6cXV4LWxlZ2FjeS1rZXktMTIzNDU2Nzg5MA"
			// A key in keygate's own format, issued by another install and
			// imported by its plain SHA-256, must verify too.
			foreign, err := apikey.Generate("other", keygate.EnvLive)
			if err != nil {
				t.Fatal(err)
			}
			var keys []*keygate.Key
			for _, raw := range []string{legacy, foreign} {
				now := f.clock.Now()
				keys = append(keys, &keygate.Key{ID: keygate.NewID(keygate.PrefixKey, now), AccountID: f.account.ID, Env: keygate.EnvLive,
					Hash: apikey.SHA256Hex(raw), HashAlg: keygate.HashSHA256, Enabled: true, Scopes: []string{}, CreatedAt: now, UpdatedAt: now})
			}
			if n, err := f.store.ImportKeys(ctx, keys); err != nil || n != 2 {
				t.Fatalf("ImportKeys: %d, %v", n, err)
			}
			for _, raw := range []string{legacy, foreign} {
				if got := f.verify(raw).Outcome; got != keygate.OutcomeValid {
					t.Errorf("imported %.12s…: got %s, want VALID", raw, got)
				}
			}
			if got := f.verify(legacy[:len(legacy)-1] + "x").Outcome; got != keygate.OutcomeNotFound {
				t.Errorf("mistyped imported key: got %s, want NOT_FOUND", got)
			}
			_, own := f.key(t, nil)
			if got := f.verify(own).Outcome; got != keygate.OutcomeValid {
				t.Errorf("own key beside imported ones: got %s, want VALID", got)
			}
		})
	}
}

func TestApplyKeepsTheNewerKey(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	k, plaintext := f.key(t, nil)
	stale := k.Clone()
	f.clock.Add(time.Second)
	if _, err := f.admin.RevokeKey(ctx, manage.ActorSystem, k.ID, "test"); err != nil {
		t.Fatal(err)
	}
	// A late notification of the write before the revocation.
	f.engine.Apply(ctx, keygate.Change{Kind: keygate.ChangeKey, ID: k.ID, Key: stale})
	if got := f.verify(plaintext).Outcome; got != keygate.OutcomeRevoked {
		t.Fatalf("after a stale notification: got %s, want REVOKED", got)
	}
}
