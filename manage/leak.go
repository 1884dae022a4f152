package manage

import (
	"context"

	"github.com/keygate/keygate"
)

// ActorLeak returns the audit actor for a leak report from reporter, such
// as "leak:github".
func ActorLeak(reporter string) string { return "leak:" + reporter }

// Leak says where a scanner found a key.
type Leak struct {
	// Reporter names who reported it: "github", or the root key's actor
	// for other scanners.
	Reporter string
	// Type, URL and Source are the report's, as sent.
	Type, URL, Source string
}

func (l Leak) details(start string, alreadyRevoked bool) map[string]any {
	return map[string]any{
		"start": start, "reporter": l.Reporter, "type": l.Type,
		"url": l.URL, "source": l.Source, "already_revoked": alreadyRevoked,
	}
}

// maxLeakReason bounds the revocation reason built from a report's URL.
const maxLeakReason = 500

func leakReason(l Leak) string {
	r := "leaked: reported by " + l.Reporter
	if l.URL != "" {
		r += " at " + l.URL
	}
	if len(r) > maxLeakReason {
		r = r[:maxLeakReason]
	}
	return r
}

// RevokeLeakedKey revokes a key a scanner found in public, at once (a
// rotated key's grace period ends now), and records a key.leaked audit
// event with the report's URL and source, together with key.revoked when
// the key was still working. A key that was already revoked gets only the
// key.leaked event. It returns the key as stored after.
func (s *Service) RevokeLeakedKey(ctx context.Context, actor, id string, l Leak) (*keygate.Key, error) {
	return s.Store.UpdateKey(ctx, id, func(k *keygate.Key) ([]*keygate.AuditEvent, error) {
		now := s.now()
		already := k.RevokedAt != nil && !now.Before(*k.RevokedAt)
		evs := []*keygate.AuditEvent{s.event(actor, keygate.ActionKeyLeaked, keygate.TargetKey, k.ID, l.details(k.Start, already))}
		if !already {
			k.RevokedAt, k.RevokedReason, k.RevokedBy = &now, leakReason(l), actor
			evs = append(evs, s.event(actor, keygate.ActionKeyRevoked, keygate.TargetKey, k.ID,
				map[string]string{"start": k.Start, "reason": k.RevokedReason}))
		}
		k.UpdatedAt = now
		return evs, nil
	})
}

// RevokeLeakedRootKey revokes a root key a scanner found in public. Unlike
// RevokeRootKey it revokes the last admin:write root key too: a published
// admin credential must stop working, and `keygate root-keys recover`
// issues a new one to whoever can reach the store. A root key that was
// already revoked gets only the root_key.leaked event.
func (s *Service) RevokeLeakedRootKey(ctx context.Context, actor string, r *keygate.RootKey, l Leak) error {
	_, err := s.Store.RevokeRootKey(ctx, r.ID, func(r *keygate.RootKey, _ int) ([]*keygate.AuditEvent, error) {
		already := r.RevokedAt != nil
		evs := []*keygate.AuditEvent{s.event(actor, keygate.ActionRootKeyLeaked, keygate.TargetRootKey, r.ID, l.details(r.Start, already))}
		if !already {
			now := s.now()
			r.RevokedAt = &now
			evs = append(evs, s.event(actor, keygate.ActionRootKeyRevoked, keygate.TargetRootKey, r.ID,
				map[string]string{"start": r.Start, "reason": leakReason(l)}))
		}
		return evs, nil
	})
	return err
}
