package manage

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// Registration modes (--registration): who may create an account with
// POST /v1/register or the portal's sign-up page.
const (
	RegistrationOpen   = "open"   // anyone
	RegistrationClosed = "closed" // nobody: the operator creates accounts
	RegistrationInvite = "invite" // whoever holds an invitation code
)

// ValidRegistration reports whether mode is a registration mode.
func ValidRegistration(mode string) bool {
	return mode == RegistrationOpen || mode == RegistrationClosed || mode == RegistrationInvite
}

// inviteEncoding writes invitation codes in lower-case base32: no
// characters that need quoting, and easy to read out.
var inviteEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// CreateInvite issues a one-time invitation code valid for ttl (0 means
// keygate.DefaultInviteTTL) and returns the stored invitation and the
// code: the only time it exists outside the caller, since only its hash
// is stored.
func (s *Service) CreateInvite(ctx context.Context, actor, note string, ttl time.Duration) (*keygate.Invite, string, error) {
	if ttl == 0 {
		ttl = keygate.DefaultInviteTTL
	}
	if ttl < time.Minute || ttl > keygate.MaxInviteTTL {
		return nil, "", keygate.Errorf(keygate.EINVALID, "expires_in must be between 1m and %s, as a Go duration such as \"72h\".", keygate.MaxInviteTTL)
	}
	note = strings.TrimSpace(note)
	if len(note) > keygate.MaxInviteNoteLen {
		return nil, "", keygate.Errorf(keygate.EINVALID, "note must be at most %d characters.", keygate.MaxInviteNoteLen)
	}
	if err := keygate.CheckText("note", note); err != nil {
		return nil, "", err
	}
	var raw [20]byte // 160 bits
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, "", &keygate.Error{Code: keygate.EINTERNAL, Message: "The invitation could not be generated; try again.", Err: err}
	}
	code := keygate.InviteCodePrefix + inviteEncoding.EncodeToString(raw[:])
	now := s.now()
	inv := &keygate.Invite{
		ID:        keygate.NewID(keygate.PrefixInvite, now),
		Note:      note,
		Start:     code[:len(keygate.InviteCodePrefix)+4],
		Hash:      s.Hasher.Hex(code),
		CreatedBy: actor,
		CreatedAt: now,
		ExpiresAt: now.Add(ttl),
	}
	ev := s.event(actor, keygate.ActionInviteCreated, keygate.TargetInvite, inv.ID,
		map[string]string{"start": inv.Start, "note": note, "expires_at": inv.ExpiresAt.Format(time.RFC3339)})
	if err := s.Store.CreateInvite(ctx, inv, ev); err != nil {
		return nil, "", err
	}
	return inv, code, nil
}

// RevokeInvite makes an unused invitation unusable. Revoking a revoked
// invitation changes nothing; a used one cannot be revoked (ECONFLICT).
func (s *Service) RevokeInvite(ctx context.Context, actor, id string) (*keygate.Invite, error) {
	return s.Store.UpdateInvite(ctx, id, func(inv *keygate.Invite) ([]*keygate.AuditEvent, error) {
		switch {
		case inv.UsedAt != nil:
			return nil, keygate.Errorf(keygate.ECONFLICT, "Invitation %s was already used by %s; revoke that account's keys instead.", id, inv.UsedBy)
		case inv.RevokedAt != nil:
			return nil, keygate.ErrUnchanged
		}
		now := s.now()
		inv.RevokedAt = &now
		return []*keygate.AuditEvent{s.event(actor, keygate.ActionInviteRevoked, keygate.TargetInvite, id, map[string]string{"start": inv.Start})}, nil
	})
}

// errBadInvite is the one answer for every code that cannot be used:
// unknown, used, revoked or expired alike.
func errBadInvite() error {
	return keygate.Errorf(keygate.EFORBIDDEN, "The invitation code is not valid: it is unknown, already used, revoked or expired. Ask the API's operator for a new one.")
}

// Redeem uses up the invitation code for email, the address about to
// register: a code is redeemed once, in a conditional write, so that two
// sign-ups racing with one code cannot both pass. It returns EFORBIDDEN
// for any code that cannot be used.
func (s *Service) Redeem(ctx context.Context, code, email string) error {
	_, err := s.redeem(ctx, code, email)
	return err
}

func (s *Service) redeem(ctx context.Context, code, email string) (*keygate.Invite, error) {
	code = strings.TrimSpace(code)
	if !strings.HasPrefix(code, keygate.InviteCodePrefix) || len(code) > 100 {
		return nil, errBadInvite()
	}
	inv, err := s.Store.InviteByHash(ctx, s.Hasher.Hex(code))
	if keygate.ErrorCode(err) == keygate.ENOTFOUND {
		return nil, errBadInvite()
	} else if err != nil {
		return nil, err
	}
	return s.Store.UpdateInvite(ctx, inv.ID, func(inv *keygate.Invite) ([]*keygate.AuditEvent, error) {
		now := s.now()
		if inv.Status(now) != keygate.InviteActive {
			return nil, errBadInvite()
		}
		inv.UsedAt, inv.UsedBy = &now, email
		return []*keygate.AuditEvent{s.event(ActorRegistration, keygate.ActionInviteRedeemed, keygate.TargetInvite, inv.ID,
			map[string]string{"start": inv.Start, "email": email})}, nil
	})
}

// release gives back an invitation redeemed for a registration that then
// failed to be stored, so that the person can try again with the same
// code. It changes nothing if the invitation was not redeemed for email
// at usedAt.
func (s *Service) release(ctx context.Context, used *keygate.Invite) error {
	_, err := s.Store.UpdateInvite(ctx, used.ID, func(inv *keygate.Invite) ([]*keygate.AuditEvent, error) {
		if inv.UsedAt == nil || used.UsedAt == nil || !inv.UsedAt.Equal(*used.UsedAt) || inv.UsedBy != used.UsedBy {
			return nil, keygate.ErrUnchanged
		}
		inv.UsedAt, inv.UsedBy = nil, ""
		return []*keygate.AuditEvent{s.event(ActorRegistration, keygate.ActionInviteReleased, keygate.TargetInvite, inv.ID,
			map[string]string{"start": inv.Start, "email": used.UsedBy, "reason": "the registration could not be stored"})}, nil
	})
	return err
}

// RegisterAnonymously is Register for callers nobody has authenticated
// (POST /v1/register). With invite set, the invitation is redeemed first
// (Redeem), once the account's fields are known to be valid.
//
// An email address that already has an account gets an answer of the same
// shape as a new one: an account and a key, made as for a new account but
// never stored, so that the key does not work. The caller cannot tell from
// the answer which addresses have accounts; the existing account gets
// nothing new. The attempt is audited against the existing account
// (account.registration_repeated) in a durable write, one commit like the
// one that stores a new account, so that both answers take about as long
// (BenchmarkRegisterNewVsTakenEmail; docs/SECURITY.md has the figures).
func (s *Service) RegisterAnonymously(ctx context.Context, a *keygate.Account, invite string) (*keygate.Key, string, error) {
	k, plaintext, evs, err := s.prepareRegistration(a)
	if err != nil {
		return nil, "", err
	}
	var used *keygate.Invite
	if invite != "" {
		if used, err = s.redeem(ctx, invite, a.Email); err != nil {
			return nil, "", err
		}
	}
	err = s.Store.CreateAccount(ctx, a, k, evs...)
	if keygate.ErrorCode(err) != keygate.ECONFLICT {
		if err != nil {
			if used != nil {
				err = errors.Join(err, s.release(ctx, used))
			}
			return nil, "", err
		}
		return k, plaintext, nil
	}
	existing, ferr := s.Store.AccountByEmail(ctx, a.Email)
	if ferr != nil {
		if keygate.ErrorCode(ferr) == keygate.ENOTFOUND {
			return nil, "", err // the conflict was not the email's
		}
		return nil, "", ferr
	}
	_, uerr := s.Store.UpdateAccount(ctx, existing.ID, func(*keygate.Account) ([]*keygate.AuditEvent, error) {
		return []*keygate.AuditEvent{s.event(ActorRegistration, keygate.ActionRegistrationRepeated, keygate.TargetAccount, existing.ID,
			map[string]string{"email": a.Email, "answered_with_account": a.ID, "answered_with_key": k.ID})}, nil
	})
	if uerr != nil {
		return nil, "", uerr
	}
	return k, plaintext, nil
}
