package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keygate/keygate"
)

// testChangedSince: records written at or after a moment are reported,
// older ones are not, and key changes carry the key as stored.
func testChangedSince(t *testing.T, f *fixture) {
	later := f.now.Add(time.Hour)
	mark := f.now.Add(30 * time.Minute)

	f.tier(t)
	oldAcct := f.account(t, keygate.TierFree)
	oldKey := f.key(t, oldAcct.ID)
	oldRoot := f.newRootKey()
	mustOK(t, f.s.CreateRootKey(f.ctx, oldRoot), "CreateRootKey")
	revokedRoot := f.newRootKey()
	mustOK(t, f.s.CreateRootKey(f.ctx, revokedRoot), "CreateRootKey")

	newTier := f.newTier()
	newTier.CreatedAt, newTier.UpdatedAt = later, later
	mustOK(t, f.s.CreateTier(f.ctx, newTier), "CreateTier")
	newAcct := f.newAccount(keygate.TierFree)
	newAcct.CreatedAt, newAcct.UpdatedAt = later, later
	mustOK(t, f.s.CreateAccount(f.ctx, newAcct, nil), "CreateAccount")
	updated, err := f.s.UpdateKey(f.ctx, oldKey.ID, func(k *keygate.Key) ([]*keygate.AuditEvent, error) {
		k.Enabled, k.UpdatedAt = false, later
		return nil, nil
	})
	mustOK(t, err, "UpdateKey")
	newRoot := f.newRootKey()
	newRoot.CreatedAt = later
	mustOK(t, f.s.CreateRootKey(f.ctx, newRoot), "CreateRootKey")
	_, err = f.s.RevokeRootKey(f.ctx, revokedRoot.ID, func(r *keygate.RootKey, _ int) ([]*keygate.AuditEvent, error) {
		r.RevokedAt = &later
		return nil, nil
	})
	mustOK(t, err, "RevokeRootKey")

	got, err := f.s.ChangedSince(f.ctx, mark)
	mustOK(t, err, "ChangedSince")
	type change struct {
		Kind keygate.ChangeKind
		ID   string
	}
	var ids []change
	for _, c := range got {
		ids = append(ids, change{c.Kind, c.ID})
		if c.Kind == keygate.ChangeKey {
			if diff := cmp.Diff(updated, c.Key); diff != "" {
				t.Errorf("ChangedSince: the key's record differs from the stored one (-want +got):\n%s", diff)
			}
		} else if c.Key != nil {
			t.Errorf("ChangedSince: a %s change carries a key", c.Kind)
		}
	}
	want := []change{
		{keygate.ChangeAccount, newAcct.ID},
		{keygate.ChangeKey, oldKey.ID},
		{keygate.ChangeRootKey, newRoot.ID},
		{keygate.ChangeRootKey, revokedRoot.ID},
		{keygate.ChangeTier, newTier.Name},
	}
	order := func(a, b change) int {
		if a.Kind != b.Kind {
			if a.Kind < b.Kind {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		} else if a.ID > b.ID {
			return 1
		}
		return 0
	}
	slices.SortFunc(ids, order)
	slices.SortFunc(want, order)
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("ChangedSince(%s) (-want +got):\n%s", mark.Format(time.RFC3339), diff)
	}

	got, err = f.s.ChangedSince(f.ctx, later.Add(time.Millisecond))
	mustOK(t, err, "ChangedSince")
	if len(got) != 0 {
		t.Errorf("ChangedSince after every write: got %d changes, want none", len(got))
	}
}
