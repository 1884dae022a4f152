package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

const tierColumns = `name, quota_per_day, rate_per_second, burst, created_at, updated_at, quota_scope`

// CreateTier stores t, setting zero CreatedAt and UpdatedAt to Now.
// ECONFLICT if a tier of that name exists.
func (s *Store) CreateTier(ctx context.Context, t *keygate.Tier, ev ...*keygate.AuditEvent) error {
	sqlstore.PrepareTier(t, s.now())
	return s.write(ctx, "create tier", false, ev, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		_, err := tx.Exec(ctx, `INSERT INTO tiers (`+tierColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			t.Name, t.QuotaPerDay, t.RatePerSecond, t.Burst, ms(t.CreatedAt), ms(t.UpdatedAt), sqlstore.QuotaScope(t))
		if constraint(err, "tiers_pkey") {
			return nil, sqlstore.TierTaken(err, t.Name)
		}
		if err != nil {
			return nil, err
		}
		return []keygate.Change{{Kind: keygate.ChangeTier, ID: t.Name}}, nil
	})
}

// UpdateTier reads the named tier with SELECT … FOR UPDATE, which holds it
// against every other writer until the transaction commits, calls fn with
// a copy, and stores the limits and UpdatedAt fn set, with the audit
// events fn returns. ENOTFOUND if there is no such tier; fn's error as it
// is, except keygate.ErrUnchanged, after which nothing is written.
func (s *Store) UpdateTier(ctx context.Context, name string, fn func(*keygate.Tier) ([]*keygate.AuditEvent, error)) (*keygate.Tier, error) {
	var out *keygate.Tier
	err := s.write(ctx, "update tier", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		cur, err := scanTier(tx.QueryRow(ctx, `SELECT `+tierColumns+` FROM tiers WHERE name = $1 FOR UPDATE`, name))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, sqlstore.TierNotFound(name)
		}
		if err != nil {
			return nil, err
		}
		t := *cur
		evs, err := fn(&t)
		if errors.Is(err, keygate.ErrUnchanged) {
			out = cur
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		t.Name, t.CreatedAt, t.UpdatedAt = cur.Name, cur.CreatedAt, ms(t.UpdatedAt)
		if _, err := tx.Exec(ctx, `UPDATE tiers SET quota_per_day = $1, rate_per_second = $2, burst = $3, updated_at = $4, quota_scope = $5
			WHERE name = $6`, t.QuotaPerDay, t.RatePerSecond, t.Burst, t.UpdatedAt, sqlstore.QuotaScope(&t), t.Name); err != nil {
			return nil, err
		}
		if err := s.insertEvents(ctx, tx, evs); err != nil {
			return nil, err
		}
		out = &t
		return []keygate.Change{{Kind: keygate.ChangeTier, ID: t.Name}}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteTier deletes the named tier. ENOTFOUND if there is none; ECONFLICT
// while an account or a key is on it. The tier's row is locked first, so a
// key or account put on it meanwhile either commits before the count or
// waits for the delete and then fails.
func (s *Store) DeleteTier(ctx context.Context, name string, ev ...*keygate.AuditEvent) error {
	return s.write(ctx, "delete tier", false, ev, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM tiers WHERE name = $1 FOR UPDATE`, name).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, sqlstore.TierNotFound(name)
		}
		if err != nil {
			return nil, err
		}
		var accounts, keys int64
		if err := tx.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM accounts WHERE tier = $1),
			(SELECT count(*) FROM keys WHERE tier = $1)`, name).Scan(&accounts, &keys); err != nil {
			return nil, err
		}
		if accounts > 0 || keys > 0 {
			return nil, sqlstore.TierInUse(name, accounts, keys)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tiers WHERE name = $1`, name); err != nil {
			return nil, err
		}
		return []keygate.Change{{Kind: keygate.ChangeTier, ID: name}}, nil
	})
}

// Tier returns the named tier; ENOTFOUND if there is none.
func (s *Store) Tier(ctx context.Context, name string) (*keygate.Tier, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	t, err := scanTier(s.pool.QueryRow(bctx, `SELECT `+tierColumns+` FROM tiers WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sqlstore.TierNotFound(name)
	}
	if err != nil {
		return nil, s.fail(ctx, "get tier", err)
	}
	return t, nil
}

// Tiers returns every tier, by name.
func (s *Store) Tiers(ctx context.Context) ([]*keygate.Tier, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	out, err := queryAll(bctx, s.pool, scanTier, `SELECT `+tierColumns+` FROM tiers ORDER BY name`)
	if err != nil {
		return nil, s.fail(ctx, "list tiers", err)
	}
	return out, nil
}

func scanTier(row pgx.Row) (*keygate.Tier, error) {
	var t keygate.Tier
	if err := row.Scan(&t.Name, &t.QuotaPerDay, &t.RatePerSecond, &t.Burst, &t.CreatedAt, &t.UpdatedAt, &t.QuotaScope); err != nil {
		return nil, err
	}
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return &t, nil
}
