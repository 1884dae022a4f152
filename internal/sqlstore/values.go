package sqlstore

import (
	"encoding/json"
	"time"

	"github.com/keygate/keygate"
)

// Stored returns t as both stores keep it: in UTC, to the millisecond.
func Stored(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// StoredPtr is Stored for an optional time.
func StoredPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := Stored(*t)
	return &u
}

// List returns l, or an empty list for nil: list columns are never NULL,
// and a stored list reads back as [] rather than nil.
func List(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// NullString returns s for a nullable text column, or nil (NULL) when s is
// empty.
func NullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// NullJSON returns raw as text for a nullable JSON column, or nil (NULL)
// when raw is empty or JSON null.
func NullJSON(raw json.RawMessage) any {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return string(raw)
}

// KeyChange returns the Change for a key just inserted: a copy of k as the
// store keeps it, so that the listener sees what the store's Key would
// return and the caller may go on changing k.
func KeyChange(k *keygate.Key) keygate.Change {
	c := k.Clone()
	c.Scopes, c.IPAllow = List(c.Scopes), List(c.IPAllow)
	if len(c.Meta) == 0 || string(c.Meta) == "null" {
		c.Meta = nil
	}
	c.ExpiresAt, c.RevokedAt, c.LastUsedAt = StoredPtr(c.ExpiresAt), StoredPtr(c.RevokedAt), StoredPtr(c.LastUsedAt)
	c.CreatedAt, c.UpdatedAt = Stored(c.CreatedAt), Stored(c.UpdatedAt)
	return keygate.Change{Kind: keygate.ChangeKey, ID: c.ID, Key: c}
}
