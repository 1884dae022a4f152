package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// newSession returns an unsaved session of the account, valid for an hour.
func (f *fixture) newSession(accountID string) *keygate.Session {
	return &keygate.Session{
		ID: f.id(keygate.PrefixSession), TokenHash: hash(), AccountID: accountID,
		CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour), IP: "192.0.2.7", UserAgent: "test " + f.tag,
	}
}

func testSessions(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	s := f.newSession(a.ID)
	s.TokenHash = strings.ToUpper(s.TokenHash) // stored in lower case
	mustOK(t, f.s.CreateSession(f.ctx, s), "CreateSession")
	if s.TokenHash != strings.ToLower(s.TokenHash) {
		t.Errorf("CreateSession: token hash %q left in upper case", s.TokenHash)
	}

	got, err := f.s.Session(f.ctx, s.TokenHash)
	mustOK(t, err, "Session")
	checkSame(t, "Session", got, s)
	if !got.Live(f.now) || got.Live(s.ExpiresAt) {
		t.Errorf("Live: got %v at creation and %v at expiry, want true and false", got.Live(f.now), got.Live(s.ExpiresAt))
	}

	// A root key's session.
	r := f.newRootKey()
	mustOK(t, f.s.CreateRootKey(f.ctx, r), "CreateRootKey")
	rs := f.newSession("")
	rs.RootKeyID = r.ID
	mustOK(t, f.s.CreateSession(f.ctx, rs), "CreateSession for a root key")
	got, err = f.s.Session(f.ctx, rs.TokenHash)
	mustOK(t, err, "Session of a root key")
	checkSame(t, "Session of a root key", got, rs)

	// Revoking keeps the first revocation time.
	at := f.now.Add(time.Minute)
	mustOK(t, f.s.RevokeSession(f.ctx, s.ID, at), "RevokeSession")
	mustOK(t, f.s.RevokeSession(f.ctx, s.ID, at.Add(time.Minute)), "RevokeSession again")
	got, err = f.s.Session(f.ctx, s.TokenHash)
	mustOK(t, err, "Session after revocation")
	if got.RevokedAt == nil || !got.RevokedAt.Equal(at) {
		t.Errorf("Session after revocation: got revoked_at %v, want %v", got.RevokedAt, at)
	}
	if got.Live(f.now) {
		t.Errorf("Live: a revoked session is live")
	}
	wantCode(t, f.s.RevokeSession(f.ctx, f.id(keygate.PrefixSession), at), keygate.ENOTFOUND, "RevokeSession of an unknown session")
}

func testSessionErrors(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	taken := f.newSession(a.ID)
	mustOK(t, f.s.CreateSession(f.ctx, taken), "CreateSession")

	tests := []struct {
		name  string
		setup func(s *keygate.Session)
		code  string
	}{
		{"no owner", func(s *keygate.Session) { s.AccountID = "" }, keygate.EINVALID},
		{"two owners", func(s *keygate.Session) { s.RootKeyID = f.id(keygate.PrefixRootKey) }, keygate.EINVALID},
		{"bad hash", func(s *keygate.Session) { s.TokenHash = "abc" }, keygate.EINVALID},
		{"token hash taken", func(s *keygate.Session) { s.TokenHash = taken.TokenHash }, keygate.ECONFLICT},
		{"unknown account", func(s *keygate.Session) { s.AccountID = f.id(keygate.PrefixAccount) }, keygate.ENOTFOUND},
	}
	for _, tt := range tests {
		s := f.newSession(a.ID)
		tt.setup(s)
		wantCode(t, f.s.CreateSession(f.ctx, s), tt.code, "CreateSession "+tt.name)
	}
	for _, h := range []string{hash(), "not a hash", ""} {
		_, err := f.s.Session(f.ctx, h)
		wantCode(t, err, keygate.ENOTFOUND, "Session("+h+")")
	}
}

func testRevokeSessions(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	other := f.account(t, keygate.TierFree)
	keep, s1, s2 := f.newSession(a.ID), f.newSession(a.ID), f.newSession(a.ID)
	o := f.newSession(other.ID)
	for _, s := range []*keygate.Session{keep, s1, s2, o} {
		mustOK(t, f.s.CreateSession(f.ctx, s), "CreateSession")
	}
	early := f.now.Add(time.Second)
	mustOK(t, f.s.RevokeSession(f.ctx, s2.ID, early), "RevokeSession")

	at := f.now.Add(time.Minute)
	n, err := f.s.RevokeSessions(f.ctx, a.ID, keep.ID, at)
	mustOK(t, err, "RevokeSessions")
	if n != 1 {
		t.Errorf("RevokeSessions: got %d revoked, want 1 (the one live session but the kept one)", n)
	}
	want := map[*keygate.Session]*time.Time{keep: nil, s1: &at, s2: &early, o: nil}
	for s, w := range want {
		got, err := f.s.Session(f.ctx, s.TokenHash)
		mustOK(t, err, "Session")
		if (got.RevokedAt == nil) != (w == nil) || (w != nil && !got.RevokedAt.Equal(*w)) {
			t.Errorf("session %s: got revoked_at %v, want %v", s.ID, got.RevokedAt, w)
		}
	}

	// Without an exception every session goes.
	n, err = f.s.RevokeSessions(f.ctx, a.ID, "", at)
	mustOK(t, err, "RevokeSessions without exception")
	if n != 1 {
		t.Errorf("RevokeSessions without exception: got %d revoked, want 1", n)
	}
}

func testPruneSessions(t *testing.T, f *fixture) {
	a := f.account(t, keygate.TierFree)
	expired, revoked, live := f.newSession(a.ID), f.newSession(a.ID), f.newSession(a.ID)
	expired.ExpiresAt = f.now.Add(-2 * time.Hour)
	live.ExpiresAt = f.now.Add(2 * time.Hour)
	for _, s := range []*keygate.Session{expired, revoked, live} {
		mustOK(t, f.s.CreateSession(f.ctx, s), "CreateSession")
	}
	mustOK(t, f.s.RevokeSession(f.ctx, revoked.ID, f.now.Add(-90*time.Minute)), "RevokeSession")

	// Other tests share the database: count only what this one made.
	if _, err := f.s.PruneSessions(f.ctx, f.now.Add(-time.Hour)); err != nil {
		t.Fatalf("PruneSessions: %v", err)
	}
	for s, gone := range map[*keygate.Session]bool{expired: true, revoked: true, live: false} {
		_, err := f.s.Session(f.ctx, s.TokenHash)
		if gone {
			wantCode(t, err, keygate.ENOTFOUND, "Session after pruning "+s.ID)
		} else {
			mustOK(t, err, "Session after pruning "+s.ID)
		}
	}
}
