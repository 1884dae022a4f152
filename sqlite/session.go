package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keygate/keygate"
)

const sessionColumns = `id, token_hash, account_id, root_key_id, created_at, expires_at, revoked_at, ip, user_agent`

// CreateSession stores sess. It sets an empty ID to a new one and a zero
// CreatedAt to Now.
func (s *Store) CreateSession(ctx context.Context, sess *keygate.Session) error {
	if err := prepareSession(sess, s.now()); err != nil {
		return err
	}
	return s.write(ctx, "create session", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sess.ID, sess.TokenHash, nullString(sess.AccountID), nullString(sess.RootKeyID),
			millis(sess.CreatedAt), millis(sess.ExpiresAt), nullMillis(sess.RevokedAt), sess.IP, sess.UserAgent)
		switch {
		case uniqueViolation(err, "sessions.token_hash"), uniqueViolation(err, "sessions.id"):
			return nil, &keygate.Error{Code: keygate.ECONFLICT, Message: "The session already exists.", Err: err}
		case foreignKeyViolation(err):
			return nil, &keygate.Error{Code: keygate.ENOTFOUND, Message: "The session's account or root key does not exist.", Err: err}
		}
		return nil, err
	})
}

// prepareSession checks sess and fills its ID and creation time.
func prepareSession(sess *keygate.Session, now time.Time) error {
	if err := sess.Validate(); err != nil {
		return err
	}
	if sess.ID == "" {
		sess.ID = keygate.NewID(keygate.PrefixSession, now)
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = now
	}
	sess.CreatedAt, sess.ExpiresAt = stored(sess.CreatedAt), stored(sess.ExpiresAt)
	sess.RevokedAt = storedPtr(sess.RevokedAt)
	return nil
}

// Session returns the session whose token hash is tokenHash; ENOTFOUND if
// there is none.
func (s *Store) Session(ctx context.Context, tokenHash string) (*keygate.Session, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	h, ok := canonicalHash(tokenHash)
	if !ok {
		return nil, keygate.Errorf(keygate.ENOTFOUND, "No such session.")
	}
	sess, err := scanSession(s.rdb.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE token_hash = ?`, h))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keygate.Errorf(keygate.ENOTFOUND, "No such session.")
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
			return nil, keygate.Errorf(keygate.ENOTFOUND, "No session with id %q exists.", id)
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
