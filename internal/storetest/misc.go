package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func testCounters(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	k1, k2 := f.key(t, a.ID), f.key(t, a.ID)
	mine := []string{k1.ID, k2.ID}
	const day, nextDay = "2031-01-02", "2031-01-03"

	// counters returns the counts for day of this test's keys.
	counters := func(day string) map[string]int64 {
		t.Helper()
		cs, err := f.s.Counters(f.ctx, day)
		mustOK(t, err, "Counters")
		out := map[string]int64{}
		for _, c := range cs {
			if slices.Contains(mine, c.KeyID) {
				if c.Day != day {
					t.Errorf("Counters(%s): got a counter for day %s", day, c.Day)
				}
				out[c.KeyID] = c.Count
			}
		}
		return out
	}

	c := func(keyID, day string, n int64) keygate.Counter {
		return keygate.Counter{KeyID: keyID, Day: day, Count: n}
	}
	steps := []struct {
		name string
		save []keygate.Counter
		day  string
		want map[string]int64
	}{
		{"first save", []keygate.Counter{c(k1.ID, day, 5), c(k2.ID, day, 3), c(k1.ID, nextDay, 9)}, day,
			map[string]int64{k1.ID: 5, k2.ID: 3}},
		{"the other day", nil, nextDay, map[string]int64{k1.ID: 9}},
		{"a smaller count is ignored", []keygate.Counter{c(k1.ID, day, 4)}, day, map[string]int64{k1.ID: 5, k2.ID: 3}},
		{"a larger count wins", []keygate.Counter{c(k1.ID, day, 8), c(k2.ID, day, 3)}, day, map[string]int64{k1.ID: 8, k2.ID: 3}},
		{"the other day is untouched", nil, nextDay, map[string]int64{k1.ID: 9}},
		{"a day with nothing", nil, "1999-12-31", map[string]int64{}},
		{"the same key twice in one save", []keygate.Counter{c(k2.ID, day, 10), c(k2.ID, day, 6)}, day,
			map[string]int64{k1.ID: 8, k2.ID: 10}},
	}
	for _, tt := range steps {
		mustOK(t, f.s.SaveCounters(f.ctx, tt.save), "SaveCounters("+tt.name+")")
		if got := counters(tt.day); !mapsEqual(got, tt.want) {
			t.Errorf("%s: Counters(%s): got %v, want %v", tt.name, tt.day, got, tt.want)
		}
	}
	mustOK(t, f.s.SaveCounters(f.ctx, []keygate.Counter{}), "SaveCounters(empty)")
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func testOnChange(t *testing.T, f *fixture) {
	rec, rec2 := &recorder{}, &recorder{}
	f.s.OnChange(rec.record)
	f.s.OnChange(rec2.record)

	// A listener that reads the record back proves that the write was
	// committed before it was called.
	var mu sync.Mutex
	visible := map[string]bool{}
	f.s.OnChange(func(c keygate.Change) {
		var err error
		switch c.Kind {
		case keygate.ChangeKey:
			_, err = f.s.Key(f.ctx, c.ID)
		case keygate.ChangeAccount:
			_, err = f.s.Account(f.ctx, c.ID)
		case keygate.ChangeTier:
			_, err = f.s.Tier(f.ctx, c.ID)
		case keygate.ChangeRootKey:
			_, err = f.s.RootKey(f.ctx, c.ID)
		}
		mu.Lock()
		defer mu.Unlock()
		visible[string(c.Kind)+" "+c.ID] = err == nil
	})

	tier := f.newTier()
	a, b := f.newAccount(keygate.TierFree), f.newAccount(keygate.TierFree)
	first := f.newKey(b.ID)
	k := f.newKey(a.ID)
	replacement := f.newKey(a.ID)
	imp1, imp2 := f.newKey(a.ID), f.newKey(a.ID)
	impDup := f.newKey(a.ID)
	impDup.Hash = first.Hash
	root := f.newRootKey()

	type change struct {
		kind keygate.ChangeKind
		id   string
	}
	tests := []struct {
		name  string
		write func() error
		ids   []string // the records the write names
		want  []change // the changes it must report, in any order
	}{
		{"CreateTier", func() error { return f.s.CreateTier(f.ctx, tier) },
			[]string{tier.Name}, []change{{keygate.ChangeTier, tier.Name}}},
		{"UpdateTier", func() error { tier.Burst = 99; return f.replaceTier(tier) },
			[]string{tier.Name}, []change{{keygate.ChangeTier, tier.Name}}},
		{"CreateAccount", func() error { return f.s.CreateAccount(f.ctx, a, nil) },
			[]string{a.ID}, []change{{keygate.ChangeAccount, a.ID}}},
		{"CreateAccount with a first key", func() error { return f.s.CreateAccount(f.ctx, b, first) },
			[]string{b.ID, first.ID}, []change{{keygate.ChangeAccount, b.ID}, {keygate.ChangeKey, first.ID}}},
		{"UpdateAccount", func() error { a.Tier = tier.Name; return f.replaceAccount(a) },
			[]string{a.ID}, []change{{keygate.ChangeAccount, a.ID}}},
		{"CreateKey", func() error { return f.s.CreateKey(f.ctx, k) },
			[]string{k.ID}, []change{{keygate.ChangeKey, k.ID}}},
		{"UpdateKey", func() error {
			k.Scopes, k.Tier = []string{"a:b"}, tier.Name
			// UpdateKey ignores a change to an immutable field, and the
			// Change must carry the key as stored, not as passed.
			k.CreatedAt = f.now.Add(time.Hour)
			return f.replaceKey(k)
		}, []string{k.ID}, []change{{keygate.ChangeKey, k.ID}}},
		{"RotateKey", func() error {
			k.RevokedAt, k.ReplacedBy, replacement.Replaces = ptr(f.now.Add(time.Hour)), replacement.ID, k.ID
			return f.rotate(k, replacement)
		}, []string{k.ID, replacement.ID}, []change{{keygate.ChangeKey, k.ID}, {keygate.ChangeKey, replacement.ID}}},
		{"ImportKeys", func() error {
			_, err := f.s.ImportKeys(f.ctx, []*keygate.Key{imp1, impDup, imp2})
			return err
		}, []string{imp1.ID, impDup.ID, imp2.ID, first.ID}, []change{{keygate.ChangeKey, imp1.ID}, {keygate.ChangeKey, imp2.ID}}},
		{"CreateRootKey", func() error { return f.s.CreateRootKey(f.ctx, root) },
			[]string{root.ID}, []change{{keygate.ChangeRootKey, root.ID}}},
		{"RevokeRootKey", func() error { return f.revokeRoot(root.ID, f.now) },
			[]string{root.ID}, []change{{keygate.ChangeRootKey, root.ID}}},
		{"SaveCounters", func() error {
			return f.s.SaveCounters(f.ctx, []keygate.Counter{{KeyID: k.ID, Day: "2031-01-02", Count: 1}})
		}, []string{k.ID}, nil},
		{"UpdateAccount back", func() error { a.Tier = keygate.TierFree; return f.replaceAccount(a) },
			[]string{a.ID}, []change{{keygate.ChangeAccount, a.ID}}},
		{"UpdateKey back", func() error { k.Tier = ""; return f.replaceKey(k) },
			[]string{k.ID}, []change{{keygate.ChangeKey, k.ID}}},
		{"DeleteTier", func() error { return f.s.DeleteTier(f.ctx, tier.Name) },
			[]string{tier.Name}, []change{{keygate.ChangeTier, tier.Name}}},
	}
	for _, tt := range tests {
		before, before2 := len(rec.about(tt.ids...)), len(rec2.about(tt.ids...))
		if err := tt.write(); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		// The changes are reported before the write returns.
		got := rec.about(tt.ids...)[before:]
		var gotCh, wantCh []string
		for _, c := range got {
			gotCh = append(gotCh, fmt.Sprintf("%s %s", c.Kind, c.ID))
		}
		for _, c := range tt.want {
			wantCh = append(wantCh, fmt.Sprintf("%s %s", c.kind, c.id))
		}
		slices.Sort(gotCh)
		slices.Sort(wantCh)
		if !slices.Equal(gotCh, wantCh) {
			t.Errorf("%s: got changes %q, want %q", tt.name, gotCh, wantCh)
		}
		if n := len(rec2.about(tt.ids...)) - before2; n != len(got) {
			t.Errorf("%s: the second listener got %d changes, want %d", tt.name, n, len(got))
		}
		for _, c := range got {
			mu.Lock()
			seen := visible[string(c.Kind)+" "+c.ID]
			mu.Unlock()
			if want := tt.name != "DeleteTier"; seen != want {
				t.Errorf("%s: a listener could read %s %s: %t, want %t", tt.name, c.Kind, c.ID, seen, want)
			}
			if c.Kind != keygate.ChangeKey {
				continue
			}
			// Key changes carry the key as written.
			if c.Key == nil || c.Key.ID != c.ID {
				t.Errorf("%s: got Change.Key %v for key %s, want the key", tt.name, c.Key, c.ID)
				continue
			}
			stored, err := f.s.Key(f.ctx, c.ID)
			mustOK(t, err, "Key")
			checkSame(t, tt.name+": Change.Key", c.Key, stored)
		}
	}
}

func testOnChangeNotOnFailure(t *testing.T, f *fixture) {
	writes := failingWrites(t, f)
	rec := &recorder{}
	f.s.OnChange(rec.record)
	actor := f.actor()
	for _, w := range writes {
		if err := w.write(f.event(actor, "test.failed", "test", w.ids[0])); err == nil {
			t.Errorf("%s: got no error, want one", w.name)
		}
		if got := rec.about(w.ids...); len(got) != 0 {
			t.Errorf("%s: got changes %v, want none", w.name, got)
		}
	}
}

func testOnChangeRemove(t *testing.T, f *fixture) {
	kept, removed := &recorder{}, &recorder{}
	f.s.OnChange(kept.record)
	remove := f.s.OnChange(removed.record)
	a := f.account(t, keygate.TierFree)
	if got := removed.about(a.ID); len(got) != 1 {
		t.Fatalf("before remove: got changes %v, want one", got)
	}
	remove()
	remove() // a second call is harmless
	k := f.key(t, a.ID)
	if got := removed.about(k.ID); len(got) != 0 {
		t.Errorf("after remove: got changes %v, want none", got)
	}
	if got := kept.about(k.ID); len(got) != 1 {
		t.Errorf("the other listener: got changes %v, want one", got)
	}
}

func testTimesRoundTrip(t *testing.T, f *fixture) {
	zone := time.FixedZone("UTC+05:30", 5*3600+1800)
	for _, at := range []time.Time{
		time.Date(2031, 5, 6, 7, 8, 9, 123456789, zone),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2199, 1, 1, 0, 0, 0, 1_000_000, zone),
	} {
		tier := f.newTier()
		tier.CreatedAt, tier.UpdatedAt = at, at
		mustOK(t, f.s.CreateTier(f.ctx, tier), "CreateTier")
		a := f.newAccount(keygate.TierFree)
		a.CreatedAt, a.UpdatedAt = at, at
		k := f.newKey(a.ID)
		k.CreatedAt, k.UpdatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt = at, at, ptr(at), ptr(at), ptr(at)
		mustOK(t, f.s.CreateAccount(f.ctx, a, k), "CreateAccount")
		r := f.newRootKey()
		r.CreatedAt = at
		mustOK(t, f.s.CreateRootKey(f.ctx, r), "CreateRootKey")
		mustOK(t, f.revokeRoot(r.ID, at), "RevokeRootKey")
		ev := f.event(f.actor(), keygate.ActionTierCreated, keygate.TargetTier, f.name("x"))
		ev.Time = at
		mustOK(t, f.s.CreateTier(f.ctx, f.newTier(), ev), "CreateTier")

		gotTier, err := f.s.Tier(f.ctx, tier.Name)
		mustOK(t, err, "Tier")
		gotA, err := f.s.Account(f.ctx, a.ID)
		mustOK(t, err, "Account")
		gotK, err := f.s.Key(f.ctx, k.ID)
		mustOK(t, err, "Key")
		gotR, err := f.s.RootKey(f.ctx, r.ID)
		mustOK(t, err, "RootKey")
		evs, err := f.s.AuditEvents(f.ctx, keygate.AuditFilter{TargetID: ev.TargetID})
		mustOK(t, err, "AuditEvents")
		if len(evs) != 1 {
			t.Fatalf("AuditEvents: got %d events, want 1", len(evs))
		}
		deref := func(p *time.Time) time.Time {
			if p == nil {
				return time.Time{}
			}
			return *p
		}
		for _, tt := range []struct {
			name string
			got  time.Time
		}{
			{"Tier.CreatedAt", gotTier.CreatedAt},
			{"Tier.UpdatedAt", gotTier.UpdatedAt},
			{"Account.CreatedAt", gotA.CreatedAt},
			{"Account.UpdatedAt", gotA.UpdatedAt},
			{"Key.CreatedAt", gotK.CreatedAt},
			{"Key.UpdatedAt", gotK.UpdatedAt},
			{"Key.ExpiresAt", deref(gotK.ExpiresAt)},
			{"Key.RevokedAt", deref(gotK.RevokedAt)},
			{"Key.LastUsedAt", deref(gotK.LastUsedAt)},
			{"RootKey.CreatedAt", gotR.CreatedAt},
			{"RootKey.RevokedAt", deref(gotR.RevokedAt)},
			{"AuditEvent.Time", evs[0].Time},
		} {
			if tt.got.Location() != time.UTC {
				t.Errorf("%s: got location %v, want UTC", tt.name, tt.got.Location())
			}
			if d := tt.got.Sub(at).Abs(); !tt.got.Truncate(time.Millisecond).Equal(at.Truncate(time.Millisecond)) || d >= time.Millisecond {
				t.Errorf("%s: got %s, want %s to the millisecond", tt.name,
					tt.got.Format(time.RFC3339Nano), at.UTC().Format(time.RFC3339Nano))
			}
		}
	}
}

func testEmptySlices(t *testing.T, f *fixture) {
	rec := &recorder{}
	f.s.OnChange(rec.record)
	a := f.account(t, keygate.TierFree)
	kNil := f.newKey(a.ID) // nil Scopes and IPAllow
	kEmpty := f.newKey(a.ID)
	kEmpty.Scopes, kEmpty.IPAllow = []string{}, []string{}
	kImported := f.newKey(a.ID)
	mustOK(t, f.s.CreateKey(f.ctx, kNil), "CreateKey")
	mustOK(t, f.s.CreateKey(f.ctx, kEmpty), "CreateKey")
	_, err := f.s.ImportKeys(f.ctx, []*keygate.Key{kImported})
	mustOK(t, err, "ImportKeys")
	kUpdated := kEmpty.Clone()
	kUpdated.Scopes, kUpdated.IPAllow = nil, nil
	mustOK(t, f.replaceKey(kUpdated), "UpdateKey")
	ids := []string{kNil.ID, kEmpty.ID, kImported.ID}

	check := func(what string, k *keygate.Key) {
		t.Helper()
		if k.Scopes == nil || len(k.Scopes) != 0 {
			t.Errorf("%s: got Scopes %#v, want []string{}", what, k.Scopes)
		}
		if k.IPAllow == nil || len(k.IPAllow) != 0 {
			t.Errorf("%s: got IPAllow %#v, want []string{}", what, k.IPAllow)
		}
		if len(k.Meta) != 0 {
			t.Errorf("%s: got Meta %s, want none", what, k.Meta)
		}
		if k.QuotaPerDay != nil || k.RatePerSecond != nil || k.Burst != nil || k.ExpiresAt != nil ||
			k.RevokedAt != nil || k.LastUsedAt != nil {
			t.Errorf("%s: got a non-nil override or time in %+v, want nil", what, k)
		}
	}
	for _, id := range ids {
		k, err := f.s.Key(f.ctx, id)
		mustOK(t, err, "Key")
		check("Key", k)
	}
	keys, err := f.s.Keys(f.ctx, keygate.KeyFilter{AccountID: a.ID})
	mustOK(t, err, "Keys")
	for _, k := range keys {
		check("Keys", k)
	}
	mustOK(t, f.s.ForEachKey(f.ctx, func(k *keygate.Key) error {
		if slices.Contains(ids, k.ID) {
			check("ForEachKey", k)
		}
		return nil
	}), "ForEachKey")
	for _, c := range rec.about(ids...) {
		if c.Key != nil {
			check("Change.Key", c.Key)
		}
	}

	r := f.newRootKey()
	r.Permissions = nil
	if err := f.s.CreateRootKey(f.ctx, r); err == nil {
		got, err := f.s.RootKey(f.ctx, r.ID)
		mustOK(t, err, "RootKey")
		if got.Permissions == nil {
			t.Errorf("RootKey: got Permissions nil, want []string{}")
		}
	}
}

func testConcurrentWrites(t *testing.T, f *fixture) {
	tier := f.tier(t)
	const writers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*3)
	for range writers {
		wg.Go(func() {
			for range each {
				a := f.newAccount(tier.Name)
				if err := f.s.CreateAccount(f.ctx, a, f.newKey(a.ID)); err != nil {
					errs <- fmt.Errorf("CreateAccount: %w", err)
					continue
				}
				k := f.newKey(a.ID)
				if err := f.s.CreateKey(f.ctx, k); err != nil {
					errs <- fmt.Errorf("CreateKey: %w", err)
					continue
				}
				k.Enabled = false
				if err := f.replaceKey(k); err != nil {
					errs <- fmt.Errorf("UpdateKey: %w", err)
				}
				if _, err := f.s.Keys(f.ctx, keygate.KeyFilter{AccountID: a.ID}); err != nil {
					errs <- fmt.Errorf("Keys: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := f.s.Accounts(f.ctx, keygate.AccountFilter{Tier: tier.Name, Limit: keygate.MaxPageSize})
	mustOK(t, err, "Accounts")
	if len(got) != writers*each {
		t.Errorf("Accounts: got %d, want %d", len(got), writers*each)
	}
}

func testPing(t *testing.T, f *fixture) {
	mustOK(t, f.s.Ping(f.ctx), "Ping")
}
