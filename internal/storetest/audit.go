package storetest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func testAuditWithWrites(t *testing.T, f *fixture) {
	actor := f.actor()
	newTier, updTier, delTier := f.newTier(), f.tier(t), f.tier(t)
	acc := f.account(t, keygate.TierFree)
	newAcc := f.newAccount(keygate.TierFree)
	key := f.key(t, acc.ID)
	newKey := f.newKey(acc.ID)
	rotated, replacement := f.key(t, acc.ID), f.newKey(acc.ID)
	imported := f.newKey(acc.ID)
	root := f.newRootKey()

	tests := []struct {
		action, targetType, targetID string
		write                        func(ev *keygate.AuditEvent) error
	}{
		{keygate.ActionTierCreated, keygate.TargetTier, newTier.Name, func(ev *keygate.AuditEvent) error {
			return f.s.CreateTier(f.ctx, newTier, ev)
		}},
		{keygate.ActionTierUpdated, keygate.TargetTier, updTier.Name, func(ev *keygate.AuditEvent) error {
			updTier.Burst++
			return f.replaceTier(updTier, ev)
		}},
		{keygate.ActionTierDeleted, keygate.TargetTier, delTier.Name, func(ev *keygate.AuditEvent) error {
			return f.s.DeleteTier(f.ctx, delTier.Name, ev)
		}},
		{keygate.ActionAccountCreated, keygate.TargetAccount, newAcc.ID, func(ev *keygate.AuditEvent) error {
			return f.s.CreateAccount(f.ctx, newAcc, nil, ev)
		}},
		{keygate.ActionAccountUpdated, keygate.TargetAccount, acc.ID, func(ev *keygate.AuditEvent) error {
			acc.Name = "renamed"
			return f.replaceAccount(acc, ev)
		}},
		{keygate.ActionKeyCreated, keygate.TargetKey, newKey.ID, func(ev *keygate.AuditEvent) error {
			return f.s.CreateKey(f.ctx, newKey, ev)
		}},
		{keygate.ActionKeyDisabled, keygate.TargetKey, key.ID, func(ev *keygate.AuditEvent) error {
			key.Enabled = false
			return f.replaceKey(key, ev)
		}},
		{keygate.ActionKeyRotated, keygate.TargetKey, rotated.ID, func(ev *keygate.AuditEvent) error {
			rotated.ReplacedBy = replacement.ID
			return f.rotate(rotated, replacement, ev)
		}},
		{keygate.ActionKeysImported, keygate.TargetAccount, acc.ID, func(ev *keygate.AuditEvent) error {
			_, err := f.s.ImportKeys(f.ctx, []*keygate.Key{imported}, ev)
			return err
		}},
		{keygate.ActionRootKeyCreated, keygate.TargetRootKey, root.ID, func(ev *keygate.AuditEvent) error {
			return f.s.CreateRootKey(f.ctx, root, ev)
		}},
		{keygate.ActionRootKeyRevoked, keygate.TargetRootKey, root.ID, func(ev *keygate.AuditEvent) error {
			return f.revokeRoot(root.ID, f.now, ev)
		}},
	}
	var written []*keygate.AuditEvent
	for i, tt := range tests {
		ev := f.event(actor, tt.action, tt.targetType, tt.targetID)
		ev.Time = f.now.Add(time.Duration(i) * time.Second)
		if err := tt.write(ev); err != nil {
			t.Errorf("%s: %v", tt.action, err)
			continue
		}
		written = append(written, ev)
		got, err := f.s.AuditEvents(f.ctx, keygate.AuditFilter{Actor: actor, Action: tt.action, TargetID: tt.targetID})
		mustOK(t, err, "AuditEvents")
		if len(got) != 1 {
			t.Errorf("AuditEvents after %s: got %d events, want 1", tt.action, len(got))
			continue
		}
		checkSame(t, "AuditEvents after "+tt.action, got[0], ev)
	}
	got, err := f.s.AuditEvents(f.ctx, keygate.AuditFilter{Actor: actor, Limit: 100})
	mustOK(t, err, "AuditEvents")
	slices.Reverse(written)
	wantIDs(t, "AuditEvents by actor, newest first", eventIDs(got), eventIDs(written))

	// Several events may come with one write.
	k := f.newKey(acc.ID)
	evs := []*keygate.AuditEvent{
		f.event(actor, keygate.ActionKeyCreated, keygate.TargetKey, k.ID),
		f.event(actor, keygate.ActionKeyDisabled, keygate.TargetKey, k.ID),
	}
	evs[1].Time = evs[0].Time.Add(time.Millisecond)
	mustOK(t, f.s.CreateKey(f.ctx, k, evs...), "CreateKey with two events")
	got, err = f.s.AuditEvents(f.ctx, keygate.AuditFilter{TargetID: k.ID})
	mustOK(t, err, "AuditEvents")
	wantIDs(t, "AuditEvents of a write with two events", eventIDs(got), []string{evs[1].ID, evs[0].ID})
}

// failingWrite is a write that must fail, and the IDs of the records it
// names: after it, no change may be reported and no audit event stored
// for them.
type failingWrite struct {
	name  string
	ids   []string
	write func(ev *keygate.AuditEvent) error
}

// failingWrites sets up records and returns writes that fail against them.
func failingWrites(t *testing.T, f *fixture) []failingWrite {
	tier := f.tier(t)
	acc := f.account(t, tier.Name)
	key := f.key(t, acc.ID)
	root := f.newRootKey()
	mustOK(t, f.s.CreateRootKey(f.ctx, root), "CreateRootKey")
	missingTier := f.name("missing")

	dupTier := f.newTier()
	dupTier.Name = tier.Name
	dupEmail := f.newAccount(keygate.TierFree)
	dupEmail.Email = acc.Email
	atomicAcc := f.newAccount(keygate.TierFree)
	atomicKey := f.newKey(atomicAcc.ID)
	atomicKey.Hash = key.Hash
	badTierAcc := f.newAccount(missingTier)
	missingAcc := f.newAccount(keygate.TierFree)
	otherAcc := f.account(t, keygate.TierFree)
	takenEmail := *otherAcc
	takenEmail.Email = acc.Email
	orphan := f.newKey(f.id(keygate.PrefixAccount))
	badTierKey := f.newKey(acc.ID)
	badTierKey.Tier = missingTier
	dupHash := f.newKey(acc.ID)
	dupHash.Hash = key.Hash
	missingKey := f.newKey(acc.ID)
	badUpdate := key.Clone()
	badUpdate.Tier = missingTier
	old := f.key(t, acc.ID)
	rotatedOld := old.Clone()
	rotatedOld.RevokedAt = ptr(f.now)
	dupReplacement := f.newKey(acc.ID)
	dupReplacement.Hash = key.Hash
	rotatedOld.ReplacedBy = dupReplacement.ID
	batch := []*keygate.Key{f.newKey(acc.ID), f.newKey(f.id(keygate.PrefixAccount))}
	dupRoot := f.newRootKey()
	dupRoot.Hash = root.Hash
	missingRoot := f.id(keygate.PrefixRootKey)

	return []failingWrite{
		{"CreateTier duplicate", []string{tier.Name}, func(ev *keygate.AuditEvent) error {
			return f.s.CreateTier(f.ctx, dupTier, ev)
		}},
		{"UpdateTier missing", []string{missingTier}, func(ev *keygate.AuditEvent) error {
			return f.replaceTier(&keygate.Tier{Name: missingTier, QuotaPerDay: 1, RatePerSecond: 1, Burst: 1}, ev)
		}},
		{"DeleteTier missing", []string{missingTier}, func(ev *keygate.AuditEvent) error {
			return f.s.DeleteTier(f.ctx, missingTier, ev)
		}},
		{"DeleteTier in use", []string{tier.Name}, func(ev *keygate.AuditEvent) error {
			return f.s.DeleteTier(f.ctx, tier.Name, ev)
		}},
		{"CreateAccount duplicate email", []string{dupEmail.ID, acc.ID}, func(ev *keygate.AuditEvent) error {
			return f.s.CreateAccount(f.ctx, dupEmail, nil, ev)
		}},
		{"CreateAccount first key hash taken", []string{atomicAcc.ID, atomicKey.ID}, func(ev *keygate.AuditEvent) error {
			return f.s.CreateAccount(f.ctx, atomicAcc, atomicKey, ev)
		}},
		{"CreateAccount unknown tier", []string{badTierAcc.ID}, func(ev *keygate.AuditEvent) error {
			return f.s.CreateAccount(f.ctx, badTierAcc, nil, ev)
		}},
		{"UpdateAccount missing", []string{missingAcc.ID}, func(ev *keygate.AuditEvent) error {
			return f.replaceAccount(missingAcc, ev)
		}},
		{"UpdateAccount email taken", []string{otherAcc.ID, acc.ID}, func(ev *keygate.AuditEvent) error {
			return f.replaceAccount(&takenEmail, ev)
		}},
		{"CreateKey unknown account", []string{orphan.ID}, func(ev *keygate.AuditEvent) error {
			return f.s.CreateKey(f.ctx, orphan, ev)
		}},
		{"CreateKey unknown tier", []string{badTierKey.ID}, func(ev *keygate.AuditEvent) error {
			return f.s.CreateKey(f.ctx, badTierKey, ev)
		}},
		{"CreateKey duplicate hash", []string{dupHash.ID, key.ID}, func(ev *keygate.AuditEvent) error {
			return f.s.CreateKey(f.ctx, dupHash, ev)
		}},
		{"UpdateKey missing", []string{missingKey.ID}, func(ev *keygate.AuditEvent) error {
			return f.replaceKey(missingKey, ev)
		}},
		{"UpdateKey unknown tier", []string{key.ID}, func(ev *keygate.AuditEvent) error {
			return f.replaceKey(badUpdate, ev)
		}},
		{"RotateKey replacement hash taken", []string{old.ID, dupReplacement.ID, key.ID}, func(ev *keygate.AuditEvent) error {
			return f.rotate(rotatedOld, dupReplacement, ev)
		}},
		{"ImportKeys unknown account", []string{batch[0].ID, batch[1].ID}, func(ev *keygate.AuditEvent) error {
			_, err := f.s.ImportKeys(f.ctx, batch, ev)
			return err
		}},
		{"CreateRootKey duplicate hash", []string{dupRoot.ID, root.ID}, func(ev *keygate.AuditEvent) error {
			return f.s.CreateRootKey(f.ctx, dupRoot, ev)
		}},
		{"RevokeRootKey missing", []string{missingRoot}, func(ev *keygate.AuditEvent) error {
			return f.revokeRoot(missingRoot, f.now, ev)
		}},
	}
}

func testAuditNotWrittenOnFailure(t *testing.T, f *fixture) {
	actor := f.actor()
	for _, w := range failingWrites(t, f) {
		if err := w.write(f.event(actor, "test.failed", "test", w.ids[0])); err == nil {
			t.Errorf("%s: got no error, want one", w.name)
		}
	}
	got, err := f.s.AuditEvents(f.ctx, keygate.AuditFilter{Actor: actor})
	mustOK(t, err, "AuditEvents")
	wantIDs(t, "AuditEvents after failed writes", eventIDs(got), nil)
}

func testAuditFailureRollsBackWrite(t *testing.T, f *fixture) {
	first := f.event(f.actor(), keygate.ActionTierCreated, keygate.TargetTier, "x")
	mustOK(t, f.s.CreateTier(f.ctx, f.newTier(), first), "CreateTier")
	rec := &recorder{}
	f.s.OnChange(rec.record)

	// An event whose ID is taken cannot be stored, so the write it
	// describes must not be either.
	again := func() *keygate.AuditEvent { ev := *first; return &ev }
	tier := f.newTier()
	if err := f.s.CreateTier(f.ctx, tier, again()); err == nil {
		t.Errorf("CreateTier with a duplicate audit event: got no error, want one")
	}
	_, err := f.s.Tier(f.ctx, tier.Name)
	wantCode(t, err, keygate.ENOTFOUND, "Tier after CreateTier with a duplicate audit event")

	a := f.account(t, keygate.TierFree)
	k := f.newKey(a.ID)
	if err := f.s.CreateKey(f.ctx, k, f.event(f.actor(), keygate.ActionKeyCreated, keygate.TargetKey, k.ID), again()); err == nil {
		t.Errorf("CreateKey with a duplicate audit event: got no error, want one")
	}
	_, err = f.s.Key(f.ctx, k.ID)
	wantCode(t, err, keygate.ENOTFOUND, "Key after CreateKey with a duplicate audit event")
	got, err := f.s.AuditEvents(f.ctx, keygate.AuditFilter{TargetID: k.ID})
	mustOK(t, err, "AuditEvents")
	wantIDs(t, "AuditEvents of the failed CreateKey", eventIDs(got), nil)

	if c := rec.about(tier.Name, k.ID); len(c) != 0 {
		t.Errorf("OnChange after failed writes: got %v, want none", c)
	}
}

func testAuditEventsFilter(t *testing.T, f *fixture) {
	x, y := f.actor(), f.actor()
	k1, k2 := f.id(keygate.PrefixKey), f.id(keygate.PrefixKey)
	a1 := f.id(keygate.PrefixAccount)
	t1 := f.name("t")
	now, hour := f.now, time.Hour
	mk := func(actor, action, targetType, targetID string, at time.Time) *keygate.AuditEvent {
		ev := f.event(actor, action, targetType, targetID)
		ev.Time = at
		return ev
	}
	e := []*keygate.AuditEvent{
		mk(x, keygate.ActionKeyCreated, keygate.TargetKey, k1, now.Add(-3*hour)),
		mk(x, keygate.ActionKeyRevoked, keygate.TargetKey, k1, now.Add(-2*hour)),
		mk(x, keygate.ActionAccountUpdated, keygate.TargetAccount, a1, now.Add(-hour)),
		mk(x, keygate.ActionKeyCreated, keygate.TargetKey, k2, now),
		mk(x, keygate.ActionTierCreated, keygate.TargetTier, t1, now), // same time as e[3], later ID
		mk(y, keygate.ActionKeyRevoked, keygate.TargetKey, k1, now.Add(hour)),
	}
	e[2].Details = json.RawMessage(`{"changed":["name","email"],"from":{"name":"A"}}`)
	e[3].Details = nil
	mustOK(t, f.s.CreateTier(f.ctx, f.newTier(), e...), "CreateTier with six events")
	ids := func(is ...int) []string {
		var out []string
		for _, i := range is {
			out = append(out, e[i].ID)
		}
		return out
	}

	tests := []struct {
		name   string
		filter keygate.AuditFilter
		want   []string
	}{
		{"actor", keygate.AuditFilter{Actor: x}, ids(4, 3, 2, 1, 0)},
		{"other actor", keygate.AuditFilter{Actor: y}, ids(5)},
		{"target id", keygate.AuditFilter{TargetID: k1}, ids(5, 1, 0)},
		{"target type", keygate.AuditFilter{Actor: x, TargetType: keygate.TargetKey}, ids(3, 1, 0)},
		{"target type and id", keygate.AuditFilter{TargetType: keygate.TargetAccount, TargetID: a1}, ids(2)},
		{"action", keygate.AuditFilter{Actor: x, Action: keygate.ActionKeyCreated}, ids(3, 0)},
		{"action and target", keygate.AuditFilter{Action: keygate.ActionKeyRevoked, TargetID: k1}, ids(5, 1)},
		{"since, inclusive", keygate.AuditFilter{Actor: x, Since: now.Add(-2 * hour)}, ids(4, 3, 2, 1)},
		{"until, exclusive", keygate.AuditFilter{Actor: x, Until: now.Add(-hour)}, ids(1, 0)},
		{"since and until", keygate.AuditFilter{Actor: x, Since: now.Add(-2 * hour), Until: now}, ids(2, 1)},
		{"limit", keygate.AuditFilter{TargetID: k1, Limit: 2}, ids(5, 1)},
		{"before", keygate.AuditFilter{TargetID: k1, Before: e[1].ID}, ids(0)},
		{"before the last", keygate.AuditFilter{TargetID: k1, Before: e[0].ID}, nil},
		{"before, at the same time", keygate.AuditFilter{Actor: x, Before: e[4].ID}, ids(3, 2, 1, 0)},
		{"nothing", keygate.AuditFilter{Actor: x, Action: keygate.ActionRootKeyRevoked}, nil},
	}
	for _, tt := range tests {
		got, err := f.s.AuditEvents(f.ctx, tt.filter)
		if err != nil {
			t.Errorf("AuditEvents(%s): %v", tt.name, err)
			continue
		}
		wantIDs(t, "AuditEvents("+tt.name+")", eventIDs(got), tt.want)
	}

	got, err := f.s.AuditEvents(f.ctx, keygate.AuditFilter{Actor: x})
	mustOK(t, err, "AuditEvents")
	for _, ev := range got {
		i := slices.IndexFunc(e, func(w *keygate.AuditEvent) bool { return w.ID == ev.ID })
		if i >= 0 {
			checkSame(t, "AuditEvents", ev, e[i])
		}
	}

	// Paging with the cursor visits every event once, newest first.
	var seen []string
	before := ""
	for range 10 {
		got, err := f.s.AuditEvents(f.ctx, keygate.AuditFilter{Actor: x, Before: before, Limit: 2})
		mustOK(t, err, "AuditEvents")
		if len(got) == 0 {
			break
		}
		seen = append(seen, eventIDs(got)...)
		before = got[len(got)-1].ID
	}
	wantIDs(t, "AuditEvents paged 2 at a time", seen, ids(4, 3, 2, 1, 0))
}
