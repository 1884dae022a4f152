package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

const tierColumns = `name, quota_per_day, rate_per_second, burst, created_at, updated_at, quota_scope`

// CreateTier stores t, setting zero CreatedAt and UpdatedAt to Now.
// ECONFLICT if a tier of that name exists.
func (s *Store) CreateTier(ctx context.Context, t *keygate.Tier, ev ...*keygate.AuditEvent) error {
	sqlstore.PrepareTier(t, s.now())
	return s.write(ctx, "create tier", ev, func(tx *sql.Tx) ([]keygate.Change, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO tiers (`+tierColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.Name, t.QuotaPerDay, t.RatePerSecond, t.Burst, millis(t.CreatedAt), millis(t.UpdatedAt), sqlstore.QuotaScope(t))
		if uniqueViolation(err, "tiers.name") {
			return nil, sqlstore.TierTaken(err, t.Name)
		}
		if err != nil {
			return nil, err
		}
		return []keygate.Change{{Kind: keygate.ChangeTier, ID: t.Name}}, nil
	})
}

// UpdateTier reads the named tier and calls fn with a copy of it inside
// the write transaction, then stores the limits fn set, with the audit
// events fn returns.
// ENOTFOUND if there is no such tier; fn's error as it is, except
// keygate.ErrUnchanged, after which nothing is written.
func (s *Store) UpdateTier(ctx context.Context, name string, fn func(*keygate.Tier) ([]*keygate.AuditEvent, error)) (*keygate.Tier, error) {
	var out *keygate.Tier
	err := s.write(ctx, "update tier", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		cur, err := scanTier(tx.QueryRowContext(ctx, `SELECT `+tierColumns+` FROM tiers WHERE name = ?`, name))
		if errors.Is(err, sql.ErrNoRows) {
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
		t.Name, t.CreatedAt = cur.Name, cur.CreatedAt
		t.UpdatedAt = sqlstore.Stored(t.UpdatedAt)
		if _, err := tx.ExecContext(ctx, `UPDATE tiers SET quota_per_day = ?, rate_per_second = ?, burst = ?, updated_at = ?, quota_scope = ?
			WHERE name = ?`, t.QuotaPerDay, t.RatePerSecond, t.Burst, millis(t.UpdatedAt), sqlstore.QuotaScope(&t), t.Name); err != nil {
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
// while an account or a key is on it.
func (s *Store) DeleteTier(ctx context.Context, name string, ev ...*keygate.AuditEvent) error {
	return s.write(ctx, "delete tier", ev, func(tx *sql.Tx) ([]keygate.Change, error) {
		if err := tierExists(ctx, tx, name, sqlstore.TierNotFound); err != nil {
			return nil, err
		}
		var accounts, keys int64
		if err := tx.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM accounts WHERE tier = ?),
			(SELECT count(*) FROM keys WHERE tier = ?)`, name, name).Scan(&accounts, &keys); err != nil {
			return nil, err
		}
		if accounts > 0 || keys > 0 {
			return nil, sqlstore.TierInUse(name, accounts, keys)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM tiers WHERE name = ?`, name); err != nil {
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
	t, err := scanTier(s.rdb.QueryRowContext(ctx, `SELECT `+tierColumns+` FROM tiers WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sqlstore.TierNotFound(name)
	}
	if err != nil {
		return nil, s.fail("get tier", err)
	}
	return t, nil
}

// Tiers returns every tier, by name.
func (s *Store) Tiers(ctx context.Context) ([]*keygate.Tier, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, s, "list tiers", `SELECT `+tierColumns+` FROM tiers ORDER BY name`, nil, scanTier)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func scanTier(sc scanner) (*keygate.Tier, error) {
	var t keygate.Tier
	var created, updated int64
	if err := sc.Scan(&t.Name, &t.QuotaPerDay, &t.RatePerSecond, &t.Burst, &created, &updated, &t.QuotaScope); err != nil {
		return nil, err
	}
	t.CreatedAt = fromMillis(created)
	t.UpdatedAt = fromMillis(updated)
	return &t, nil
}

// tierExists returns missing(name) unless the tier exists.
func tierExists(ctx context.Context, tx *sql.Tx, name string, missing func(string) error) error {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM tiers WHERE name = ?`, name).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return missing(name)
	}
	return err
}
