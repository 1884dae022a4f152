package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

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
	return s.write(ctx, "create session", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sess.ID, sess.TokenHash, sqlstore.NullString(sess.AccountID), sqlstore.NullString(sess.RootKeyID),
			millis(sess.CreatedAt), millis(sess.ExpiresAt), nullMillis(sess.RevokedAt), sess.IP, sess.UserAgent)
		switch {
		case uniqueViolation(err, "sessions.token_hash"), uniqueViolation(err, "sessions.id"):
			return nil, sqlstore.SessionTaken(err)
		case foreignKeyViolation(err):
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
	sess, err := scanSession(s.rdb.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE token_hash = ?`, h))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sqlstore.NoSession()
	}
	if err != nil {
		return nil, s.fail("get session", err)
	}
	return sess, nil
}

// RevokeSession revokes the session with the given ID, keeping an earlier
// revocation time; ENOTFOUND if there is none.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time) error {
	return s.write(ctx, "revoke session", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, millis(at), id)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 0 {
			return nil, sqlstore.SessionNotFound(id)
		}
		return nil, nil
	})
}

// RevokeSessions revokes every unrevoked session of the account except the
// one with ID except.
func (s *Store) RevokeSessions(ctx context.Context, accountID, except string, at time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "revoke sessions", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?
			WHERE account_id = ? AND id <> ? AND revoked_at IS NULL`, millis(at), accountID, except)
		if err != nil {
			return nil, err
		}
		n, err = res.RowsAffected()
		return nil, err
	})
	return n, err
}

// PruneSessions deletes sessions that expired, or were revoked, before
// before.
func (s *Store) PruneSessions(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "prune sessions", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ? OR revoked_at < ?`, millis(before), millis(before))
		if err != nil {
			return nil, err
		}
		n, err = res.RowsAffected()
		return nil, err
	})
	return n, err
}

func scanSession(sc scanner) (*keygate.Session, error) {
	var sess keygate.Session
	var account, root sql.NullString
	var created, expires int64
	var revoked sql.NullInt64
	if err := sc.Scan(&sess.ID, &sess.TokenHash, &account, &root, &created, &expires, &revoked, &sess.IP, &sess.UserAgent); err != nil {
		return nil, err
	}
	sess.AccountID, sess.RootKeyID = account.String, root.String
	sess.CreatedAt, sess.ExpiresAt = fromMillis(created), fromMillis(expires)
	sess.RevokedAt = fromNullMillis(revoked)
	return &sess, nil
}
