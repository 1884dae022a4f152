package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

const sessionColumns = `id, token_hash, account_id, root_key_id, created_at, expires_at, revoked_at, ip, user_agent`

// CreateSession stores sess. It sets an empty ID to a new one and a zero
// CreatedAt to Now.
func (s *Store) CreateSession(ctx context.Context, sess *keygate.Session) error {
	if err := sqlstore.PrepareSession(sess, s.now()); err != nil {
		return err
	}
	return s.write(ctx, "create session", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		_, err := tx.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			sess.ID, sess.TokenHash, sqlstore.NullString(sess.AccountID), sqlstore.NullString(sess.RootKeyID),
			sess.CreatedAt, sess.ExpiresAt, sess.RevokedAt, sess.IP, sess.UserAgent)
		switch {
		case constraint(err, "sessions_token_hash_key"), constraint(err, "sessions_pkey"):
			return nil, sqlstore.SessionTaken(err)
		case constraint(err, "sessions_account_id_fkey"), constraint(err, "sessions_root_key_id_fkey"):
			return nil, sqlstore.SessionOwnerMissing(err)
		}
		return nil, err
	})
}

// Session returns the session whose token hash is tokenHash; ENOTFOUND if
// there is none.
func (s *Store) Session(ctx context.Context, tokenHash string) (*keygate.Session, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	h, ok := sqlstore.CanonicalHash(tokenHash)
	if !ok {
		return nil, sqlstore.NoSession()
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	sess, err := scanSession(s.pool.QueryRow(bctx, `SELECT `+sessionColumns+` FROM sessions WHERE token_hash = $1`, h))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sqlstore.NoSession()
	}
	if err != nil {
		return nil, s.fail(ctx, "get session", err)
	}
	return sess, nil
}

// RevokeSession revokes the session with the given ID, keeping an earlier
// revocation time; ENOTFOUND if there is none.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time) error {
	return s.write(ctx, "revoke session", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		tag, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2`, ms(at), id)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			return nil, sqlstore.SessionNotFound(id)
		}
		return nil, nil
	})
}

// RevokeSessions revokes every unrevoked session of the account except the
// one with ID except.
func (s *Store) RevokeSessions(ctx context.Context, accountID, except string, at time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "revoke sessions", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		tag, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $1
			WHERE account_id = $2 AND id <> $3 AND revoked_at IS NULL`, ms(at), accountID, except)
		if err != nil {
			return nil, err
		}
		n = tag.RowsAffected()
		return nil, nil
	})
	return n, err
}

// PruneSessions deletes sessions that expired, or were revoked, before
// before.
func (s *Store) PruneSessions(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "prune sessions", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1`, ms(before))
		if err != nil {
			return nil, err
		}
		n = tag.RowsAffected()
		return nil, nil
	})
	return n, err
}

func scanSession(row pgx.Row) (*keygate.Session, error) {
	var sess keygate.Session
	var account, root *string
	if err := row.Scan(&sess.ID, &sess.TokenHash, &account, &root, &sess.CreatedAt, &sess.ExpiresAt, &sess.RevokedAt, &sess.IP, &sess.UserAgent); err != nil {
		return nil, err
	}
	if account != nil {
		sess.AccountID = *account
	}
	if root != nil {
		sess.RootKeyID = *root
	}
	sess.CreatedAt, sess.ExpiresAt, sess.RevokedAt = sess.CreatedAt.UTC(), sess.ExpiresAt.UTC(), utcPtr(sess.RevokedAt)
	return &sess, nil
}
