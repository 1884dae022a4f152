package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/manage"
)

// scopedTier creates a tier with a quota of 5 a day, a rate too high to
// matter, counted per scope.
func scopedTier(t *testing.T, f *fixture, scope string) string {
	t.Helper()
	name := "q5" + scope
	if err := f.admin.CreateTier(context.Background(), manage.ActorSystem, &keygate.Tier{
		Name: name, QuotaPerDay: 5, RatePerSecond: 1e6, Burst: 1e6, QuotaScope: scope,
	}); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestAccountScopedQuotaIsSharedByTheAccountsKeys(t *testing.T) {
	f := newFixture(t, true)
	tier := scopedTier(t, f, keygate.QuotaScopeAccount)
	_, a := f.key(t, &keygate.Key{Tier: tier})
	_, b := f.key(t, &keygate.Key{Tier: tier})
	if got := count(f, a, 3); got[keygate.OutcomeValid] != 3 {
		t.Fatalf("first key: got %v, want 3 valid", got)
	}
	// A second key of the same account does not get a quota of its own.
	if got := count(f, b, 4); got[keygate.OutcomeValid] != 2 || got[keygate.OutcomeQuotaExceeded] != 2 {
		t.Fatalf("second key after the first used 3 of the account's 5: got %v, want 2 valid and 2 QUOTA_EXCEEDED", got)
	}
	if v := f.verify(a); v.Outcome != keygate.OutcomeQuotaExceeded || v.Limits.QuotaRemaining != 0 {
		t.Fatalf("first key once the account's quota is spent: got %s, remaining %d", v.Outcome, v.Limits.QuotaRemaining)
	}

	// Test keys never count against live quotas: the account's test keys
	// share a count of their own.
	_, test1 := f.key(t, &keygate.Key{Tier: tier, Env: keygate.EnvTest})
	_, test2 := f.key(t, &keygate.Key{Tier: tier, Env: keygate.EnvTest})
	if got := count(f, test1, 3); got[keygate.OutcomeValid] != 3 {
		t.Fatalf("test key on an account whose live quota is spent: got %v, want 3 valid", got)
	}
	if got := count(f, test2, 3); got[keygate.OutcomeValid] != 2 {
		t.Fatalf("second test key: got %v, want the 2 left of the account's test count", got)
	}

	// A key with limits of its own is counted on its own.
	_, own := f.key(t, &keygate.Key{Tier: tier, QuotaPerDay: ptr(int64(2))})
	if got := count(f, own, 3); got[keygate.OutcomeValid] != 2 {
		t.Fatalf("key with its own quota of 2: got %v, want 2 valid", got)
	}

	// Another account's keys are not affected.
	other := &keygate.Account{Name: "Bea", Email: "bea@example.com"}
	if err := f.admin.CreateAccount(context.Background(), manage.ActorSystem, other); err != nil {
		t.Fatal(err)
	}
	f.account = other
	_, c := f.key(t, &keygate.Key{Tier: tier})
	if got := count(f, c, 5); got[keygate.OutcomeValid] != 5 {
		t.Fatalf("another account's key: got %v, want 5 valid", got)
	}
}

func TestKeyScopedQuotaIsPerKey(t *testing.T) {
	f := newFixture(t, true)
	tier := scopedTier(t, f, keygate.QuotaScopeKey)
	_, a := f.key(t, &keygate.Key{Tier: tier})
	_, b := f.key(t, &keygate.Key{Tier: tier})
	if got := count(f, a, 6); got[keygate.OutcomeValid] != 5 {
		t.Fatalf("first key: got %v, want 5 valid", got)
	}
	if got := count(f, b, 6); got[keygate.OutcomeValid] != 5 {
		t.Fatalf("second key: got %v, want 5 valid of its own", got)
	}
}

func TestRotationContinuesTheQuota(t *testing.T) {
	for _, scope := range []string{keygate.QuotaScopeKey, keygate.QuotaScopeAccount} {
		t.Run(scope, func(t *testing.T) {
			f := newFixture(t, true)
			tier := scopedTier(t, f, scope)
			k, old := f.key(t, &keygate.Key{Tier: tier})
			if got := count(f, old, 4); got[keygate.OutcomeValid] != 4 {
				t.Fatalf("before rotation: got %v", got)
			}
			ctx := context.Background()
			nk, fresh, err := f.admin.RotateKey(ctx, manage.ActorSystem, k.ID, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if nk.LineageID != k.ID {
				t.Fatalf("replacement's lineage_id: got %q, want %q", nk.LineageID, k.ID)
			}
			if got := count(f, fresh, 3); got[keygate.OutcomeValid] != 1 || got[keygate.OutcomeQuotaExceeded] != 2 {
				t.Fatalf("replacement after the old key used 4 of 5: got %v, want 1 valid", got)
			}
			// A second rotation keeps the first key's lineage.
			nk2, fresh2, err := f.admin.RotateKey(ctx, manage.ActorSystem, nk.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			if nk2.LineageID != k.ID {
				t.Fatalf("second replacement's lineage_id: got %q, want %q", nk2.LineageID, k.ID)
			}
			if v := f.verify(fresh2); v.Outcome != keygate.OutcomeQuotaExceeded {
				t.Fatalf("second replacement: got %s, want QUOTA_EXCEEDED", v.Outcome)
			}
			// The counts survive a restart under the lineage, too.
			f.engine.Flush(ctx)
			f.open(t, true)
			if v := f.verify(fresh2); v.Outcome != keygate.OutcomeQuotaExceeded {
				t.Fatalf("second replacement after a restart: got %s, want QUOTA_EXCEEDED", v.Outcome)
			}
		})
	}
}
