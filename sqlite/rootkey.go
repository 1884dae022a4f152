package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

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
	hashBlob, err := hashBytes(r.Hash)
	if err != nil {
		return s.fail("create root key", err)
	}
	perms, err := encodeList(r.Permissions)
	if err != nil {
		return s.fail("create root key", err)
	}
	return s.write(ctx, "create root key", ev, func(tx *sql.Tx) ([]keygate.Change, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO root_keys (`+rootKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.Name, r.Start, r.Last4, hashBlob, perms, millis(r.CreatedAt), nullMillis(r.RevokedAt))
		switch {
		case uniqueViolation(err, "root_keys.hash"):
			return nil, sqlstore.RootKeyHashTaken(err)
		case uniqueViolation(err, "root_keys.id"):
			return nil, sqlstore.RootKeyIDTaken(err, r.ID)
		case err != nil:
			return nil, err
		}
		return []keygate.Change{{Kind: keygate.ChangeRootKey, ID: r.ID}}, nil
	})
}

// RevokeRootKey reads the root key and counts the other unrevoked root
// keys with admin:write inside the write transaction (BEGIN IMMEDIATE: no
// other writer runs until it commits), calls fn with both, and stores the
// RevokedAt fn set with the audit events fn returns. ENOTFOUND if there is
// no such key; fn's error as it is, except keygate.ErrUnchanged, after
// which nothing is written.
func (s *Store) RevokeRootKey(ctx context.Context, id string, fn func(*keygate.RootKey, int) ([]*keygate.AuditEvent, error)) (*keygate.RootKey, error) {
	var out *keygate.RootKey
	err := s.write(ctx, "revoke root key", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		cur, err := scanRootKey(tx.QueryRowContext(ctx, `SELECT `+rootKeyColumns+` FROM root_keys WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, sqlstore.RootKeyNotFound(id)
		}
		if err != nil {
			return nil, err
		}
		others, err := otherAdminWriters(ctx, tx, id)
		if err != nil {
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
		r.RevokedAt = sqlstore.StoredPtr(r.RevokedAt)
		if _, err := tx.ExecContext(ctx, `UPDATE root_keys SET revoked_at = ? WHERE id = ?`, nullMillis(r.RevokedAt), id); err != nil {
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

// otherAdminWriters counts the unrevoked root keys other than id that hold
// admin:write.
func otherAdminWriters(ctx context.Context, tx *sql.Tx, id string) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT permissions FROM root_keys WHERE revoked_at IS NULL AND id <> ?`, id)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var perms string
		if err := rows.Scan(&perms); err != nil {
			return 0, err
		}
		l, err := decodeList(perms)
		if err != nil {
			return 0, err
		}
		if slices.Contains(l, keygate.PermAdminWrite) {
			n++
		}
	}
	return n, rows.Err()
}

// RootKey returns the root key with the given ID; ENOTFOUND if there is none.
func (s *Store) RootKey(ctx context.Context, id string) (*keygate.RootKey, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	r, err := scanRootKey(s.rdb.QueryRowContext(ctx, `SELECT `+rootKeyColumns+` FROM root_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sqlstore.RootKeyNotFound(id)
	}
	if err != nil {
		return nil, s.fail("get root key", err)
	}
	return r, nil
}

// RootKeys returns every root key, revoked ones included, in ID (creation)
// order.
func (s *Store) RootKeys(ctx context.Context) ([]*keygate.RootKey, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	return queryAll(ctx, s, "list root keys", `SELECT `+rootKeyColumns+` FROM root_keys ORDER BY id`, nil, scanRootKey)
}

func scanRootKey(sc scanner) (*keygate.RootKey, error) {
	var r keygate.RootKey
	var perms string
	var hash []byte
	var created int64
	var revoked sql.NullInt64
	if err := sc.Scan(&r.ID, &r.Name, &r.Start, &r.Last4, &hash, &perms, &created, &revoked); err != nil {
		return nil, err
	}
	r.Hash = hex.EncodeToString(hash)
	var err error
	if r.Permissions, err = decodeList(perms); err != nil {
		return nil, fmt.Errorf("root key %s: permissions: %w", r.ID, err)
	}
	r.CreatedAt = fromMillis(created)
	r.RevokedAt = fromNullMillis(revoked)
	return &r, nil
}
