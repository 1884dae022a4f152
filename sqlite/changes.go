package sqlite

import (
	"context"
	"time"

	"github.com/keygate/keygate"
)

// ChangedSince returns every key, account and tier updated at or after
// since, and every root key created or revoked since then.
func (s *Store) ChangedSince(ctx context.Context, since time.Time) ([]keygate.Change, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	at := millis(since)
	var out []keygate.Change
	err := queryEach(ctx, s, "changed keys", `SELECT `+keyColumns+` FROM keys WHERE updated_at >= ?`, []any{at}, scanKey,
		func(k *keygate.Key) error {
			out = append(out, keygate.Change{Kind: keygate.ChangeKey, ID: k.ID, Key: k})
			return nil
		})
	if err != nil {
		return nil, err
	}
	for _, q := range []struct {
		kind  keygate.ChangeKind
		query string
	}{
		{keygate.ChangeAccount, `SELECT id FROM accounts WHERE updated_at >= ?1`},
		{keygate.ChangeTier, `SELECT name FROM tiers WHERE updated_at >= ?1`},
		{keygate.ChangeRootKey, `SELECT id FROM root_keys WHERE created_at >= ?1 OR revoked_at >= ?1`},
	} {
		err := queryEach(ctx, s, "changed records", q.query, []any{at}, scanID, func(id string) error {
			out = append(out, keygate.Change{Kind: q.kind, ID: id})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func scanID(sc scanner) (string, error) {
	var id string
	err := sc.Scan(&id)
	return id, err
}
