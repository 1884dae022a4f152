package postgres

import (
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

// importColumns are the columns ImportKeys copies, in keyArgs order.
var importColumns = []string{"id", "account_id", "name", "env", "start", "last4", "hash", "hash_alg", "tier",
	"quota_per_day", "rate_per_second", "burst", "scopes", "ip_allow", "meta", "expires_at", "enabled",
	"revoked_at", "revoked_reason", "revoked_by", "replaced_by", "replaces", "created_at", "updated_at", "last_used_at", "lineage_id"}

// ImportKeys stores keys in one transaction, skipping any whose hash is
// already stored (or appears earlier in keys), and returns how many it
// inserted. It fills in IDs and times as CreateKey does. If any key names
// an account that does not exist (ENOTFOUND) or a tier that does not
// (EINVALID), nothing is stored.
//
// The keys travel by COPY into a temporary table, and one INSERT … SELECT
// … ON CONFLICT (hash) DO NOTHING moves them into keys: one round trip for
// the rows instead of one per key.
func (s *Store) ImportKeys(ctx context.Context, keys []*keygate.Key, ev ...*keygate.AuditEvent) (int, error) {
	now := s.now()
	for i, k := range keys {
		if err := sqlstore.PrepareKey(k, now); err != nil {
			return 0, sqlstore.ImportError(i, k, err)
		}
	}
	if len(keys) == 0 {
		return 0, s.read()
	}
	listening := s.listeners.Any()
	inserted := 0
	err := s.write(ctx, "import keys", true, ev, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		if err := importReferences(ctx, tx, keys); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE keygate_import (LIKE keys, ord integer NOT NULL) ON COMMIT DROP`); err != nil {
			return nil, err
		}
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(keys) {
				return nil, nil
			}
			args, err := keyArgs(keys[i])
			if err != nil {
				return nil, err
			}
			i++
			return append(args, i), nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"keygate_import"}, append(slices.Clone(importColumns), "ord"), src); err != nil {
			return nil, err
		}
		rows, err := tx.Query(ctx, `INSERT INTO keys (`+keyColumns+`) SELECT `+keyColumns+` FROM keygate_import ORDER BY ord
			ON CONFLICT (hash) DO NOTHING RETURNING id`)
		if err != nil {
			return nil, err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			var pgErr interface{ SQLState() string }
			if errors.As(err, &pgErr) && constraint(err, "keys_pkey") {
				return nil, &keygate.Error{Code: keygate.ECONFLICT, Err: err,
					Message: "A key of the import has the id of a key already stored."}
			}
			return nil, err
		}
		inserted = len(ids)
		if !listening {
			return nil, nil
		}
		got := make(map[string]bool, len(ids))
		for _, id := range ids {
			got[id] = true
		}
		changes := make([]keygate.Change, 0, len(ids))
		for _, k := range keys {
			if got[k.ID] {
				delete(got, k.ID) // a repeated ID was inserted once
				changes = append(changes, sqlstore.KeyChange(k))
			}
		}
		return changes, nil
	})
	if err != nil {
		return 0, err
	}
	return inserted, nil
}

// importReferences returns, for the first key of keys whose account does
// not exist, ENOTFOUND, and for the first whose tier does not, EINVALID.
func importReferences(ctx context.Context, tx pgx.Tx, keys []*keygate.Key) error {
	var accounts, tiers []string
	seenA, seenT := map[string]bool{}, map[string]bool{}
	for _, k := range keys {
		if !seenA[k.AccountID] {
			seenA[k.AccountID] = true
			accounts = append(accounts, k.AccountID)
		}
		if k.Tier != "" && !seenT[k.Tier] {
			seenT[k.Tier] = true
			tiers = append(tiers, k.Tier)
		}
	}
	missing := func(q string, names []string) (map[string]bool, error) {
		out := map[string]bool{}
		if len(names) == 0 {
			return out, nil
		}
		rows, err := tx.Query(ctx, q, names)
		if err != nil {
			return nil, err
		}
		l, err := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, n := range l {
			out[n] = true
		}
		return out, err
	}
	noAccount, err := missing(`SELECT u.id FROM unnest($1::text[]) AS u(id) WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = u.id)`, accounts)
	if err != nil {
		return err
	}
	noTier, err := missing(`SELECT u.name FROM unnest($1::text[]) AS u(name) WHERE NOT EXISTS (SELECT 1 FROM tiers t WHERE t.name = u.name)`, tiers)
	if err != nil {
		return err
	}
	for i, k := range keys {
		switch {
		case noAccount[k.AccountID]:
			return sqlstore.ImportError(i, k, sqlstore.KeyAccountMissing(nil, k.AccountID))
		case noTier[k.Tier]:
			return sqlstore.ImportError(i, k, sqlstore.UnknownTier(k.Tier))
		}
	}
	return nil
}
