package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

const rootKeyColumns = `id, name, start, last4, hash, permissions, created_at, revoked_at`

// CreateRootKey stores r, setting an empty r.ID to a new ID and a zero
// r.CreatedAt to Now. ECONFLICT if the hash or the ID is already stored.
func (s *Store) CreateRootKey(ctx context.Context, r *keygate.RootKey, ev ...*keygate.AuditEvent) error {
	if err := sqlstore.PrepareRootKey(r, s.now()); err != nil {
		return err
	}
	hash, err := hex.DecodeString(r.Hash)
	if err != nil {
		return s.fail(ctx, "create root key", err)
	}
	return s.write(ctx, "create root key", false, ev, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		_, err := tx.Exec(ctx, `INSERT INTO root_keys (`+rootKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			r.ID, r.Name, r.Start, r.Last4, hash, sqlstore.List(r.Permissions), ms(r.CreatedAt), msPtr(r.RevokedAt))
		switch {
		case constraint(err, "root_keys_hash_key"):
			return nil, sqlstore.RootKeyHashTaken(err)
		case constraint(err, "root_keys_pkey"):
			return nil, sqlstore.RootKeyIDTaken(err, r.ID)
		case err != nil:
			return nil, err
		}
		return []keygate.Change{{Kind: keygate.ChangeRootKey, ID: r.ID}}, nil
	})
}

// rootKeyLockSQL takes the transaction-scoped advisory lock that every root
// key revocation holds, in this schema, from before it counts the other
// admin:write keys until it commits. Statements run after the lock is
// granted see every revocation committed before, so the count is true.
const rootKeyLockSQL = `SELECT pg_advisory_xact_lock(hashtext('keygate.root_keys'), hashtext(coalesce(current_schema(), '')))`

// RevokeRootKey takes the root key revocation lock, reads the root key and
// counts the other unrevoked root keys with admin:write, calls fn with
// both, and stores the RevokedAt fn set with the audit events fn returns.
// ENOTFOUND if there is no such key; fn's error as it is, except
// keygate.ErrUnchanged, after which nothing is written.
func (s *Store) RevokeRootKey(ctx context.Context, id string, fn func(*keygate.RootKey, int) ([]*keygate.AuditEvent, error)) (*keygate.RootKey, error) {
	var out *keygate.RootKey
	err := s.write(ctx, "revoke root key", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		if _, err := tx.Exec(ctx, rootKeyLockSQL); err != nil {
			return nil, err
		}
		cur, err := scanRootKey(tx.QueryRow(ctx, `SELECT `+rootKeyColumns+` FROM root_keys WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, sqlstore.RootKeyNotFound(id)
		}
		if err != nil {
			return nil, err
		}
		var others int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM root_keys
			WHERE revoked_at IS NULL AND id <> $1 AND $2 = ANY (permissions)`, id, keygate.PermAdminWrite).Scan(&others); err != nil {
			return nil, err
		}
		r := *cur
		r.Permissions = slices.Clone(cur.Permissions)
		evs, err := fn(&r, others)
		if errors.Is(err, keygate.ErrUnchanged) {
			out = cur
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		r.RevokedAt = msPtr(r.RevokedAt)
		if _, err := tx.Exec(ctx, `UPDATE root_keys SET revoked_at = $1 WHERE id = $2`, r.RevokedAt, id); err != nil {
			return nil, err
		}
		if err := s.insertEvents(ctx, tx, evs); err != nil {
			return nil, err
		}
		out = &r
		return []keygate.Change{{Kind: keygate.ChangeRootKey, ID: id}}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RootKey returns the root key with the given ID; ENOTFOUND if there is none.
func (s *Store) RootKey(ctx context.Context, id string) (*keygate.RootKey, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	r, err := scanRootKey(s.pool.QueryRow(bctx, `SELECT `+rootKeyColumns+` FROM root_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sqlstore.RootKeyNotFound(id)
	}
	if err != nil {
		return nil, s.fail(ctx, "get root key", err)
	}
	return r, nil
}

// RootKeys returns every root key, revoked ones included, in ID (creation)
// order.
func (s *Store) RootKeys(ctx context.Context) ([]*keygate.RootKey, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	out, err := queryAll(bctx, s.pool, scanRootKey, `SELECT `+rootKeyColumns+` FROM root_keys ORDER BY id`)
	if err != nil {
		return nil, s.fail(ctx, "list root keys", err)
	}
	return out, nil
}

func scanRootKey(row pgx.Row) (*keygate.RootKey, error) {
	var r keygate.RootKey
	var hash []byte
	var revoked *time.Time
	if err := row.Scan(&r.ID, &r.Name, &r.Start, &r.Last4, &hash, &r.Permissions, &r.CreatedAt, &revoked); err != nil {
		return nil, err
	}
	r.Hash = hex.EncodeToString(hash)
	r.Permissions = sqlstore.List(r.Permissions)
	r.CreatedAt = r.CreatedAt.UTC()
	r.RevokedAt = utcPtr(revoked)
	return &r, nil
}
