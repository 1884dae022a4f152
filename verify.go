package keygate

import (
	"encoding/json"
	"net/netip"
	"time"
)

// VerifyRequest asks whether a presented key may make a request.
type VerifyRequest struct {
	// Key is the presented key, exactly as sent. Empty means none was sent.
	Key string
	// Scopes are required: the key must hold (or a wildcard must grant)
	// every one.
	Scopes []string
	// IP is the end client's address; the zero Addr skips the IP checks.
	IP netip.Addr
}

// VerifiedKey is what a verification tells of the key it found: the fields
// of Key that the verification index keeps in memory for every key. The
// full record (hash, start, timestamps, revocation details) is read from
// the store.
type VerifiedKey struct {
	ID        string
	AccountID string
	Name      string
	Env       Env
	// Tier is the key's own tier; empty means it inherits the account's.
	Tier      string
	Scopes    []string
	Meta      json.RawMessage
	ExpiresAt *time.Time
}

// Verification is the verdict on one VerifyRequest. Key, Account and Tier
// are set whenever the key was found, even when the outcome is a refusal,
// and must be treated as read-only.
type Verification struct {
	Outcome Outcome
	Key     *VerifiedKey
	Account *Account
	Tier    *Tier

	// MissingScope names the scope the key lacks, for INSUFFICIENT_SCOPE.
	MissingScope string

	// Limits carries the rate and quota figures when HasLimits is true:
	// for every found, usable key, whether or not the limits were hit.
	Limits    LimitResult
	HasLimits bool
}

// Valid reports whether the request may pass.
func (v *Verification) Valid() bool { return v.Outcome == OutcomeValid }
