package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func (f *fixture) newInvite() *keygate.Invite {
	return &keygate.Invite{
		ID: f.id(keygate.PrefixInvite), Note: "for " + f.tag, Start: keygate.InviteCodePrefix + "ab12", Hash: hash(),
		CreatedBy: f.actor(), CreatedAt: f.now, ExpiresAt: f.now.Add(24 * time.Hour),
	}
}

func testInvites(t *testing.T, f *fixture) {
	a, b := f.newInvite(), f.newInvite()
	ev := f.event(a.CreatedBy, keygate.ActionInviteCreated, keygate.TargetInvite, a.ID)
	mustOK(t, f.s.CreateInvite(f.ctx, a, ev), "CreateInvite")
	mustOK(t, f.s.CreateInvite(f.ctx, b), "CreateInvite")
	dupHash := f.newInvite()
	dupHash.Hash = a.Hash
	wantCode(t, f.s.CreateInvite(f.ctx, dupHash), keygate.ECONFLICT, "CreateInvite with a stored hash")
	wantCode(t, f.s.CreateInvite(f.ctx, a), keygate.ECONFLICT, "CreateInvite with a stored ID")

	got, err := f.s.Invite(f.ctx, a.ID)
	mustOK(t, err, "Invite")
	checkSame(t, "Invite", got, a)
	got, err = f.s.InviteByHash(f.ctx, a.Hash)
	mustOK(t, err, "InviteByHash")
	checkSame(t, "InviteByHash", got, a)
	_, err = f.s.Invite(f.ctx, f.id(keygate.PrefixInvite))
	wantCode(t, err, keygate.ENOTFOUND, "Invite(unknown)")
	_, err = f.s.InviteByHash(f.ctx, hash())
	wantCode(t, err, keygate.ENOTFOUND, "InviteByHash(unknown)")
	evs, err := f.s.AuditEvents(f.ctx, keygate.AuditFilter{TargetType: keygate.TargetInvite, TargetID: a.ID})
	mustOK(t, err, "AuditEvents")
	wantIDs(t, "audit events of CreateInvite", eventIDs(evs), []string{ev.ID})

	// Newest first, with a cursor.
	all, err := f.s.Invites(f.ctx, keygate.InviteFilter{})
	mustOK(t, err, "Invites")
	wantIDs(t, "Invites", inviteIDs(all), []string{b.ID, a.ID})
	page, err := f.s.Invites(f.ctx, keygate.InviteFilter{Limit: 1})
	mustOK(t, err, "Invites(limit 1)")
	wantIDs(t, "Invites(limit 1)", inviteIDs(page), []string{b.ID})
	page, err = f.s.Invites(f.ctx, keygate.InviteFilter{Before: b.ID})
	mustOK(t, err, "Invites(before)")
	wantIDs(t, "Invites(before)", inviteIDs(page), []string{a.ID})

	// UpdateInvite redeems once: the function sees the stored record and
	// its change and events commit together.
	usedAt := f.now.Add(time.Minute)
	redeem := func(inv *keygate.Invite) ([]*keygate.AuditEvent, error) {
		if inv.UsedAt != nil {
			return nil, keygate.Errorf(keygate.ECONFLICT, "used")
		}
		inv.UsedAt, inv.UsedBy = &usedAt, "dev@example.com"
		inv.Note = "ignored: only used_at, used_by and revoked_at change"
		return []*keygate.AuditEvent{f.event("registration", keygate.ActionInviteRedeemed, keygate.TargetInvite, inv.ID)}, nil
	}
	got, err = f.s.UpdateInvite(f.ctx, a.ID, redeem)
	mustOK(t, err, "UpdateInvite")
	want := *a
	want.UsedAt, want.UsedBy = &usedAt, "dev@example.com"
	checkSame(t, "UpdateInvite's answer", got, &want)
	got, err = f.s.Invite(f.ctx, a.ID)
	mustOK(t, err, "Invite after UpdateInvite")
	checkSame(t, "Invite after UpdateInvite", got, &want)
	_, err = f.s.UpdateInvite(f.ctx, a.ID, redeem)
	wantCode(t, err, keygate.ECONFLICT, "a second redemption")
	if got.Status(usedAt) != keygate.InviteUsed {
		t.Errorf("Status of a redeemed invite: got %s", got.Status(usedAt))
	}

	// Unchanged writes nothing; an unknown ID is ENOTFOUND.
	got, err = f.s.UpdateInvite(f.ctx, b.ID, func(*keygate.Invite) ([]*keygate.AuditEvent, error) { return nil, keygate.ErrUnchanged })
	mustOK(t, err, "UpdateInvite unchanged")
	checkSame(t, "UpdateInvite unchanged", got, b)
	_, err = f.s.UpdateInvite(f.ctx, f.id(keygate.PrefixInvite), redeem)
	wantCode(t, err, keygate.ENOTFOUND, "UpdateInvite(unknown)")
	revoked := f.now.Add(2 * time.Minute)
	_, err = f.s.UpdateInvite(f.ctx, b.ID, func(inv *keygate.Invite) ([]*keygate.AuditEvent, error) {
		inv.RevokedAt = &revoked
		return nil, nil
	})
	mustOK(t, err, "UpdateInvite revoke")
	got, err = f.s.Invite(f.ctx, b.ID)
	mustOK(t, err, "Invite after revoking")
	if got.RevokedAt == nil || !got.RevokedAt.Equal(revoked) || got.Status(revoked) != keygate.InviteRevoked {
		t.Errorf("revoked invite: got %+v", got)
	}
	failed := errors.New("refused")
	_, err = f.s.UpdateInvite(f.ctx, b.ID, func(inv *keygate.Invite) ([]*keygate.AuditEvent, error) {
		inv.UsedBy = "x@example.com"
		return nil, failed
	})
	if !errors.Is(err, failed) {
		t.Errorf("UpdateInvite whose function fails: got %v, want its error", err)
	}
	if got, _ := f.s.Invite(f.ctx, b.ID); got.UsedBy != "" {
		t.Errorf("a failed UpdateInvite wrote used_by %q", got.UsedBy)
	}
}

func inviteIDs(is []*keygate.Invite) []string {
	out := make([]string, len(is))
	for i, v := range is {
		out[i] = v.ID
	}
	return out
}

func testCountKeys(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	other := f.account(t, keygate.TierFree)
	f.key(t, other.ID)
	n, err := f.s.CountKeys(f.ctx, a.ID)
	mustOK(t, err, "CountKeys")
	if n != 0 {
		t.Fatalf("CountKeys of an account without keys: got %d", n)
	}
	k1, k2 := f.key(t, a.ID), f.key(t, a.ID)
	f.key(t, a.ID)
	// A revoked key, and a rotated key in its grace period, do not count.
	r1 := k1.Clone()
	r1.RevokedAt, r1.UpdatedAt = ptr(f.now), f.now.Add(time.Minute)
	mustOK(t, f.replaceKey(r1), "UpdateKey")
	r2 := k2.Clone()
	r2.RevokedAt, r2.UpdatedAt = ptr(f.now.Add(time.Hour)), f.now.Add(time.Minute)
	mustOK(t, f.replaceKey(r2), "UpdateKey")
	n, err = f.s.CountKeys(f.ctx, a.ID)
	mustOK(t, err, "CountKeys")
	if n != 1 {
		t.Fatalf("CountKeys with one live, one revoked and one rotated key: got %d, want 1", n)
	}
}
