package postgres

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

const keyColumns = `id, account_id, name, env, start, last4, hash, hash_alg, tier,
	quota_per_day, rate_per_second, burst, scopes, ip_allow, meta, expires_at, enabled,
	revoked_at, revoked_reason, revoked_by, replaced_by, replaces, created_at, updated_at, last_used_at, lineage_id`

const insertKeySQL = `INSERT INTO keys (` + keyColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)`

// updateKeySQL sets every mutable field; the ID, account, env, hash, start,
// last4, replaces and created_at of a key never change. last_used_at only
// moves forward (greatest ignores NULL), so that an update does not undo
// what RecordUsage wrote.
const updateKeySQL = `UPDATE keys SET name = $1, tier = $2, quota_per_day = $3, rate_per_second = $4, burst = $5,
	scopes = $6, ip_allow = $7, meta = $8, expires_at = $9, enabled = $10, revoked_at = $11, revoked_reason = $12,
	revoked_by = $13, replaced_by = $14, updated_at = $15, last_used_at = greatest(last_used_at, $16)
	WHERE id = $17 RETURNING ` + keyColumns

// CreateKey stores k, setting an empty k.ID to a new ID and zero CreatedAt
// and UpdatedAt to Now. ENOTFOUND if the account does not exist, EINVALID if
// the tier does not exist, ECONFLICT if the hash or the ID is already stored.
func (s *Store) CreateKey(ctx context.Context, k *keygate.Key, ev ...*keygate.AuditEvent) error {
	if err := sqlstore.PrepareKey(k, s.now()); err != nil {
		return err
	}
	return s.write(ctx, "create key", false, ev, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		if err := insertKey(ctx, tx, k); err != nil {
			return nil, err
		}
		return []keygate.Change{sqlstore.KeyChange(k)}, nil
	})
}

// UpdateKey reads the key with SELECT … FOR UPDATE, which holds it against
// every other writer until the transaction commits, calls fn with a copy,
// and stores every mutable field fn set, UpdatedAt included, with the
// audit events fn returns. The key's account, env, hash, start, last4,
// replaces and creation time never change. ENOTFOUND if the key does not
// exist, EINVALID if the tier does not exist; fn's error as it is, except
// keygate.ErrUnchanged, after which nothing is written and the key is
// returned as read.
func (s *Store) UpdateKey(ctx context.Context, id string, fn func(*keygate.Key) ([]*keygate.AuditEvent, error)) (*keygate.Key, error) {
	var out *keygate.Key
	err := s.write(ctx, "update key", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		var changes []keygate.Change
		var err error
		out, changes, err = sqlstore.UpdateKey(keyTx{ctx, tx, s}, id, fn)
		return changes, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RotateKey reads the key with SELECT … FOR UPDATE and calls fn with a copy,
// as UpdateKey does; fn changes the old key and returns its replacement.
// The old key is updated (as UpdateKey does) and the replacement created
// (as CreateKey does) in that transaction: either both are stored or
// neither.
func (s *Store) RotateKey(ctx context.Context, id string, fn func(*keygate.Key) (*keygate.Key, []*keygate.AuditEvent, error)) (*keygate.Key, *keygate.Key, error) {
	var old, replacement *keygate.Key
	err := s.write(ctx, "rotate key", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		var changes []keygate.Change
		var err error
		old, replacement, changes, err = sqlstore.RotateKey(keyTx{ctx, tx, s}, id, s.now, fn)
		return changes, err
	})
	if err != nil {
		return nil, nil, err
	}
	return old, replacement, nil
}

// keyTx is a write transaction as sqlstore.UpdateKey and RotateKey use it.
type keyTx struct {
	ctx context.Context
	tx  pgx.Tx
	s   *Store
}

func (t keyTx) LockKey(id string) (*keygate.Key, error)        { return lockKey(t.ctx, t.tx, id) }
func (t keyTx) UpdateKey(k *keygate.Key) (*keygate.Key, error) { return updateKey(t.ctx, t.tx, k) }
func (t keyTx) InsertKey(k *keygate.Key) error                 { return insertKey(t.ctx, t.tx, k) }
func (t keyTx) InsertEvents(evs []*keygate.AuditEvent) error {
	return t.s.insertEvents(t.ctx, t.tx, evs)
}

// lockKey reads the key with the given id inside tx and locks its row
// until tx ends; ENOTFOUND if there is none.
func lockKey(ctx context.Context, tx pgx.Tx, id string) (*keygate.Key, error) {
	k, err := scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sqlstore.KeyNotFound(id)
	}
	return k, err
}

// Key returns the key with the given ID; ENOTFOUND if there is none.
func (s *Store) Key(ctx context.Context, id string) (*keygate.Key, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	k, err := scanKey(s.pool.QueryRow(bctx, `SELECT `+keyColumns+` FROM keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sqlstore.KeyNotFound(id)
	}
	if err != nil {
		return nil, s.fail(ctx, "get key", err)
	}
	return k, nil
}

// Keys returns the keys f selects, in ID (creation) order. EINVALID if
// f.Status is not one of the key statuses.
func (s *Store) Keys(ctx context.Context, f keygate.KeyFilter) ([]*keygate.Key, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	w, err := sqlstore.KeyFilter(dialect, f, s.now)
	if err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	q := `SELECT ` + keyColumns + ` FROM keys` + w.String() + ` ORDER BY id LIMIT ` + w.Next(sqlstore.PageSize(f.Limit))
	out, err := queryAll(bctx, s.pool, scanKey, q, w.Args()...)
	if err != nil {
		return nil, s.fail(ctx, "list keys", err)
	}
	return out, nil
}

// ForEachKey calls fn for every stored key, in no particular order,
// stopping at fn's first error, which it returns unwrapped. It streams one
// snapshot of the table on one connection; fn may call the store, which
// uses others.
func (s *Store) ForEachKey(ctx context.Context, fn func(*keygate.Key) error) error {
	if err := s.read(); err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM keys`)
	if err != nil {
		return s.fail(ctx, "scan keys", err)
	}
	defer rows.Close()
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return s.fail(ctx, "scan keys", err)
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.fail(ctx, "scan keys", err)
	}
	return nil
}

// insertKey inserts k.
func insertKey(ctx context.Context, tx pgx.Tx, k *keygate.Key) error {
	args, err := keyArgs(k)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, insertKeySQL, args...); err != nil {
		return keyConflict(err, k)
	}
	return nil
}

// keyConflict explains a failed insert or update of k.
func keyConflict(err error, k *keygate.Key) error {
	switch {
	case constraint(err, "keys_hash_key"):
		return sqlstore.KeyHashTaken(err)
	case constraint(err, "keys_pkey"):
		return sqlstore.KeyIDTaken(err, k.ID)
	case constraint(err, "keys_account_fkey"):
		return sqlstore.KeyAccountMissing(err, k.AccountID)
	case constraint(err, "keys_tier_fkey"):
		return sqlstore.TierMissing(err, k.Tier)
	}
	return err
}

// updateKey writes k's mutable fields and returns the key as stored.
func updateKey(ctx context.Context, tx pgx.Tx, k *keygate.Key) (*keygate.Key, error) {
	if err := sqlstore.CheckMeta(k.Meta); err != nil {
		return nil, err
	}
	written, err := scanKey(tx.QueryRow(ctx, updateKeySQL,
		k.Name, sqlstore.NullString(k.Tier), k.QuotaPerDay, k.RatePerSecond, k.Burst,
		sqlstore.List(k.Scopes), sqlstore.List(k.IPAllow), sqlstore.NullJSON(k.Meta), msPtr(k.ExpiresAt), k.Enabled, msPtr(k.RevokedAt), k.RevokedReason,
		k.RevokedBy, k.ReplacedBy, ms(k.UpdatedAt), msPtr(k.LastUsedAt),
		k.ID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sqlstore.KeyNotFound(k.ID)
	}
	if err != nil {
		return nil, keyConflict(err, k)
	}
	return written, nil
}

// keyArgs returns the values of insertKeySQL's placeholders for k.
func keyArgs(k *keygate.Key) ([]any, error) {
	hash, err := hex.DecodeString(k.Hash)
	if err != nil {
		return nil, fmt.Errorf("decode hash: %w", err)
	}
	return []any{
		k.ID, k.AccountID, k.Name, string(k.Env), k.Start, k.Last4, hash, k.HashAlg, sqlstore.NullString(k.Tier),
		k.QuotaPerDay, k.RatePerSecond, k.Burst, sqlstore.List(k.Scopes), sqlstore.List(k.IPAllow), sqlstore.NullJSON(k.Meta), msPtr(k.ExpiresAt), k.Enabled,
		msPtr(k.RevokedAt), k.RevokedReason, k.RevokedBy, k.ReplacedBy, k.Replaces,
		ms(k.CreatedAt), ms(k.UpdatedAt), msPtr(k.LastUsedAt), k.LineageID,
	}, nil
}

func scanKey(row pgx.Row) (*keygate.Key, error) {
	var (
		k                          keygate.Key
		env                        string
		hash, meta                 []byte
		tier                       *string
		expires, revoked, lastUsed *time.Time
	)
	if err := row.Scan(&k.ID, &k.AccountID, &k.Name, &env, &k.Start, &k.Last4, &hash, &k.HashAlg, &tier,
		&k.QuotaPerDay, &k.RatePerSecond, &k.Burst, &k.Scopes, &k.IPAllow, &meta, &expires, &k.Enabled,
		&revoked, &k.RevokedReason, &k.RevokedBy, &k.ReplacedBy, &k.Replaces, &k.CreatedAt, &k.UpdatedAt, &lastUsed, &k.LineageID); err != nil {
		return nil, err
	}
	k.Env = keygate.Env(env)
	k.Hash = hex.EncodeToString(hash)
	if tier != nil {
		k.Tier = *tier
	}
	k.Scopes, k.IPAllow = sqlstore.List(k.Scopes), sqlstore.List(k.IPAllow)
	if len(meta) > 0 {
		k.Meta = json.RawMessage(meta)
	}
	k.ExpiresAt, k.RevokedAt, k.LastUsedAt = utcPtr(expires), utcPtr(revoked), utcPtr(lastUsed)
	k.CreatedAt, k.UpdatedAt = k.CreatedAt.UTC(), k.UpdatedAt.UTC()
	return &k, nil
}

// CountKeys returns how many of the account's keys are not revoked. A
// rotated key in its grace period has a revocation time and is not
// counted.
func (s *Store) CountKeys(ctx context.Context, accountID string) (int, error) {
	if err := s.read(); err != nil {
		return 0, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	var n int
	if err := s.pool.QueryRow(bctx, `SELECT count(*) FROM keys WHERE account_id = $1 AND revoked_at IS NULL`, accountID).Scan(&n); err != nil {
		return 0, s.fail(ctx, "count keys", err)
	}
	return n, nil
}
