package keygate

import (
	"context"
	"encoding/hex"
	"time"
)

// PrefixSession starts the ID of a portal session.
const PrefixSession = "ses_"

// Session is a signed-in portal visitor: an account, or an operator who
// signed in with a root key. The browser holds a random token in a cookie;
// the store holds only the token's SHA-256 (TokenHash), so a copy of the
// database cannot be used to sign in. A session ends at ExpiresAt, or
// earlier when it is revoked (signing out, a password change, a disabled
// account).
type Session struct {
	ID        string
	TokenHash string // lower-case hex SHA-256 of the cookie's token
	// Exactly one of AccountID and RootKeyID is set.
	AccountID string
	RootKeyID string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
	IP        string // the client IP at sign-in, for the owner's information
	UserAgent string
}

// Live reports whether the session may be used at now.
func (s *Session) Live(now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.ExpiresAt)
}

// SessionStore keeps portal sessions. Sessions are not audited and do not
// notify OnChange listeners: the engine never needs them.
type SessionStore interface {
	// CreateSession stores s. EINVALID unless exactly one of AccountID and
	// RootKeyID is set and TokenHash is 64 hex digits; ECONFLICT if the
	// token hash is already stored.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns the session whose TokenHash is tokenHash, revoked and
	// expired ones too (the caller judges them with Live); ENOTFOUND if
	// there is none.
	Session(ctx context.Context, tokenHash string) (*Session, error)
	// RevokeSession revokes the session with the given ID at at. Revoking
	// a revoked session keeps its first revocation time. ENOTFOUND if
	// there is no such session.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// RevokeSessions revokes every unrevoked session of the account but
	// the one with ID except (which may be empty), and returns how many it
	// revoked.
	RevokeSessions(ctx context.Context, accountID, except string, at time.Time) (int64, error)
	// PruneSessions deletes the sessions that expired before before, and
	// those revoked before it, and returns how many it deleted.
	PruneSessions(ctx context.Context, before time.Time) (int64, error)
}

// Validate reports, as an EINVALID *Error, a session that belongs to no
// one or to two, or whose TokenHash is not a SHA-256 digest in hex; it
// puts TokenHash in lower case.
func (s *Session) Validate() error {
	if (s.AccountID == "") == (s.RootKeyID == "") {
		return Errorf(EINVALID, "A session belongs to exactly one account or root key.")
	}
	sum, ok := ParseHash(s.TokenHash)
	if !ok {
		return Errorf(EINVALID, "A session's token hash must be the 64 hex characters of a SHA-256 digest.")
	}
	s.TokenHash = hex.EncodeToString(sum[:])
	return nil
}
