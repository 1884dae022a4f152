package manage

import (
	"context"

	"github.com/keygate/keygate"
)

// ActorAccount returns the audit actor for an account acting on its own
// behalf in the portal.
func ActorAccount(id string) string { return "account:" + id }

// SetPassword stores a new password hash for the account (made by the
// caller: manage never sees a password) and audits the change without the
// hash.
func (s *Service) SetPassword(ctx context.Context, actor, id, hash string) error {
	if hash == "" {
		return keygate.Errorf(keygate.EINVALID, "A password hash is required.")
	}
	_, err := s.Store.UpdateAccount(ctx, id, func(a *keygate.Account) ([]*keygate.AuditEvent, error) {
		a.PasswordHash = hash
		a.UpdatedAt = s.now()
		return []*keygate.AuditEvent{s.event(actor, keygate.ActionAccountPassword, keygate.TargetAccount, a.ID, nil)}, nil
	})
	return err
}

// SetAccountDisabled disables or enables an account. A disabled account's
// keys answer DISABLED and it cannot sign in to the portal; its sessions
// are revoked. Setting the state it already has changes nothing.
func (s *Service) SetAccountDisabled(ctx context.Context, actor, id string, disabled bool) (*keygate.Account, error) {
	a, err := s.Store.UpdateAccount(ctx, id, func(a *keygate.Account) ([]*keygate.AuditEvent, error) {
		if (a.DisabledAt != nil) == disabled {
			return nil, keygate.ErrUnchanged
		}
		now := s.now()
		action := keygate.ActionAccountEnabled
		a.DisabledAt = nil
		if disabled {
			a.DisabledAt, action = &now, keygate.ActionAccountDisabled
		}
		a.UpdatedAt = now
		return []*keygate.AuditEvent{s.event(actor, action, keygate.TargetAccount, a.ID, map[string]string{"email": a.Email})}, nil
	})
	if err != nil || !disabled {
		return a, err
	}
	if _, err := s.Store.RevokeSessions(ctx, id, "", s.now()); err != nil {
		return a, err
	}
	return a, nil
}

// SetOperator grants or withdraws the account's use of the portal's admin
// pages.
func (s *Service) SetOperator(ctx context.Context, actor, id string, operator bool) (*keygate.Account, error) {
	return s.Store.UpdateAccount(ctx, id, func(a *keygate.Account) ([]*keygate.AuditEvent, error) {
		if a.Operator == operator {
			return nil, keygate.ErrUnchanged
		}
		a.Operator = operator
		a.UpdatedAt = s.now()
		return []*keygate.AuditEvent{s.event(actor, keygate.ActionAccountUpdated, keygate.TargetAccount, a.ID,
			map[string]any{"changed": []string{"operator"}, "new": map[string]bool{"operator": operator}})}, nil
	})
}
