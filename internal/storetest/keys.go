package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// fullKey returns an unsaved key of account with every field set.
func (f *fixture) fullKey(accountID, tier string) *keygate.Key {
	k := f.newKey(accountID)
	k.Name = "full " + f.tag
	k.Env = keygate.EnvTest
	k.Start = "kg_test_Ab3d"
	k.HashAlg = keygate.HashSHA256
	k.Tier = tier
	k.QuotaPerDay = ptr(int64(777))
	k.RatePerSecond = ptr(1.5)
	k.Burst = ptr(int64(3))
	k.Scopes = []string{"billing:*", "weather:read"}
	k.IPAllow = []string{"2001:db8::/32", "203.0.113.0/24"}
	k.Meta = json.RawMessage(`{"plan":"beta","seats":2,"tags":["a","b"]}`)
	k.ExpiresAt = ptr(f.now.Add(30 * 24 * time.Hour))
	k.RevokedAt = ptr(f.now.Add(24 * time.Hour))
	k.RevokedReason = "rotated"
	k.RevokedBy = "root_key:" + f.id(keygate.PrefixRootKey)
	k.ReplacedBy = f.id(keygate.PrefixKey)
	k.Replaces = f.id(keygate.PrefixKey)
	k.UpdatedAt = f.now.Add(time.Second)
	k.LastUsedAt = ptr(f.now.Add(-time.Minute))
	return k
}

func testCreateKey(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	tier := f.tier(t)
	for _, k := range []*keygate.Key{f.newKey(a.ID), f.fullKey(a.ID, tier.Name)} {
		mustOK(t, f.s.CreateKey(f.ctx, k), "CreateKey")
		got, err := f.s.Key(f.ctx, k.ID)
		mustOK(t, err, "Key")
		checkSame(t, "Key("+k.Name+")", got, k)
	}
}

func testCreateKeyErrors(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	existing := f.key(t, a.ID)

	tests := []struct {
		name  string
		setup func(k *keygate.Key)
		code  string
	}{
		{"unknown account", func(k *keygate.Key) { k.AccountID = f.id(keygate.PrefixAccount) }, keygate.ENOTFOUND},
		{"unknown tier", func(k *keygate.Key) { k.Tier = f.name("missing") }, keygate.EINVALID},
		{"duplicate hash", func(k *keygate.Key) { k.Hash = existing.Hash }, keygate.ECONFLICT},
		{"duplicate hash in another account", func(k *keygate.Key) {
			k.AccountID = f.account(t, keygate.TierFree).ID
			k.Hash = existing.Hash
		}, keygate.ECONFLICT},
		{"duplicate id", func(k *keygate.Key) { k.ID = existing.ID }, keygate.ECONFLICT},
	}
	for _, tt := range tests {
		k := f.newKey(a.ID)
		tt.setup(k)
		wantCode(t, f.s.CreateKey(f.ctx, k), tt.code, "CreateKey with "+tt.name)
		if k.ID != existing.ID {
			_, err := f.s.Key(f.ctx, k.ID)
			wantCode(t, err, keygate.ENOTFOUND, "Key after CreateKey with "+tt.name)
		}
	}
	got, err := f.s.Key(f.ctx, existing.ID)
	mustOK(t, err, "Key")
	checkSame(t, "Key after refused duplicates", got, existing)

	_, err = f.s.Key(f.ctx, f.id(keygate.PrefixKey))
	wantCode(t, err, keygate.ENOTFOUND, "Key of a missing key")
}

func testUpdateKey(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	other := f.account(t, keygate.TierFree)
	tier := f.tier(t)
	later := f.now.Add(time.Hour)

	tests := []struct {
		name   string
		full   bool // start from fullKey rather than newKey
		change func(k *keygate.Key)
		// immutable: the change touches only fields UpdateKey must ignore.
		immutable bool
	}{
		{"name", false, func(k *keygate.Key) { k.Name = "renamed" }, false},
		{"tier set", false, func(k *keygate.Key) { k.Tier = keygate.TierPro }, false},
		{"tier changed", true, func(k *keygate.Key) { k.Tier = keygate.TierFree }, false},
		{"tier cleared", true, func(k *keygate.Key) { k.Tier = "" }, false},
		{"overrides set", false, func(k *keygate.Key) {
			k.QuotaPerDay, k.RatePerSecond, k.Burst = ptr(int64(50)), ptr(0.25), ptr(int64(2))
		}, false},
		{"overrides changed", true, func(k *keygate.Key) {
			k.QuotaPerDay, k.RatePerSecond, k.Burst = ptr(int64(1_000_000)), ptr(999.5), ptr(int64(10_000))
		}, false},
		{"overrides cleared", true, func(k *keygate.Key) { k.QuotaPerDay, k.RatePerSecond, k.Burst = nil, nil, nil }, false},
		{"scopes set", false, func(k *keygate.Key) { k.Scopes = []string{"*"} }, false},
		{"scopes cleared", true, func(k *keygate.Key) { k.Scopes = nil }, false},
		{"ip_allow set", false, func(k *keygate.Key) { k.IPAllow = []string{"10.0.0.0/8", "::1/128"} }, false},
		{"ip_allow cleared", true, func(k *keygate.Key) { k.IPAllow = []string{} }, false},
		{"meta set", false, func(k *keygate.Key) { k.Meta = json.RawMessage(`{"a":{"b":[1,2,3]}}`) }, false},
		{"meta changed", true, func(k *keygate.Key) { k.Meta = json.RawMessage(`{"plan":"ga"}`) }, false},
		{"meta cleared", true, func(k *keygate.Key) { k.Meta = nil }, false},
		{"expires_at set", false, func(k *keygate.Key) { k.ExpiresAt = ptr(later) }, false},
		{"expires_at cleared", true, func(k *keygate.Key) { k.ExpiresAt = nil }, false},
		{"disabled", false, func(k *keygate.Key) { k.Enabled = false }, false},
		{"enabled", true, func(k *keygate.Key) { k.Enabled = true }, false},
		{"revoked", false, func(k *keygate.Key) {
			k.RevokedAt, k.RevokedReason, k.RevokedBy = ptr(later), "leaked", "system"
		}, false},
		{"unrevoked", true, func(k *keygate.Key) { k.RevokedAt, k.RevokedReason, k.RevokedBy = nil, "", "" }, false},
		{"replaced_by set", false, func(k *keygate.Key) { k.ReplacedBy = f.id(keygate.PrefixKey) }, false},
		{"replaced_by cleared", true, func(k *keygate.Key) { k.ReplacedBy = "" }, false},
		{"last_used_at set", false, func(k *keygate.Key) { k.LastUsedAt = ptr(later) }, false},
		{"last_used_at moved", true, func(k *keygate.Key) { k.LastUsedAt = ptr(later.Add(time.Millisecond)) }, false},
		{"immutable fields", true, func(k *keygate.Key) {
			k.AccountID = other.ID
			k.Env = keygate.EnvLive
			k.Start, k.Last4 = "kg_live_zzzz", "0000"
			k.Hash, k.HashAlg = hash(), keygate.HashKeygate
			k.Replaces = f.id(keygate.PrefixKey)
			k.CreatedAt = later
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := f.newKey(a.ID)
			if tt.full {
				k = f.fullKey(a.ID, tier.Name)
			}
			mustOK(t, f.s.CreateKey(f.ctx, k), "CreateKey")
			upd := k.Clone()
			tt.change(upd)
			upd.UpdatedAt = later
			mustOK(t, f.replaceKey(upd), "UpdateKey")

			want := upd
			if tt.immutable {
				want = k.Clone()
				want.UpdatedAt = later
			}
			got, err := f.s.Key(f.ctx, k.ID)
			mustOK(t, err, "Key")
			checkSame(t, "Key after UpdateKey", got, want)
		})
	}
}

func testUpdateKeyErrors(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	k := f.key(t, a.ID)

	missing := f.newKey(a.ID)
	wantCode(t, f.replaceKey(missing), keygate.ENOTFOUND, "UpdateKey of a missing key")
	_, err := f.s.Key(f.ctx, missing.ID)
	wantCode(t, err, keygate.ENOTFOUND, "Key after UpdateKey of a missing key")

	bad := k.Clone()
	bad.Tier = f.name("missing")
	bad.Name = "not stored"
	wantCode(t, f.replaceKey(bad), keygate.EINVALID, "UpdateKey to an unknown tier")
	got, err := f.s.Key(f.ctx, k.ID)
	mustOK(t, err, "Key")
	checkSame(t, "Key after a refused UpdateKey", got, k)
}

func testKeysFilter(t *testing.T, f *fixture) {
	now := f.now
	hour := time.Hour
	tier := f.tier(t)
	a := f.account(t, keygate.TierFree)
	b := f.account(t, keygate.TierFree)

	mk := func(change func(k *keygate.Key)) *keygate.Key {
		k := f.newKey(a.ID)
		change(k)
		mustOK(t, f.s.CreateKey(f.ctx, k), "CreateKey")
		return k
	}
	active := mk(func(k *keygate.Key) {})
	revokedLater := mk(func(k *keygate.Key) { k.RevokedAt = ptr(now.Add(hour)) }) // a rotated key in its grace period
	expiresLater := mk(func(k *keygate.Key) { k.ExpiresAt = ptr(now.Add(hour)) })
	revoked := mk(func(k *keygate.Key) { k.RevokedAt = ptr(now.Add(-hour)) })
	revokedNow := mk(func(k *keygate.Key) { k.RevokedAt = ptr(now) })
	revokedAll := mk(func(k *keygate.Key) {
		k.RevokedAt, k.ExpiresAt, k.Enabled = ptr(now.Add(-hour)), ptr(now.Add(-2*hour)), false
	})
	expired := mk(func(k *keygate.Key) { k.ExpiresAt = ptr(now.Add(-hour)) })
	expiredDisabled := mk(func(k *keygate.Key) { k.ExpiresAt, k.Enabled = ptr(now.Add(-hour)), false })
	disabled := mk(func(k *keygate.Key) { k.Enabled = false })
	testEnv := mk(func(k *keygate.Key) { k.Env = keygate.EnvTest; k.Start = "kg_test_" + f.tag[:4] })
	onTier := mk(func(k *keygate.Key) { k.Tier = tier.Name })
	all := []*keygate.Key{active, revokedLater, expiresLater, revoked, revokedNow, revokedAll, expired,
		expiredDisabled, disabled, testEnv, onTier}

	bOnTier := f.newKey(b.ID)
	bOnTier.Tier = tier.Name
	mustOK(t, f.s.CreateKey(f.ctx, bOnTier), "CreateKey")
	f.key(t, b.ID)

	// where returns the IDs of a's keys for which keep is true.
	where := func(keep func(k *keygate.Key) bool) []string {
		var ids []string
		for _, k := range all {
			if keep(k) {
				ids = append(ids, k.ID)
			}
		}
		return ids
	}
	status := func(s string, at time.Time) func(k *keygate.Key) bool {
		return func(k *keygate.Key) bool { return k.Status(at) == s }
	}

	tests := []struct {
		name   string
		filter keygate.KeyFilter
		want   []string
	}{
		{"account", keygate.KeyFilter{AccountID: a.ID}, keyIDs(all)},
		{"env test", keygate.KeyFilter{AccountID: a.ID, Env: keygate.EnvTest}, []string{testEnv.ID}},
		{"env live", keygate.KeyFilter{AccountID: a.ID, Env: keygate.EnvLive},
			where(func(k *keygate.Key) bool { return k.Env == keygate.EnvLive })},
		{"tier", keygate.KeyFilter{Tier: tier.Name}, []string{onTier.ID, bOnTier.ID}},
		{"account and tier", keygate.KeyFilter{AccountID: a.ID, Tier: tier.Name}, []string{onTier.ID}},
		{"active", keygate.KeyFilter{AccountID: a.ID, Status: keygate.StatusActive, Now: now},
			[]string{active.ID, revokedLater.ID, expiresLater.ID, testEnv.ID, onTier.ID}},
		{"revoked", keygate.KeyFilter{AccountID: a.ID, Status: keygate.StatusRevoked, Now: now},
			[]string{revoked.ID, revokedNow.ID, revokedAll.ID}},
		{"expired", keygate.KeyFilter{AccountID: a.ID, Status: keygate.StatusExpired, Now: now},
			[]string{expired.ID, expiredDisabled.ID}},
		{"disabled", keygate.KeyFilter{AccountID: a.ID, Status: keygate.StatusDisabled, Now: now},
			[]string{disabled.ID}},
		{"active two hours later", keygate.KeyFilter{AccountID: a.ID, Status: keygate.StatusActive, Now: now.Add(2 * hour)},
			where(status(keygate.StatusActive, now.Add(2*hour)))},
		{"revoked two hours later", keygate.KeyFilter{AccountID: a.ID, Status: keygate.StatusRevoked, Now: now.Add(2 * hour)},
			where(status(keygate.StatusRevoked, now.Add(2*hour)))},
		{"expired two hours later", keygate.KeyFilter{AccountID: a.ID, Status: keygate.StatusExpired, Now: now.Add(2 * hour)},
			where(status(keygate.StatusExpired, now.Add(2*hour)))},
		{"active a millisecond before", keygate.KeyFilter{AccountID: a.ID, Status: keygate.StatusActive, Now: now.Add(-time.Millisecond)},
			where(status(keygate.StatusActive, now.Add(-time.Millisecond)))},
		{"disabled and live", keygate.KeyFilter{AccountID: a.ID, Env: keygate.EnvLive, Status: keygate.StatusDisabled, Now: now},
			[]string{disabled.ID}},
		{"active on tier", keygate.KeyFilter{Tier: tier.Name, Status: keygate.StatusActive, Now: now},
			[]string{onTier.ID, bOnTier.ID}},
		{"unknown account", keygate.KeyFilter{AccountID: f.id(keygate.PrefixAccount)}, nil},
		{"start", keygate.KeyFilter{Start: testEnv.Start}, []string{testEnv.ID}},
		{"account and start", keygate.KeyFilter{AccountID: a.ID, Start: "kg_live_ab12"},
			where(func(k *keygate.Key) bool { return k.Env == keygate.EnvLive })},
	}
	for _, tt := range tests {
		got, err := f.s.Keys(f.ctx, tt.filter)
		if err != nil {
			t.Errorf("Keys(%s): %v", tt.name, err)
			continue
		}
		wantIDs(t, "Keys("+tt.name+")", keyIDs(got), tt.want)
	}

	// The store agrees with Key.Status at every status.
	for _, s := range []string{keygate.StatusActive, keygate.StatusRevoked, keygate.StatusExpired, keygate.StatusDisabled} {
		got, err := f.s.Keys(f.ctx, keygate.KeyFilter{AccountID: a.ID, Status: s, Now: now})
		mustOK(t, err, "Keys")
		wantIDs(t, "Keys(status "+s+")", keyIDs(got), where(status(s, now)))
	}

	_, err := f.s.Keys(f.ctx, keygate.KeyFilter{AccountID: a.ID, Status: "sleeping", Now: now})
	wantCode(t, err, keygate.EINVALID, "Keys with an unknown status")

	got, err := f.s.Keys(f.ctx, keygate.KeyFilter{AccountID: a.ID})
	mustOK(t, err, "Keys")
	for i, k := range got {
		if i < len(all) {
			checkSame(t, "Keys[i]", k, all[i])
		}
	}
}

func testKeysPagination(t *testing.T, f *fixture) {
	tests := []struct {
		name  string
		n     int
		limit int
		pages []int // the length of each page
	}{
		{"limit 3", 7, 3, []int{3, 3, 1}},
		{"limit 1", 2, 1, []int{1, 1}},
		{"default page size", keygate.DefaultPageSize + 5, 0, []int{keygate.DefaultPageSize, 5}},
		{"limit above the maximum", keygate.MaxPageSize + 1, keygate.MaxPageSize + 500, []int{keygate.MaxPageSize, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.account(t, keygate.TierFree)
			keys := make([]*keygate.Key, tt.n)
			for i := range keys {
				keys[i] = f.newKey(a.ID)
			}
			n, err := f.s.ImportKeys(f.ctx, keys)
			mustOK(t, err, "ImportKeys")
			if n != tt.n {
				t.Fatalf("ImportKeys: got %d inserted, want %d", n, tt.n)
			}
			var seen []string
			after := ""
			for i, want := range append(tt.pages, 0) {
				got, err := f.s.Keys(f.ctx, keygate.KeyFilter{AccountID: a.ID, After: after, Limit: tt.limit})
				mustOK(t, err, "Keys")
				if len(got) != want {
					t.Fatalf("page %d: got %d keys, want %d", i, len(got), want)
				}
				if len(got) > 0 {
					seen = append(seen, keyIDs(got)...)
					after = got[len(got)-1].ID
				}
			}
			wantIDs(t, "every page", seen, keyIDs(keys))
		})
	}
}

func testRotateKey(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	old := f.fullKey(a.ID, keygate.TierPro)
	old.RevokedAt, old.RevokedReason, old.RevokedBy, old.ReplacedBy = nil, "", "", ""
	mustOK(t, f.s.CreateKey(f.ctx, old), "CreateKey")

	replacement := f.fullKey(a.ID, keygate.TierPro)
	replacement.RevokedAt, replacement.RevokedReason, replacement.RevokedBy, replacement.ReplacedBy = nil, "", "", ""
	replacement.Replaces, replacement.LineageID = old.ID, old.ID
	rotated := old.Clone()
	grace := f.now.Add(24 * time.Hour)
	rotated.RevokedAt, rotated.RevokedReason, rotated.RevokedBy = ptr(grace), "rotated", "account:"+a.ID
	rotated.ReplacedBy = replacement.ID
	rotated.UpdatedAt = f.now.Add(time.Minute)
	mustOK(t, f.rotate(rotated, replacement), "RotateKey")

	got, err := f.s.Key(f.ctx, old.ID)
	mustOK(t, err, "Key(old)")
	checkSame(t, "old key after RotateKey", got, rotated)
	got, err = f.s.Key(f.ctx, replacement.ID)
	mustOK(t, err, "Key(replacement)")
	checkSame(t, "replacement after RotateKey", got, replacement)

	// A key's lineage never changes, whatever an update sets.
	renamed := replacement.Clone()
	renamed.Name, renamed.LineageID, renamed.UpdatedAt = "renamed", "", f.now.Add(2*time.Minute)
	mustOK(t, f.replaceKey(renamed), "UpdateKey")
	if got, err = f.s.Key(f.ctx, replacement.ID); err != nil || got.LineageID != old.ID || got.Name != "renamed" {
		t.Errorf("after UpdateKey clearing lineage_id: got %+v, %v; want the name changed and lineage_id still %s", got, err, old.ID)
	}

	// Within the grace period both keys work; after it only the new one.
	for _, tt := range []struct {
		at   time.Time
		want []string
	}{
		{f.now, []string{old.ID, replacement.ID}},
		{grace, []string{replacement.ID}},
	} {
		keys, err := f.s.Keys(f.ctx, keygate.KeyFilter{AccountID: a.ID, Status: keygate.StatusActive, Now: tt.at})
		mustOK(t, err, "Keys")
		wantIDs(t, "active keys at "+tt.at.Format(time.RFC3339), keyIDs(keys), tt.want)
	}
}

func testRotateKeyAtomic(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	taken := f.key(t, a.ID)

	tests := []struct {
		name  string
		setup func(old, replacement *keygate.Key)
		code  string
	}{
		{"replacement hash taken", func(_, r *keygate.Key) { r.Hash = taken.Hash }, keygate.ECONFLICT},
		{"replacement tier unknown", func(_, r *keygate.Key) { r.Tier = f.name("missing") }, keygate.EINVALID},
		{"old key missing", func(o, _ *keygate.Key) { o.ID = f.id(keygate.PrefixKey) }, keygate.ENOTFOUND},
		{"old key's tier unknown", func(o, _ *keygate.Key) { o.Tier = f.name("missing") }, keygate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := f.key(t, a.ID)
			replacement := f.newKey(a.ID)
			replacement.Replaces = old.ID
			rotated := old.Clone()
			rotated.RevokedAt, rotated.ReplacedBy = ptr(f.now), replacement.ID
			rotated.UpdatedAt = f.now.Add(time.Minute)
			tt.setup(rotated, replacement)

			wantCode(t, f.rotate(rotated, replacement), tt.code, "RotateKey")
			got, err := f.s.Key(f.ctx, old.ID)
			mustOK(t, err, "Key(old)")
			checkSame(t, "old key after a failed RotateKey", got, old)
			_, err = f.s.Key(f.ctx, replacement.ID)
			wantCode(t, err, keygate.ENOTFOUND, "Key(replacement) after a failed RotateKey")
		})
	}
}

func testImportKeys(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	tier := f.tier(t)
	created := f.key(t, a.ID)

	first := []*keygate.Key{f.newKey(a.ID), f.fullKey(a.ID, tier.Name), f.newKey(a.ID)}
	first[2].HashAlg = keygate.HashSHA256
	n, err := f.s.ImportKeys(f.ctx, first)
	mustOK(t, err, "ImportKeys")
	if n != len(first) {
		t.Errorf("ImportKeys: got %d inserted, want %d", n, len(first))
	}

	// A second import skips hashes already stored, whether by CreateKey, by
	// the first import, or earlier in the same batch.
	fresh1, fresh2 := f.newKey(a.ID), f.newKey(a.ID)
	dupCreated, dupImported, dupInBatch := f.newKey(a.ID), f.newKey(a.ID), f.newKey(a.ID)
	dupCreated.Hash = created.Hash
	dupImported.Hash = first[1].Hash
	dupInBatch.Hash = fresh1.Hash
	second := []*keygate.Key{fresh1, dupCreated, dupImported, fresh2, dupInBatch}
	n, err = f.s.ImportKeys(f.ctx, second)
	mustOK(t, err, "ImportKeys")
	if n != 2 {
		t.Errorf("second ImportKeys: got %d inserted, want 2", n)
	}

	for _, k := range append(slices.Clone(first), created, fresh1, fresh2) {
		got, err := f.s.Key(f.ctx, k.ID)
		if err != nil {
			t.Errorf("Key(%s): %v", k.ID, err)
			continue
		}
		checkSame(t, "imported Key", got, k)
	}
	for _, k := range []*keygate.Key{dupCreated, dupImported, dupInBatch} {
		_, err := f.s.Key(f.ctx, k.ID)
		wantCode(t, err, keygate.ENOTFOUND, "Key of a skipped duplicate")
	}

	n, err = f.s.ImportKeys(f.ctx, nil)
	if n != 0 || err != nil {
		t.Errorf("ImportKeys(nil): got %d, %v; want 0, nil", n, err)
	}
	keys, err := f.s.Keys(f.ctx, keygate.KeyFilter{AccountID: a.ID})
	mustOK(t, err, "Keys")
	if len(keys) != 6 {
		t.Errorf("Keys: got %d keys, want 6", len(keys))
	}
}

func testImportKeysAtomic(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	tests := []struct {
		name  string
		setup func(k *keygate.Key)
		code  string
	}{
		{"unknown account", func(k *keygate.Key) { k.AccountID = f.id(keygate.PrefixAccount) }, keygate.ENOTFOUND},
		{"unknown tier", func(k *keygate.Key) { k.Tier = f.name("missing") }, keygate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := []*keygate.Key{f.newKey(a.ID), f.newKey(a.ID), f.newKey(a.ID)}
			tt.setup(keys[1])
			n, err := f.s.ImportKeys(f.ctx, keys)
			wantCode(t, err, tt.code, "ImportKeys")
			if n != 0 {
				t.Errorf("ImportKeys: got %d inserted, want 0", n)
			}
			for _, k := range keys {
				_, err := f.s.Key(f.ctx, k.ID)
				wantCode(t, err, keygate.ENOTFOUND, "Key after a failed ImportKeys")
			}
		})
	}
}

func testForEachKey(t *testing.T, f *fixture) {
	want := map[string]*keygate.Key{}
	for range 2 {
		a := f.account(t, keygate.TierFree)
		for _, k := range []*keygate.Key{f.key(t, a.ID), f.key(t, a.ID)} {
			want[k.ID] = k
		}
	}
	full := f.fullKey(f.account(t, keygate.TierFree).ID, keygate.TierPro)
	mustOK(t, f.s.CreateKey(f.ctx, full), "CreateKey")
	want[full.ID] = full

	seen := map[string]int{}
	err := f.s.ForEachKey(f.ctx, func(k *keygate.Key) error {
		if w, ok := want[k.ID]; ok {
			seen[k.ID]++
			checkSame(t, "ForEachKey", k, w)
		}
		return nil
	})
	mustOK(t, err, "ForEachKey")
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("ForEachKey: got key %s %d times, want once", id, seen[id])
		}
	}

	stop := errors.New("stop")
	calls := 0
	err = f.s.ForEachKey(f.ctx, func(*keygate.Key) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("ForEachKey with fn failing: got %v after %d calls, want %v after 1", err, calls, stop)
	}
}
