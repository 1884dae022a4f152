package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

var _ keygate.InviteStore = (*Store)(nil)

const inviteColumns = `id, note, start, hash, created_by, created_at, expires_at, used_at, used_by, revoked_at`

// CreateInvite stores inv. ECONFLICT if its ID or hash is stored.
func (s *Store) CreateInvite(ctx context.Context, inv *keygate.Invite, evs ...*keygate.AuditEvent) error {
	return s.write(ctx, "create invite", evs, func(tx *sql.Tx) ([]keygate.Change, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO invites (`+inviteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			inv.ID, inv.Note, inv.Start, inv.Hash, inv.CreatedBy, millis(inv.CreatedAt), millis(inv.ExpiresAt),
			nullMillis(inv.UsedAt), inv.UsedBy, nullMillis(inv.RevokedAt))
		if uniqueViolation(err, "invites.id") || uniqueViolation(err, "invites.hash") {
			return nil, sqlstore.InviteTaken(err)
		}
		return nil, err
	})
}

// UpdateInvite reads the invitation and calls fn with a copy inside the
// write transaction, then stores the UsedAt, UsedBy and RevokedAt fn set,
// with the audit events fn returns. ENOTFOUND if there is none; fn's
// error as it is, except keygate.ErrUnchanged, after which nothing is
// written and the invitation is returned as read.
func (s *Store) UpdateInvite(ctx context.Context, id string, fn func(*keygate.Invite) ([]*keygate.AuditEvent, error)) (*keygate.Invite, error) {
	var out *keygate.Invite
	err := s.write(ctx, "update invite", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		cur, err := scanInvite(tx.QueryRowContext(ctx, `SELECT `+inviteColumns+` FROM invites WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, sqlstore.InviteNotFound(id)
		}
		if err != nil {
			return nil, err
		}
		inv := *cur
		evs, err := fn(&inv)
		if errors.Is(err, keygate.ErrUnchanged) {
			out = cur
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		inv.UsedAt, inv.RevokedAt = sqlstore.StoredPtr(inv.UsedAt), sqlstore.StoredPtr(inv.RevokedAt)
		if _, err := tx.ExecContext(ctx, `UPDATE invites SET used_at = ?, used_by = ?, revoked_at = ? WHERE id = ?`,
			nullMillis(inv.UsedAt), inv.UsedBy, nullMillis(inv.RevokedAt), cur.ID); err != nil {
			return nil, err
		}
		if err := s.insertEvents(ctx, tx, evs); err != nil {
			return nil, err
		}
		// Only what the update may change; the rest is as read.
		out = cur
		out.UsedAt, out.UsedBy, out.RevokedAt = inv.UsedAt, inv.UsedBy, inv.RevokedAt
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Invite returns the invitation with id; ENOTFOUND if there is none.
func (s *Store) Invite(ctx context.Context, id string) (*keygate.Invite, error) {
	return s.oneInvite(ctx, "id", id, sqlstore.InviteNotFound(id))
}

// InviteByHash returns the invitation whose code hashes to hash; ENOTFOUND
// if none does.
func (s *Store) InviteByHash(ctx context.Context, hash string) (*keygate.Invite, error) {
	return s.oneInvite(ctx, "hash", hash, sqlstore.NoInviteCode())
}

func (s *Store) oneInvite(ctx context.Context, column, value string, missing error) (*keygate.Invite, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	inv, err := scanInvite(s.rdb.QueryRowContext(ctx, `SELECT `+inviteColumns+` FROM invites WHERE `+column+` = ?`, value))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, missing
	}
	if err != nil {
		return nil, s.fail("get invite", err)
	}
	return inv, nil
}

// Invites returns invitations newest first, f.Limit at most, before the
// cursor f.Before.
func (s *Store) Invites(ctx context.Context, f keygate.InviteFilter) ([]*keygate.Invite, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	w := sqlstore.InviteFilter(dialect, f)
	return queryAll(ctx, s, "list invites", `SELECT `+inviteColumns+` FROM invites`+w.String()+` ORDER BY id DESC LIMIT `+w.Next(sqlstore.PageSize(f.Limit)),
		w.Args(), scanInvite)
}

func scanInvite(sc scanner) (*keygate.Invite, error) {
	var (
		inv              keygate.Invite
		created, expires int64
		used, revoked    sql.NullInt64
	)
	if err := sc.Scan(&inv.ID, &inv.Note, &inv.Start, &inv.Hash, &inv.CreatedBy, &created, &expires, &used, &inv.UsedBy, &revoked); err != nil {
		return nil, err
	}
	inv.CreatedAt, inv.ExpiresAt = fromMillis(created), fromMillis(expires)
	inv.UsedAt, inv.RevokedAt = fromNullMillis(used), fromNullMillis(revoked)
	return &inv, nil
}
