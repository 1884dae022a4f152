package keygate

import (
	"encoding/json"
	"time"
)

// Audit actions.
const (
	ActionKeyCreated      = "key.created"
	ActionKeyUpdated      = "key.updated"
	ActionKeyRotated      = "key.rotated"
	ActionKeyRevoked      = "key.revoked"
	ActionKeyEnabled      = "key.enabled"
	ActionKeyDisabled     = "key.disabled"
	ActionKeysImported    = "keys.imported"
	ActionAccountCreated  = "account.created"
	ActionAccountUpdated  = "account.updated"
	ActionTierCreated     = "tier.created"
	ActionTierUpdated     = "tier.updated"
	ActionTierDeleted     = "tier.deleted"
	ActionRootKeyCreated  = "root_key.created"
	ActionRootKeyRevoked  = "root_key.revoked"
	ActionAccountRegister = "account.registered"
	ActionAccountDisabled = "account.disabled"
	ActionAccountEnabled  = "account.enabled"
	// ActionAccountPassword records a change of the account's portal
	// password; the details never hold the password or its hash.
	ActionAccountPassword = "account.password_changed"
	// ActionKeyExposed records a key seen in a request's URL (refused with
	// KEY_IN_QUERY): it may sit in access logs and browser histories, so
	// its owner should rotate it.
	ActionKeyExposed = "key.exposed"
	// ActionKeyLeaked and ActionRootKeyLeaked record a key a secret
	// scanner reported found in public (it is revoked in the same write).
	ActionKeyLeaked     = "key.leaked"
	ActionRootKeyLeaked = "root_key.leaked"
)

// Audit target types.
const (
	TargetKey     = "key"
	TargetAccount = "account"
	TargetTier    = "tier"
	TargetRootKey = "root_key"
)

// AuditEvent records one change to keys, accounts, tiers or root keys. It
// never holds a plaintext key: keys appear by ID and start.
type AuditEvent struct {
	ID         string          `json:"id"`
	Time       time.Time       `json:"time"`
	Actor      string          `json:"actor"` // e.g. "root_key:rk_…", "account:acc_…", "system"
	Action     string          `json:"action"`
	TargetType string          `json:"target_type"`
	TargetID   string          `json:"target_id"`
	Details    json.RawMessage `json:"details,omitempty"`
}
