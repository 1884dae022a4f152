package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
)

// ChangedSince returns every key, account and tier updated at or after
// since, and every root key created or revoked since then, read in one
// snapshot.
func (s *Store) ChangedSince(ctx context.Context, since time.Time) ([]keygate.Change, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	tx, err := s.pool.BeginTx(bctx, pgxRepeatableReadOnly)
	if err != nil {
		return nil, s.fail(ctx, "changed since", err)
	}
	defer tx.Rollback(bctx)
	at := ms(since)
	var out []keygate.Change
	rows, err := tx.Query(bctx, `SELECT `+keyColumns+` FROM keys WHERE updated_at >= $1`, at)
	if err != nil {
		return nil, s.fail(ctx, "changed keys", err)
	}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			rows.Close()
			return nil, s.fail(ctx, "changed keys", err)
		}
		out = append(out, keygate.Change{Kind: keygate.ChangeKey, ID: k.ID, Key: k})
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "changed keys", err)
	}
	for _, q := range []struct {
		kind  keygate.ChangeKind
		query string
	}{
		{keygate.ChangeAccount, `SELECT id FROM accounts WHERE updated_at >= $1`},
		{keygate.ChangeTier, `SELECT name FROM tiers WHERE updated_at >= $1`},
		{keygate.ChangeRootKey, `SELECT id FROM root_keys WHERE created_at >= $1 OR revoked_at >= $1`},
	} {
		rows, err := tx.Query(bctx, q.query, at)
		if err != nil {
			return nil, s.fail(ctx, "changed records", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, s.fail(ctx, "changed records", err)
			}
			out = append(out, keygate.Change{Kind: q.kind, ID: id})
		}
		if err := rows.Err(); err != nil {
			return nil, s.fail(ctx, "changed records", err)
		}
	}
	return out, nil
}

var pgxRepeatableReadOnly = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
