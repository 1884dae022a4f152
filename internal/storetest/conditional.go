package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// testConditionalUnchanged checks that a function returning ErrUnchanged
// makes a conditional write write nothing: no change, no audit event, no
// notification, and the record comes back as stored.
func testConditionalUnchanged(t *testing.T, f *fixture) {
	tier := f.tier(t)
	a := f.account(t, tier.Name)
	k := f.key(t, a.ID)
	rec := &recorder{}
	f.s.OnChange(rec.record)
	actor := f.actor()
	ev := func(id string) []*keygate.AuditEvent {
		return []*keygate.AuditEvent{f.event(actor, "test.unchanged", "test", id)}
	}

	gotK, err := f.s.UpdateKey(f.ctx, k.ID, func(cur *keygate.Key) ([]*keygate.AuditEvent, error) {
		cur.Name = "not stored"
		return ev(k.ID), keygate.ErrUnchanged
	})
	mustOK(t, err, "UpdateKey returning ErrUnchanged")
	checkSame(t, "UpdateKey returning ErrUnchanged", gotK, k)
	gotA, err := f.s.UpdateAccount(f.ctx, a.ID, func(cur *keygate.Account) ([]*keygate.AuditEvent, error) {
		cur.Name = "not stored"
		return ev(a.ID), keygate.ErrUnchanged
	})
	mustOK(t, err, "UpdateAccount returning ErrUnchanged")
	checkSame(t, "UpdateAccount returning ErrUnchanged", gotA, a)
	gotT, err := f.s.UpdateTier(f.ctx, tier.Name, func(cur *keygate.Tier) ([]*keygate.AuditEvent, error) {
		cur.Burst++
		return ev(tier.Name), keygate.ErrUnchanged
	})
	mustOK(t, err, "UpdateTier returning ErrUnchanged")
	checkSame(t, "UpdateTier returning ErrUnchanged", gotT, tier)

	// Any other error is returned as it is, and nothing is written either.
	boom := errors.New("boom")
	_, err = f.s.UpdateKey(f.ctx, k.ID, func(cur *keygate.Key) ([]*keygate.AuditEvent, error) {
		cur.Name = "not stored"
		return ev(k.ID), boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("UpdateKey with fn failing: got %v, want %v", err, boom)
	}
	_, _, err = f.s.RotateKey(f.ctx, k.ID, func(cur *keygate.Key) (*keygate.Key, []*keygate.AuditEvent, error) {
		cur.Name = "not stored"
		return f.newKey(a.ID), ev(k.ID), boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("RotateKey with fn failing: got %v, want %v", err, boom)
	}
	_, err = f.s.UpdateAccount(f.ctx, a.ID, func(cur *keygate.Account) ([]*keygate.AuditEvent, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Errorf("UpdateAccount with fn failing: got %v, want %v", err, boom)
	}
	_, err = f.s.UpdateTier(f.ctx, tier.Name, func(cur *keygate.Tier) ([]*keygate.AuditEvent, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Errorf("UpdateTier with fn failing: got %v, want %v", err, boom)
	}

	if got := rec.about(k.ID, a.ID, tier.Name); len(got) != 0 {
		t.Errorf("got changes %v, want none", got)
	}
	evs, err := f.s.AuditEvents(f.ctx, keygate.AuditFilter{Actor: actor})
	mustOK(t, err, "AuditEvents")
	if len(evs) != 0 {
		t.Errorf("got %d audit events, want none", len(evs))
	}
	storedK, err := f.s.Key(f.ctx, k.ID)
	mustOK(t, err, "Key")
	checkSame(t, "Key after unchanged and failed updates", storedK, k)
	storedA, err := f.s.Account(f.ctx, a.ID)
	mustOK(t, err, "Account")
	checkSame(t, "Account after unchanged and failed updates", storedA, a)
	storedT, err := f.s.Tier(f.ctx, tier.Name)
	mustOK(t, err, "Tier")
	checkSame(t, "Tier after unchanged and failed updates", storedT, tier)

	for _, tt := range []struct {
		name string
		err  error
	}{
		{"UpdateKey", func() error { _, err := f.s.UpdateKey(f.ctx, f.id(keygate.PrefixKey), noKeyChange); return err }()},
		{"RotateKey", func() error {
			_, _, err := f.s.RotateKey(f.ctx, f.id(keygate.PrefixKey), func(*keygate.Key) (*keygate.Key, []*keygate.AuditEvent, error) {
				return f.newKey(a.ID), nil, nil
			})
			return err
		}()},
		{"UpdateAccount", func() error {
			_, err := f.s.UpdateAccount(f.ctx, f.id(keygate.PrefixAccount), func(*keygate.Account) ([]*keygate.AuditEvent, error) { return nil, nil })
			return err
		}()},
		{"UpdateTier", func() error {
			_, err := f.s.UpdateTier(f.ctx, f.name("missing"), func(*keygate.Tier) ([]*keygate.AuditEvent, error) { return nil, nil })
			return err
		}()},
	} {
		wantCode(t, tt.err, keygate.ENOTFOUND, tt.name+" of a missing record")
	}
}

func noKeyChange(*keygate.Key) ([]*keygate.AuditEvent, error) { return nil, nil }

// testConditionalConcurrent runs many read-modify-writes of the same
// records at once: each adds its own mark, and every mark must survive,
// as it cannot when a writer writes back a copy read before another
// writer's change.
func testConditionalConcurrent(t *testing.T, f *fixture) {
	tier := f.tier(t)
	a := f.account(t, tier.Name)
	k := f.key(t, a.ID)
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, 3*writers)
	for i := range writers {
		mark := fmt.Sprintf("w%d:x", i)
		wg.Go(func() {
			_, err := f.s.UpdateKey(f.ctx, k.ID, func(cur *keygate.Key) ([]*keygate.AuditEvent, error) {
				cur.Scopes = append(cur.Scopes, mark)
				return nil, nil
			})
			if err != nil {
				errs <- fmt.Errorf("UpdateKey: %w", err)
			}
		})
		wg.Go(func() {
			_, err := f.s.UpdateAccount(f.ctx, a.ID, func(cur *keygate.Account) ([]*keygate.AuditEvent, error) {
				cur.Name += " " + mark
				return nil, nil
			})
			if err != nil {
				errs <- fmt.Errorf("UpdateAccount: %w", err)
			}
		})
		wg.Go(func() {
			_, err := f.s.UpdateTier(f.ctx, tier.Name, func(cur *keygate.Tier) ([]*keygate.AuditEvent, error) {
				cur.Burst++
				return nil, nil
			})
			if err != nil {
				errs <- fmt.Errorf("UpdateTier: %w", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	gotK, err := f.s.Key(f.ctx, k.ID)
	mustOK(t, err, "Key")
	gotA, err := f.s.Account(f.ctx, a.ID)
	mustOK(t, err, "Account")
	gotT, err := f.s.Tier(f.ctx, tier.Name)
	mustOK(t, err, "Tier")
	for i := range writers {
		mark := fmt.Sprintf("w%d:x", i)
		if !slices.Contains(gotK.Scopes, mark) {
			t.Errorf("key scopes %v: lost %s", gotK.Scopes, mark)
		}
		if !strings.Contains(gotA.Name+" ", " "+mark+" ") {
			t.Errorf("account name %q: lost %s", gotA.Name, mark)
		}
	}
	if want := tier.Burst + writers; gotT.Burst != want {
		t.Errorf("tier burst: got %d, want %d (lost updates)", gotT.Burst, want)
	}
}

// guardedRevoke revokes root key id at at, as keygate's write service
// does: a revoked key stays as it is, and the last key with admin:write
// cannot be revoked. It returns the count fn was given.
func (f *fixture) guardedRevoke(id string, at time.Time, evs ...*keygate.AuditEvent) (*keygate.RootKey, int, error) {
	count := -1
	r, err := f.s.RevokeRootKey(f.ctx, id, func(r *keygate.RootKey, others int) ([]*keygate.AuditEvent, error) {
		count = others
		if r.RevokedAt != nil {
			return evs, keygate.ErrUnchanged
		}
		if r.Can(keygate.PermAdminWrite) && others == 0 {
			return nil, keygate.Errorf(keygate.ECONFLICT, "last admin:write key")
		}
		r.RevokedAt = &at
		return evs, nil
	})
	return r, count, err
}

// testRevokeLastAdminWriter checks that RevokeRootKey counts the other
// unrevoked root keys with admin:write, and that the count holds until the
// revocation commits: of two revocations racing for the last two such
// keys, one sees the other's.
func testRevokeLastAdminWriter(t *testing.T, f *fixture) {
	admin := func() *keygate.RootKey {
		r := f.newRootKey()
		r.Permissions = keygate.AllPermissions
		mustOK(t, f.s.CreateRootKey(f.ctx, r), "CreateRootKey")
		return r
	}
	reader := f.newRootKey() // admin:read and verify only
	mustOK(t, f.s.CreateRootKey(f.ctx, reader), "CreateRootKey")
	only := admin()
	_, n, err := f.guardedRevoke(only.ID, f.now)
	wantCode(t, err, keygate.ECONFLICT, "RevokeRootKey of the last admin:write key")
	if n != 0 {
		t.Errorf("RevokeRootKey of the only admin:write key: fn got %d others, want 0", n)
	}
	got, err := f.s.RootKey(f.ctx, only.ID)
	mustOK(t, err, "RootKey")
	if got.RevokedAt != nil {
		t.Errorf("the last admin:write key was revoked")
	}
	// A key without admin:write may go; it sees the one writer.
	revoked, n, err := f.guardedRevoke(reader.ID, f.now)
	mustOK(t, err, "RevokeRootKey of a reader")
	if n != 1 {
		t.Errorf("RevokeRootKey of a reader: fn got %d others, want 1", n)
	}
	if revoked.RevokedAt == nil || !revoked.RevokedAt.Equal(f.now) {
		t.Errorf("RevokeRootKey: got revoked_at %v, want %v", revoked.RevokedAt, f.now)
	}
	// Revoking it again changes nothing, and stores no event.
	actor := f.actor()
	again, _, err := f.guardedRevoke(reader.ID, f.now.Add(time.Second), f.event(actor, keygate.ActionRootKeyRevoked, keygate.TargetRootKey, reader.ID))
	mustOK(t, err, "RevokeRootKey again")
	checkSame(t, "RevokeRootKey again", again, revoked)
	evs, err := f.s.AuditEvents(f.ctx, keygate.AuditFilter{Actor: actor})
	mustOK(t, err, "AuditEvents")
	if len(evs) != 0 {
		t.Errorf("revoking a revoked root key stored %d audit events, want none", len(evs))
	}
	_, _, err = f.guardedRevoke(f.id(keygate.PrefixRootKey), f.now)
	wantCode(t, err, keygate.ENOTFOUND, "RevokeRootKey of a missing key")

	// Two revocations race for the last two admin:write keys: one wins.
	for round := range 5 {
		second := admin()
		first := only
		var wg sync.WaitGroup
		results := make([]error, 2)
		for i, id := range []string{first.ID, second.ID} {
			wg.Go(func() {
				_, _, results[i] = f.guardedRevoke(id, f.now)
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range results {
			switch keygate.ErrorCode(err) {
			case "":
				ok++
			case keygate.ECONFLICT:
			default:
				t.Errorf("round %d: RevokeRootKey: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of 2 concurrent revocations of the last two admin:write keys succeeded, want 1", round, ok)
		}
		all, err := f.s.RootKeys(f.ctx)
		mustOK(t, err, "RootKeys")
		live := 0
		for _, r := range all {
			if r.RevokedAt == nil && r.Can(keygate.PermAdminWrite) {
				live++
				only = r
			}
		}
		if live != 1 {
			t.Fatalf("round %d: %d live admin:write root keys, want 1", round, live)
		}
	}
}
