package manage

import (
	"context"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
)

// MaxGrace is the longest grace period a rotation may give the old key.
const MaxGrace = 30 * 24 * time.Hour

// UpdateKey applies change to the stored key, validates the result and
// saves it with an audit event listing the changed fields. A revoked key is
// final and cannot be changed. Changing only Enabled is audited as
// key.enabled or key.disabled. The store runs the whole read-modify-write
// in one transaction, so concurrent changes on any instance never undo
// each other.
func (s *Service) UpdateKey(ctx context.Context, actor, id string, change func(*keygate.Key)) (*keygate.Key, error) {
	return s.Store.UpdateKey(ctx, id, func(k *keygate.Key) ([]*keygate.AuditEvent, error) {
		now := s.now()
		if k.Status(now) == keygate.StatusRevoked {
			return nil, keygate.Errorf(keygate.ECONFLICT, "Key %s is revoked; a revoked key is final and cannot be changed. Create a new key.", id)
		}
		old := k.Clone()
		change(k)
		// Fields a caller may not change through an update.
		k.ID, k.AccountID, k.Env, k.Start, k.Last4 = old.ID, old.AccountID, old.Env, old.Start, old.Last4
		k.Hash, k.HashAlg, k.CreatedAt, k.LastUsedAt = old.Hash, old.HashAlg, old.CreatedAt, old.LastUsedAt
		k.RevokedAt, k.RevokedBy, k.RevokedReason = old.RevokedAt, old.RevokedBy, old.RevokedReason
		k.ReplacedBy, k.Replaces, k.LineageID = old.ReplacedBy, old.Replaces, old.LineageID
		k.UpdatedAt = old.UpdatedAt
		if err := k.Validate(); err != nil {
			return nil, err
		}
		if k.ExpiresAt != nil && (old.ExpiresAt == nil || !k.ExpiresAt.Equal(*old.ExpiresAt)) {
			if !k.ExpiresAt.After(now) {
				return nil, keygate.Errorf(keygate.EINVALID, "expires_at must be in the future.")
			}
			t := k.ExpiresAt.UTC()
			k.ExpiresAt = &t
		}
		changed := changedFields(old, k)
		if len(changed) == 0 {
			return nil, keygate.ErrUnchanged
		}
		k.UpdatedAt = now
		action := keygate.ActionKeyUpdated
		if len(changed) == 1 && changed[0] == "enabled" {
			action = keygate.ActionKeyDisabled
			if k.Enabled {
				action = keygate.ActionKeyEnabled
			}
		}
		return []*keygate.AuditEvent{s.event(actor, action, keygate.TargetKey, k.ID,
			map[string]any{"start": k.Start, "changed": changed, "new": changedValues(k, changed)})}, nil
	})
}

// changedFields lists the JSON names of the fields that differ between a
// and b, sorted.
func changedFields(a, b any) []string {
	ma, mb := jsonFields(a), jsonFields(b)
	var out []string
	for name := range maps.Keys(mb) {
		if !reflect.DeepEqual(ma[name], mb[name]) {
			out = append(out, name)
		}
	}
	for name := range maps.Keys(ma) {
		if _, ok := mb[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func changedValues(v any, names []string) map[string]any {
	m := jsonFields(v)
	out := make(map[string]any, len(names))
	for _, n := range names {
		out[n] = m[n] // nil for a cleared field
	}
	return out
}

func jsonFields(v any) map[string]any {
	b, _ := json.Marshal(v) // domain records always marshal
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	delete(m, "updated_at")
	return m
}

// RotateKey issues a new key that takes over the old one's account, name,
// tier, overrides, scopes, restrictions, metadata, expiry and lineage (so
// today's quota counts carry over). The old key
// keeps working for grace (0 = revoked at once), then answers REVOKED;
// each records the other (replaced_by, replaces). It returns the new key
// and its plaintext.
func (s *Service) RotateKey(ctx context.Context, actor, id string, grace time.Duration) (*keygate.Key, string, error) {
	if grace < 0 || grace > MaxGrace {
		return nil, "", keygate.Errorf(keygate.EINVALID, "grace must be between 0s and %s, as a Go duration such as \"24h\".", MaxGrace)
	}
	var plaintext string
	_, nk, err := s.Store.RotateKey(ctx, id, func(old *keygate.Key) (*keygate.Key, []*keygate.AuditEvent, error) {
		now := s.now()
		switch {
		case old.ReplacedBy != "":
			return nil, nil, keygate.Errorf(keygate.ECONFLICT, "Key %s was already rotated; rotate its replacement %s instead.", id, old.ReplacedBy)
		case old.Status(now) == keygate.StatusRevoked:
			return nil, nil, keygate.Errorf(keygate.ECONFLICT, "Key %s is revoked and cannot be rotated. Create a new key.", id)
		case old.Status(now) == keygate.StatusExpired:
			return nil, nil, keygate.Errorf(keygate.ECONFLICT, "Key %s has expired; its replacement would be expired too. Move its expires_at forward first, or create a new key.", id)
		}
		nk := old.Clone()
		nk.Replaces = old.ID
		// The replacement continues the old key's quota counters.
		nk.LineageID = old.Lineage()
		var err error
		plaintext, err = apikey.Generate(s.prefix(), nk.Env)
		if err != nil {
			return nil, nil, err
		}
		nk.ID = keygate.NewID(keygate.PrefixKey, now)
		nk.Start, nk.Last4 = apikey.Start(plaintext), apikey.Last4(plaintext)
		nk.Hash, nk.HashAlg = s.Hasher.Hex(plaintext), keygate.HashKeygate
		nk.RevokedAt, nk.RevokedBy, nk.RevokedReason, nk.ReplacedBy = nil, "", "", ""
		nk.CreatedAt, nk.UpdatedAt, nk.LastUsedAt = now, now, nil

		until := now.Add(grace)
		old.RevokedAt, old.RevokedBy, old.RevokedReason = &until, actor, "rotated"
		old.ReplacedBy = nk.ID
		old.UpdatedAt = now
		return nk, []*keygate.AuditEvent{
			s.event(actor, keygate.ActionKeyRotated, keygate.TargetKey, old.ID, map[string]any{
				"start": old.Start, "replaced_by": nk.ID, "grace": grace.String(), "works_until": until.Format(time.RFC3339),
			}),
			s.keyCreatedEvent(actor, nk),
		}, nil
	})
	if err != nil {
		return nil, "", err
	}
	return nk, plaintext, nil
}

// CreateTier validates and stores a new tier.
func (s *Service) CreateTier(ctx context.Context, actor string, t *keygate.Tier) error {
	if err := t.Validate(); err != nil {
		return err
	}
	now := s.now()
	t.CreatedAt, t.UpdatedAt = now, now
	return s.Store.CreateTier(ctx, t, s.event(actor, keygate.ActionTierCreated, keygate.TargetTier, t.Name, tierDetails(t)))
}

// UpdateTier applies change to a tier's limits; the change applies to
// every key on the tier at once. The store runs the read-modify-write in
// one transaction.
func (s *Service) UpdateTier(ctx context.Context, actor, name string, change func(*keygate.Tier)) (*keygate.Tier, error) {
	return s.Store.UpdateTier(ctx, name, func(t *keygate.Tier) ([]*keygate.AuditEvent, error) {
		old := *t
		change(t)
		t.Name, t.CreatedAt, t.UpdatedAt = old.Name, old.CreatedAt, old.UpdatedAt
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if *t == old {
			return nil, keygate.ErrUnchanged
		}
		t.UpdatedAt = s.now()
		return []*keygate.AuditEvent{s.event(actor, keygate.ActionTierUpdated, keygate.TargetTier, t.Name, tierDetails(t))}, nil
	})
}

// DeleteTier deletes a tier that no account or key uses.
func (s *Service) DeleteTier(ctx context.Context, actor, name string) error {
	if name == keygate.TierFree {
		return keygate.Errorf(keygate.ECONFLICT, "The free tier is the fallback for every key and cannot be deleted; change its limits instead.")
	}
	return s.Store.DeleteTier(ctx, name, s.event(actor, keygate.ActionTierDeleted, keygate.TargetTier, name, nil))
}

func tierDetails(t *keygate.Tier) map[string]any {
	return map[string]any{"quota_per_day": t.QuotaPerDay, "rate_per_second": t.RatePerSecond, "burst": t.Burst, "quota_scope": t.QuotaScope}
}

// UpdateAccount applies change to an account's name, email or tier. A tier
// change applies at once to every key of the account that has no tier of
// its own. The store runs the read-modify-write in one transaction.
func (s *Service) UpdateAccount(ctx context.Context, actor, id string, change func(*keygate.Account)) (*keygate.Account, error) {
	return s.Store.UpdateAccount(ctx, id, func(a *keygate.Account) ([]*keygate.AuditEvent, error) {
		old := *a
		change(a)
		a.ID, a.CreatedAt, a.PasswordHash, a.UpdatedAt = old.ID, old.CreatedAt, old.PasswordHash, old.UpdatedAt
		a.DisabledAt, a.Operator = old.DisabledAt, old.Operator // SetAccountDisabled, SetOperator
		if err := a.Validate(); err != nil {
			return nil, err
		}
		changed := changedFields(&old, a)
		if len(changed) == 0 {
			return nil, keygate.ErrUnchanged
		}
		a.UpdatedAt = s.now()
		return []*keygate.AuditEvent{s.event(actor, keygate.ActionAccountUpdated, keygate.TargetAccount, a.ID,
			map[string]any{"changed": changed, "new": changedValues(a, changed)})}, nil
	})
}

// RevokeRootKey revokes a root key at once. The last live root key with
// admin:write cannot be revoked (ECONFLICT): nobody could administer
// keygate after. The store counts the others inside the revoking
// transaction, so two concurrent revocations cannot remove the last two.
// Revoking a revoked root key changes nothing and returns it as it is.
func (s *Service) RevokeRootKey(ctx context.Context, actor, id string) (*keygate.RootKey, error) {
	return s.Store.RevokeRootKey(ctx, id, func(r *keygate.RootKey, otherAdminWriters int) ([]*keygate.AuditEvent, error) {
		if r.RevokedAt != nil {
			return nil, keygate.ErrUnchanged
		}
		if r.Can(keygate.PermAdminWrite) && otherAdminWriters == 0 {
			return nil, keygate.Errorf(keygate.ECONFLICT, "Root key %s is the last one with admin:write; create another before revoking it.", id)
		}
		now := s.now()
		r.RevokedAt = &now
		return []*keygate.AuditEvent{s.event(actor, keygate.ActionRootKeyRevoked, keygate.TargetRootKey, id, map[string]string{"start": r.Start})}, nil
	})
}
