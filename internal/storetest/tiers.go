package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func testDefaultTiers(t *testing.T, f *fixture) {
	all, err := f.s.Tiers(f.ctx)
	mustOK(t, err, "Tiers")
	for _, want := range keygate.DefaultTiers(f.now) {
		got, err := f.s.Tier(f.ctx, want.Name)
		if err != nil {
			t.Errorf("Tier(%q): %v", want.Name, err)
			continue
		}
		if got.QuotaScope != keygate.QuotaScopeAccount {
			t.Errorf("Tier(%q): quota_scope %q, want %q: built-in tiers count per account", want.Name, got.QuotaScope, keygate.QuotaScopeAccount)
		}
		if got.QuotaPerDay != want.QuotaPerDay || got.RatePerSecond != want.RatePerSecond || got.Burst != want.Burst {
			t.Errorf("Tier(%q): got %d/day, %g/s, burst %d; want %d/day, %g/s, burst %d", want.Name,
				got.QuotaPerDay, got.RatePerSecond, got.Burst, want.QuotaPerDay, want.RatePerSecond, want.Burst)
		}
		if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
			t.Errorf("Tier(%q): got zero created_at or updated_at", want.Name)
		}
		if !slices.ContainsFunc(all, func(t *keygate.Tier) bool { return t.Name == want.Name }) {
			t.Errorf("Tiers: got no tier %q", want.Name)
		}
	}
}

func testTiers(t *testing.T, f *fixture) {
	a, b := f.newTier(), f.newTier()
	b.QuotaPerDay, b.RatePerSecond, b.Burst, b.QuotaScope = 42, 0.5, 1, keygate.QuotaScopeKey
	mustOK(t, f.s.CreateTier(f.ctx, b), "CreateTier")
	mustOK(t, f.s.CreateTier(f.ctx, a), "CreateTier")

	for _, want := range []*keygate.Tier{a, b} {
		got, err := f.s.Tier(f.ctx, want.Name)
		mustOK(t, err, "Tier")
		checkSame(t, "Tier("+want.Name+")", got, want)
	}

	all, err := f.s.Tiers(f.ctx)
	mustOK(t, err, "Tiers")
	var names []string
	for _, tier := range all {
		names = append(names, tier.Name)
	}
	if !slices.IsSorted(names) {
		t.Errorf("Tiers: got names %v, want them sorted", names)
	}
	wantIDs(t, "Tiers", only(names, []string{a.Name, b.Name}), []string{min(a.Name, b.Name), max(a.Name, b.Name)})

	// UpdateTier replaces the limits and the quota scope; the creation
	// time stays.
	upd := &keygate.Tier{Name: a.Name, QuotaPerDay: 123456, RatePerSecond: 33.25, Burst: 99, QuotaScope: keygate.QuotaScopeKey, UpdatedAt: f.now.Add(time.Hour)}
	mustOK(t, f.replaceTier(upd), "UpdateTier")
	got, err := f.s.Tier(f.ctx, a.Name)
	mustOK(t, err, "Tier")
	want := *upd
	want.CreatedAt = a.CreatedAt
	checkSame(t, "Tier after UpdateTier", got, &want)

	// A tier nothing uses can be deleted.
	mustOK(t, f.s.DeleteTier(f.ctx, b.Name), "DeleteTier")
	_, err = f.s.Tier(f.ctx, b.Name)
	wantCode(t, err, keygate.ENOTFOUND, "Tier after DeleteTier")
}

func testTierErrors(t *testing.T, f *fixture) {
	existing := f.tier(t)
	missing := f.name("missing")
	dup := f.newTier()
	dup.Name = existing.Name
	dup.QuotaPerDay = 1

	tests := []struct {
		name string
		err  error
		code string
	}{
		{"CreateTier duplicate", f.s.CreateTier(f.ctx, dup), keygate.ECONFLICT},
		{"UpdateTier missing", f.replaceTier(&keygate.Tier{Name: missing, QuotaPerDay: 1, RatePerSecond: 1, Burst: 1}), keygate.ENOTFOUND},
		{"DeleteTier missing", f.s.DeleteTier(f.ctx, missing), keygate.ENOTFOUND},
		{"Tier missing", func() error { _, err := f.s.Tier(f.ctx, missing); return err }(), keygate.ENOTFOUND},
	}
	for _, tt := range tests {
		wantCode(t, tt.err, tt.code, tt.name)
	}
	got, err := f.s.Tier(f.ctx, existing.Name)
	mustOK(t, err, "Tier")
	checkSame(t, "Tier after a refused duplicate", got, existing)
	if _, err := f.s.Tier(f.ctx, missing); keygate.ErrorCode(err) != keygate.ENOTFOUND {
		t.Errorf("Tier(%q) after UpdateTier of a missing tier: got %v, want ENOTFOUND", missing, err)
	}
}

func testDeleteTierInUse(t *testing.T, f *fixture) {
	tests := []struct {
		name string
		// use puts something on tier and returns a func that moves it off.
		use func(t *testing.T, tier string) (release func())
	}{
		{"account", func(t *testing.T, tier string) func() {
			a := f.account(t, tier)
			return func() {
				a.Tier = keygate.TierFree
				mustOK(t, f.replaceAccount(a), "UpdateAccount")
			}
		}},
		{"key", func(t *testing.T, tier string) func() {
			k := f.newKey(f.account(t, keygate.TierFree).ID)
			k.Tier = tier
			mustOK(t, f.s.CreateKey(f.ctx, k), "CreateKey")
			return func() {
				k.Tier = ""
				mustOK(t, f.replaceKey(k), "UpdateKey")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tier := f.tier(t)
			release := tt.use(t, tier.Name)
			wantCode(t, f.s.DeleteTier(f.ctx, tier.Name), keygate.ECONFLICT, "DeleteTier of a tier in use by a "+tt.name)
			if _, err := f.s.Tier(f.ctx, tier.Name); err != nil {
				t.Errorf("Tier after a refused DeleteTier: got %v, want the tier", err)
			}
			release()
			mustOK(t, f.s.DeleteTier(f.ctx, tier.Name), "DeleteTier once unused")
			_, err := f.s.Tier(f.ctx, tier.Name)
			wantCode(t, err, keygate.ENOTFOUND, "Tier after DeleteTier")
		})
	}
}
