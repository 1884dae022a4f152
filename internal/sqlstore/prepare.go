package sqlstore

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// The checks and defaults both stores apply before a write, so that the
// caller gets a message it can act on rather than a constraint name, and
// both stores keep the same values.

// PrepareKey fills in k's ID and times when they are unset, puts its hash
// in lower case, and checks the fields that the schema constrains: a
// SHA-256 hash in hex, an account, the env, the hash algorithm and the
// metadata.
func PrepareKey(k *keygate.Key, now time.Time) error {
	if k.ID == "" {
		k.ID = keygate.NewID(keygate.PrefixKey, now)
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now
	}
	if k.UpdatedAt.IsZero() {
		k.UpdatedAt = k.CreatedAt
	}
	hash, ok := CanonicalHash(k.Hash)
	if !ok {
		return BadHash("Key", k.ID)
	}
	k.Hash = hash
	switch {
	case k.AccountID == "":
		return keygate.Errorf(keygate.EINVALID, "Key %s has no account_id; every key belongs to an account.", k.ID)
	case !k.Env.Valid():
		return keygate.Errorf(keygate.EINVALID, "Key %s has env %q; use \"live\" or \"test\".", k.ID, k.Env)
	case k.HashAlg != keygate.HashKeygate && k.HashAlg != keygate.HashSHA256:
		return keygate.Errorf(keygate.EINVALID, "Key %s has hash algorithm %q; use %q or %q.", k.ID, k.HashAlg, keygate.HashKeygate, keygate.HashSHA256)
	}
	return CheckMeta(k.Meta)
}

// CheckMeta refuses metadata that is not valid JSON.
func CheckMeta(meta json.RawMessage) error {
	if len(meta) > 0 && !json.Valid(meta) {
		return keygate.Errorf(keygate.EINVALID, "meta must be valid JSON, such as {\"plan\": \"beta\"}.")
	}
	return nil
}

// CanonicalHash returns h in lower case, and whether it is a SHA-256
// digest in hex.
func CanonicalHash(h string) (string, bool) {
	sum, ok := keygate.ParseHash(h)
	if !ok {
		return "", false
	}
	return hex.EncodeToString(sum[:]), true
}

// BadHash is the error for a hash that CanonicalHash refuses; what names
// the record ("Key", "Root key").
func BadHash(what, id string) error {
	return keygate.Errorf(keygate.EINVALID, "%s %s has a malformed hash: it must be the 64 hex characters of a SHA-256 digest.", what, id)
}

// PrepareAccount sets an empty a.ID to a new ID, zero times to now and a's
// email to lower case. With firstKey, the key created with the account, it
// sets an empty firstKey.AccountID to a.ID, refuses a key of another
// account, and prepares the key (PrepareKey).
func PrepareAccount(a *keygate.Account, firstKey *keygate.Key, now time.Time) error {
	if a.ID == "" {
		a.ID = keygate.NewID(keygate.PrefixAccount, now)
	}
	a.Email = NormalizeEmail(a.Email)
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	if firstKey == nil {
		return nil
	}
	if firstKey.AccountID == "" {
		firstKey.AccountID = a.ID
	}
	if firstKey.AccountID != a.ID {
		return keygate.Errorf(keygate.EINVALID, "The first key must belong to the account being created (%s), not %s.", a.ID, firstKey.AccountID)
	}
	return PrepareKey(firstKey, now)
}

// NormalizeEmail returns email as stored and compared: trimmed, in lower
// case.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// PrepareTier sets t's zero times to now.
func PrepareTier(t *keygate.Tier, now time.Time) {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
}

// QuotaScope sets an empty t.QuotaScope to the default and returns it.
func QuotaScope(t *keygate.Tier) string {
	if t.QuotaScope == "" {
		t.QuotaScope = keygate.QuotaScopeAccount
	}
	return t.QuotaScope
}

// PrepareRootKey sets an empty r.ID to a new ID and a zero r.CreatedAt to
// now, and puts r's hash in lower case, refusing one that is not a SHA-256
// digest in hex.
func PrepareRootKey(r *keygate.RootKey, now time.Time) error {
	if r.ID == "" {
		r.ID = keygate.NewID(keygate.PrefixRootKey, now)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	hash, ok := CanonicalHash(r.Hash)
	if !ok {
		return BadHash("Root key", r.ID)
	}
	r.Hash = hash
	return nil
}

// PrepareSession checks sess, fills its ID and creation time, and puts its
// times in their stored form.
func PrepareSession(sess *keygate.Session, now time.Time) error {
	if err := sess.Validate(); err != nil {
		return err
	}
	if sess.ID == "" {
		sess.ID = keygate.NewID(keygate.PrefixSession, now)
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = now
	}
	sess.CreatedAt, sess.ExpiresAt = Stored(sess.CreatedAt), Stored(sess.ExpiresAt)
	sess.RevokedAt = StoredPtr(sess.RevokedAt)
	return nil
}

// PrepareEvent sets an empty ev.ID to a new ID and a zero ev.Time to now,
// and refuses details that are not valid JSON.
func PrepareEvent(ev *keygate.AuditEvent, now time.Time) error {
	if ev == nil {
		return keygate.Errorf(keygate.EINTERNAL, "An audit event passed to the store is nil.")
	}
	if ev.Time.IsZero() {
		ev.Time = now
	}
	if ev.ID == "" {
		ev.ID = keygate.NewID(keygate.PrefixAudit, ev.Time)
	}
	if len(ev.Details) > 0 && !json.Valid(ev.Details) {
		return keygate.Errorf(keygate.EINVALID, "The details of audit event %s are not valid JSON.", ev.ID)
	}
	return nil
}

// PrepareAccountUpdate readies a, the account an update's function
// returned, for writing over cur: the ID and creation time stay cur's, the
// email is put in lower case and the times in their stored form.
func PrepareAccountUpdate(a, cur *keygate.Account) {
	a.ID, a.CreatedAt = cur.ID, cur.CreatedAt
	a.Email = NormalizeEmail(a.Email)
	a.UpdatedAt = Stored(a.UpdatedAt)
	a.DisabledAt = StoredPtr(a.DisabledAt)
}

// PrepareEvents is PrepareEvent for each of evs.
func PrepareEvents(evs []*keygate.AuditEvent, now time.Time) error {
	for _, ev := range evs {
		if err := PrepareEvent(ev, now); err != nil {
			return err
		}
	}
	return nil
}
