package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

var _ keygate.InviteStore = (*Store)(nil)

const inviteColumns = `id, note, start, hash, created_by, created_at, expires_at, used_at, used_by, revoked_at`

// CreateInvite stores inv. ECONFLICT if its ID or hash is stored.
func (s *Store) CreateInvite(ctx context.Context, inv *keygate.Invite, ev ...*keygate.AuditEvent) error {
	return s.write(ctx, "create invite", false, ev, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		_, err := tx.Exec(ctx, `INSERT INTO invites (`+inviteColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			inv.ID, inv.Note, inv.Start, inv.Hash, inv.CreatedBy, ms(inv.CreatedAt), ms(inv.ExpiresAt),
			msPtr(inv.UsedAt), inv.UsedBy, msPtr(inv.RevokedAt))
		if constraint(err, "invites_pkey") || constraint(err, "invites_hash_key") {
			return nil, sqlstore.InviteTaken(err)
		}
		return nil, err
	})
}

// UpdateInvite reads the invitation with SELECT … FOR UPDATE, calls fn
// with a copy, and stores the UsedAt, UsedBy and RevokedAt fn set, with
// the audit events fn returns. ENOTFOUND if there is none; fn's error as
// it is, except keygate.ErrUnchanged, after which nothing is written and
// the invitation is returned as read.
func (s *Store) UpdateInvite(ctx context.Context, id string, fn func(*keygate.Invite) ([]*keygate.AuditEvent, error)) (*keygate.Invite, error) {
	var out *keygate.Invite
	err := s.write(ctx, "update invite", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		cur, err := scanInvite(tx.QueryRow(ctx, `SELECT `+inviteColumns+` FROM invites WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
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
		inv.UsedAt, inv.RevokedAt = msPtr(inv.UsedAt), msPtr(inv.RevokedAt)
		if _, err := tx.Exec(ctx, `UPDATE invites SET used_at = $1, used_by = $2, revoked_at = $3 WHERE id = $4`,
			inv.UsedAt, inv.UsedBy, inv.RevokedAt, cur.ID); err != nil {
			return nil, err
		}
		if err := s.insertEvents(ctx, tx, evs); err != nil {
			return nil, err
		}
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
	bctx, cancel := s.bound(ctx)
	defer cancel()
	inv, err := scanInvite(s.pool.QueryRow(bctx, `SELECT `+inviteColumns+` FROM invites WHERE `+column+` = $1`, value))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, missing
	}
	if err != nil {
		return nil, s.fail(ctx, "get invite", err)
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
	q := `SELECT ` + inviteColumns + ` FROM invites` + w.String() + ` ORDER BY id DESC LIMIT ` + w.Next(sqlstore.PageSize(f.Limit))
	bctx, cancel := s.bound(ctx)
	defer cancel()
	out, err := queryAll(bctx, s.pool, scanInvite, q, w.Args()...)
	if err != nil {
		return nil, s.fail(ctx, "list invites", err)
	}
	return out, nil
}

func scanInvite(row pgx.Row) (*keygate.Invite, error) {
	var (
		inv           keygate.Invite
		used, revoked *time.Time
	)
	if err := row.Scan(&inv.ID, &inv.Note, &inv.Start, &inv.Hash, &inv.CreatedBy, &inv.CreatedAt, &inv.ExpiresAt, &used, &inv.UsedBy, &revoked); err != nil {
		return nil, err
	}
	inv.CreatedAt, inv.ExpiresAt = inv.CreatedAt.UTC(), inv.ExpiresAt.UTC()
	inv.UsedAt, inv.RevokedAt = utcPtr(used), utcPtr(revoked)
	return &inv, nil
}
