package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keygate/keygate"
)

const rootKeyColumns = `id, name, start, last4, hash, permissions, created_at, revoked_at`

// CreateRootKey stores r, setting an empty r.ID to a new ID and a zero
// r.CreatedAt to Now. ECONFLICT if the hash or the ID is already stored.
func (s *Store) CreateRootKey(ctx context.Context, r *keygate.RootKey, ev ...*keygate.AuditEvent) error {
	now := s.now()
	if r.ID == "" {
		r.ID = keygate.NewID(keygate.PrefixRootKey, now)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	hash, ok := canonicalHash(r.Hash)
	if !ok {
		return badHash("Root key", r.ID)
	}
	r.Hash = hash
	hashBlob, err := hashBytes(hash)
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
			return nil, &keygate.Error{Code: keygate.ECONFLICT, Err: err,
				Message: "A root key with the same hash is already stored; issue a new root key."}
		case uniqueViolation(err, "root_keys.id"):
			return nil, &keygate.Error{Code: keygate.ECONFLICT, Err: err,
				Message: "A root key with id \"" + r.ID + "\" already exists."}
		case err != nil:
			return nil, err
		}
		return []keygate.Change{{Kind: keygate.ChangeRootKey, ID: r.ID}}, nil
	})
}

// RevokeRootKey revokes the root key at at, inside the write transaction,
// and returns it as stored. A key already revoked is returned as it is and
// nothing is written. ECONFLICT if it is the last unrevoked root key with
// admin:write; ENOTFOUND if there is no such key.
func (s *Store) RevokeRootKey(ctx context.Context, id string, at time.Time, ev ...*keygate.AuditEvent) (*keygate.RootKey, error) {
	var out *keygate.RootKey
	err := s.write(ctx, "revoke root key", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		r, err := scanRootKey(tx.QueryRowContext(ctx, `SELECT `+rootKeyColumns+` FROM root_keys WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, rootKeyNotFound(id)
		}
		if err != nil {
			return nil, err
		}
		if r.RevokedAt != nil {
			out = r
			return nil, nil
		}
		if r.Can(keygate.PermAdminWrite) {
			if err := otherAdminWriter(ctx, tx, id); err != nil {
				return nil, err
			}
		}
		at = stored(at)
		if _, err := tx.ExecContext(ctx, `UPDATE root_keys SET revoked_at = ? WHERE id = ?`, millis(at), id); err != nil {
			return nil, err
		}
		if err := s.insertEvents(ctx, tx, ev); err != nil {
			return nil, err
		}
		r.RevokedAt = &at
		out = r
		return []keygate.Change{{Kind: keygate.ChangeRootKey, ID: id}}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// otherAdminWriter returns ECONFLICT unless an unrevoked root key other
// than id holds admin:write.
func otherAdminWriter(ctx context.Context, tx *sql.Tx, id string) error {
	rows, err := tx.QueryContext(ctx, `SELECT permissions FROM root_keys WHERE revoked_at IS NULL AND id <> ?`, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var perms string
		if err := rows.Scan(&perms); err != nil {
			return err
		}
		l, err := decodeList(perms)
		if err != nil {
			return err
		}
		if slices.Contains(l, keygate.PermAdminWrite) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return lastAdminWriter(id)
}

// lastAdminWriter is the error for revoking the last root key that can
// administer keygate.
func lastAdminWriter(id string) error {
	return keygate.Errorf(keygate.ECONFLICT, "Root key %s is the last one with admin:write; create another before revoking it.", id)
}

// RootKey returns the root key with the given ID; ENOTFOUND if there is none.
func (s *Store) RootKey(ctx context.Context, id string) (*keygate.RootKey, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	r, err := scanRootKey(s.rdb.QueryRowContext(ctx, `SELECT `+rootKeyColumns+` FROM root_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, rootKeyNotFound(id)
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

func rootKeyNotFound(id string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "No root key with id %q exists.", id)
}
