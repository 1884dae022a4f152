package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/sqlite"
)

// TestSyncCatchesUp: an engine on a second connection to the same
// database, which hears nothing of the first one's writes, catches up
// with them through Sync: a revoked key, a changed tier, a revoked root
// key. Run does the same on its own every SyncInterval.
func TestSyncCatchesUp(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	other, err := sqlite.Open(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	b := engine.New(other, engine.Options{Hasher: f.hasher, Now: f.clock.Now})
	t.Cleanup(b.Close)
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	verifyOn := func(e *engine.Engine, key string) keygate.Verification {
		return e.Verify(ctx, keygate.VerifyRequest{Key: key})
	}

	k, key := f.key(t, nil)
	if got := verifyOn(b, key).Outcome; got != keygate.OutcomeNotFound {
		t.Fatalf("before any sync: got %s, want NOT_FOUND (the engine hears nothing by itself)", got)
	}
	mustSync := func() {
		t.Helper()
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mustSync()
	if got := verifyOn(b, key).Outcome; got != keygate.OutcomeValid {
		t.Fatalf("after a sync: got %s, want VALID", got)
	}
	f.clock.Add(time.Second)
	if _, err := f.admin.RevokeKey(ctx, manage.ActorSystem, k.ID, "test"); err != nil {
		t.Fatal(err)
	}
	mustSync()
	if got := verifyOn(b, key).Outcome; got != keygate.OutcomeRevoked {
		t.Fatalf("a revocation after a sync: got %s, want REVOKED", got)
	}

	_, root, err := f.admin.CreateRootKey(ctx, manage.ActorSystem, "ops", []string{keygate.PermAdminRead})
	if err != nil {
		t.Fatal(err)
	}
	mustSync()
	r, ok := b.RootKey(root)
	if !ok {
		t.Fatal("a new root key is unknown after a sync")
	}
	f.clock.Add(time.Second)
	if _, err := f.admin.RevokeRootKey(ctx, manage.ActorSystem, r.ID); err != nil {
		t.Fatal(err)
	}
	mustSync()
	if _, ok := b.RootKey(root); ok {
		t.Fatal("a revoked root key still authenticates after a sync")
	}

	_, key2 := f.key(t, nil)
	f.clock.Add(time.Second)
	if _, err := f.admin.UpdateTier(ctx, manage.ActorSystem, keygate.TierFree, func(t *keygate.Tier) { t.QuotaPerDay = 7 }); err != nil {
		t.Fatal(err)
	}
	mustSync()
	if v := verifyOn(b, key2); v.Outcome != keygate.OutcomeValid || v.Tier.QuotaPerDay != 7 {
		t.Fatalf("a tier change after a sync: got %s on a tier of %d/day, want VALID on 7/day", v.Outcome, v.Tier.QuotaPerDay)
	}
	if b.Syncs() != 5 || b.SyncFailures() != 0 {
		t.Errorf("Syncs %d, SyncFailures %d: want 5, 0", b.Syncs(), b.SyncFailures())
	}
}
