// Package manage holds keygate's write operations — creating accounts and
// keys, revoking, bootstrapping root keys — with their validation and audit
// events. The API and the portal call it; it writes through a
// keygate.Store, whose change notifications keep the engine's index current.
package manage

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
)

// Actors that are not root keys.
const (
	ActorSystem       = "system"
	ActorRegistration = "registration"
	// ActorRecovery creates root keys with `keygate root-keys recover`,
	// which needs direct access to the store.
	ActorRecovery = "recovery"
)

// ActorRootKey returns the audit actor for a root key.
func ActorRootKey(id string) string { return "root_key:" + id }

// Service performs audited writes. Its zero value is not usable: set Store
// and Hasher.
type Service struct {
	Store  keygate.Store
	Hasher *apikey.Hasher
	// KeyPrefix is the prefix of issued API keys; empty means apikey.DefaultPrefix.
	KeyPrefix string
	// DefaultTier is the tier of accounts created without one; empty means free.
	DefaultTier string
	// DefaultScopes are given to the first key of a self-registered
	// account (--default-scopes); empty gives none.
	DefaultScopes []string
	// MaxKeysPerAccount is the most keys an account may hold that are not
	// revoked (--max-keys-per-account); 0 means no limit. It is checked
	// before each new key is stored, so keys created at the same moment
	// may pass it by the few that race.
	MaxKeysPerAccount int
	// AllowPrivateWebhooks accepts webhook URLs whose host is a loopback
	// or private address (--webhooks-allow-private).
	AllowPrivateWebhooks bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// webhookMu serializes the read-modify-write of webhook endpoints in
	// this process.
	webhookMu sync.Mutex
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) prefix() string {
	if s.KeyPrefix != "" {
		return s.KeyPrefix
	}
	return apikey.DefaultPrefix
}

func (s *Service) defaultTier() string {
	if s.DefaultTier != "" {
		return s.DefaultTier
	}
	return keygate.TierFree
}

func (s *Service) event(actor, action, targetType, targetID string, details any) *keygate.AuditEvent {
	now := s.now()
	ev := &keygate.AuditEvent{
		ID:         keygate.NewID(keygate.PrefixAudit, now),
		Time:       now,
		Actor:      actor,
		Action:     action,
		TargetType: targetType,
		TargetID:   targetID,
	}
	if details != nil {
		// Details are built from plain maps of strings; marshalling cannot fail.
		ev.Details, _ = json.Marshal(details)
	}
	return ev
}

// CreateAccount validates a, fills its ID, tier and times, and stores it.
func (s *Service) CreateAccount(ctx context.Context, actor string, a *keygate.Account) error {
	s.prepareAccount(a)
	if err := a.Validate(); err != nil {
		return err
	}
	ev := s.event(actor, keygate.ActionAccountCreated, keygate.TargetAccount, a.ID,
		map[string]string{"name": a.Name, "email": a.Email, "tier": a.Tier})
	return s.Store.CreateAccount(ctx, a, nil, ev)
}

func (s *Service) prepareAccount(a *keygate.Account) {
	now := s.now()
	a.ID = keygate.NewID(keygate.PrefixAccount, now)
	a.CreatedAt, a.UpdatedAt = now, now
	if a.Tier == "" {
		a.Tier = s.defaultTier()
	}
}

// Register creates an account on the default tier together with its first
// live key, in one transaction, and returns the key and its plaintext.
// ECONFLICT if the email address has an account already.
func (s *Service) Register(ctx context.Context, a *keygate.Account) (*keygate.Key, string, error) {
	k, plaintext, evs, err := s.prepareRegistration(a)
	if err != nil {
		return nil, "", err
	}
	if err := s.Store.CreateAccount(ctx, a, k, evs...); err != nil {
		return nil, "", err
	}
	return k, plaintext, nil
}

// prepareRegistration validates a self-registered account and makes its
// first key and the audit events of both, storing nothing.
func (s *Service) prepareRegistration(a *keygate.Account) (*keygate.Key, string, []*keygate.AuditEvent, error) {
	s.prepareAccount(a)
	a.Tier = s.defaultTier() // self-registration never picks its own tier
	if err := a.Validate(); err != nil {
		return nil, "", nil, err
	}
	k := &keygate.Key{AccountID: a.ID, Name: "default", Env: keygate.EnvLive, Scopes: append([]string(nil), s.DefaultScopes...)}
	plaintext, err := s.prepareKey(k)
	if err != nil {
		return nil, "", nil, err
	}
	evs := []*keygate.AuditEvent{
		s.event(ActorRegistration, keygate.ActionAccountRegister, keygate.TargetAccount, a.ID,
			map[string]string{"name": a.Name, "email": a.Email, "tier": a.Tier}),
		s.keyCreatedEvent(ActorRegistration, k),
	}
	return k, plaintext, evs, nil
}

// CreateKey issues a key from the client-settable fields of k (account,
// name, env, tier, overrides, scopes, CIDRs, metadata, expiry), stores it,
// and returns the plaintext: the only time it exists outside the caller.
func (s *Service) CreateKey(ctx context.Context, actor string, k *keygate.Key) (string, error) {
	plaintext, err := s.prepareKey(k)
	if err != nil {
		return "", err
	}
	if err := s.checkKeyCount(ctx, k.AccountID); err != nil {
		return "", err
	}
	if err := s.Store.CreateKey(ctx, k, s.keyCreatedEvent(actor, k)); err != nil {
		return "", err
	}
	return plaintext, nil
}

// checkKeyCount refuses a new key for an account that already holds
// MaxKeysPerAccount keys that are not revoked.
func (s *Service) checkKeyCount(ctx context.Context, accountID string) error {
	if s.MaxKeysPerAccount <= 0 {
		return nil
	}
	n, err := s.Store.CountKeys(ctx, accountID)
	if err != nil {
		return err
	}
	if n >= s.MaxKeysPerAccount {
		return keygate.Errorf(keygate.ECONFLICT, "Account %s already holds %d keys that are not revoked, the most this server allows (--max-keys-per-account); revoke one it no longer uses first.", accountID, n)
	}
	return nil
}

func (s *Service) prepareKey(k *keygate.Key) (string, error) {
	now := s.now()
	if k.Env == "" {
		k.Env = keygate.EnvLive
	}
	if k.AccountID == "" {
		return "", keygate.Errorf(keygate.EINVALID, "account_id is required.")
	}
	if err := k.Validate(); err != nil {
		return "", err
	}
	if k.ExpiresAt != nil {
		if !k.ExpiresAt.After(now) {
			return "", keygate.Errorf(keygate.EINVALID, "expires_at must be in the future.")
		}
		t := k.ExpiresAt.UTC()
		k.ExpiresAt = &t
	}
	plaintext, err := apikey.Generate(s.prefix(), k.Env)
	if err != nil {
		return "", err
	}
	k.ID = keygate.NewID(keygate.PrefixKey, now)
	k.Start = apikey.Start(plaintext)
	k.Last4 = apikey.Last4(plaintext)
	k.Hash = s.Hasher.Hex(plaintext)
	k.HashAlg = keygate.HashKeygate
	k.Enabled = true
	k.RevokedAt, k.RevokedBy, k.RevokedReason = nil, "", ""
	k.ReplacedBy, k.Replaces, k.LineageID, k.LastUsedAt = "", "", "", nil
	k.CreatedAt, k.UpdatedAt = now, now
	return plaintext, nil
}

func (s *Service) keyCreatedEvent(actor string, k *keygate.Key) *keygate.AuditEvent {
	return s.event(actor, keygate.ActionKeyCreated, keygate.TargetKey, k.ID, map[string]any{
		"account_id": k.AccountID, "name": k.Name, "env": k.Env, "start": k.Start, "tier": k.Tier, "scopes": k.Scopes,
	})
}

// RevokeKey revokes a key at once, for good. Revoking a key that is
// already revoked changes nothing and returns it as it is; a rotated key
// still in its grace period is cut off now. The store makes the change
// conditional: a concurrent update of the key, on any instance, cannot
// undo the revocation.
func (s *Service) RevokeKey(ctx context.Context, actor, id, reason string) (*keygate.Key, error) {
	if len(reason) > 500 {
		return nil, keygate.Errorf(keygate.EINVALID, "reason must be at most 500 characters.")
	}
	if err := keygate.CheckText("reason", reason); err != nil {
		return nil, err
	}
	return s.Store.UpdateKey(ctx, id, func(k *keygate.Key) ([]*keygate.AuditEvent, error) {
		now := s.now()
		if k.RevokedAt != nil && !now.Before(*k.RevokedAt) {
			return nil, keygate.ErrUnchanged
		}
		k.RevokedAt = &now
		k.RevokedReason = reason
		k.RevokedBy = actor
		k.UpdatedAt = now
		return []*keygate.AuditEvent{s.event(actor, keygate.ActionKeyRevoked, keygate.TargetKey, k.ID,
			map[string]string{"start": k.Start, "reason": reason})}, nil
	})
}

// CreateRootKey issues a root key with the given permissions and returns it
// with its plaintext.
func (s *Service) CreateRootKey(ctx context.Context, actor, name string, perms []string) (*keygate.RootKey, string, error) {
	return s.createRootKey(ctx, actor, name, perms, nil)
}

func (s *Service) createRootKey(ctx context.Context, actor, name string, perms []string, extra map[string]string) (*keygate.RootKey, string, error) {
	if err := keygate.ValidatePermissions(perms); err != nil {
		return nil, "", err
	}
	if len(name) > keygate.MaxKeyNameLen {
		return nil, "", keygate.Errorf(keygate.EINVALID, "name must be at most %d characters.", keygate.MaxKeyNameLen)
	}
	if err := keygate.CheckText("name", name); err != nil {
		return nil, "", err
	}
	plaintext, err := apikey.Generate(apikey.RootPrefix, keygate.EnvLive)
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	r := &keygate.RootKey{
		ID:          keygate.NewID(keygate.PrefixRootKey, now),
		Name:        name,
		Start:       apikey.Start(plaintext),
		Last4:       apikey.Last4(plaintext),
		Hash:        s.Hasher.Hex(plaintext),
		Permissions: perms,
		CreatedAt:   now,
	}
	details := map[string]any{"name": name, "start": r.Start, "permissions": perms}
	for k, v := range extra {
		details[k] = v
	}
	ev := s.event(actor, keygate.ActionRootKeyCreated, keygate.TargetRootKey, r.ID, details)
	if err := s.Store.CreateRootKey(ctx, r, ev); err != nil {
		return nil, "", err
	}
	return r, plaintext, nil
}

// NeedsBootstrap reports whether the store has no live root key, so that
// the first root key must be created.
func (s *Service) NeedsBootstrap(ctx context.Context) (bool, error) {
	roots, err := s.Store.RootKeys(ctx)
	if err != nil {
		return false, err
	}
	for _, r := range roots {
		if r.RevokedAt == nil {
			return false, nil
		}
	}
	return true, nil
}

// RecoverRootKey creates a root key with every permission for an operator
// who lost every root key, audited as created by ActorRecovery with who
// and where (the operating-system user and host). Only a caller with
// direct access to the store can call it: there is no API for it.
func (s *Service) RecoverRootKey(ctx context.Context, name string, by map[string]string) (*keygate.RootKey, string, error) {
	return s.createRootKey(ctx, ActorRecovery, name, keygate.AllPermissions, by)
}

// Bootstrap creates the first root key, with every permission.
func (s *Service) Bootstrap(ctx context.Context) (*keygate.RootKey, string, error) {
	return s.CreateRootKey(ctx, ActorSystem, "bootstrap", keygate.AllPermissions)
}
