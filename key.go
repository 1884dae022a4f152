package keygate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Env separates live keys from test keys. Test keys are visibly different
// (kg_test_…) and never count against live quotas.
type Env string

// The two key environments.
const (
	EnvLive Env = "live"
	EnvTest Env = "test"
)

// Valid reports whether e is live or test.
func (e Env) Valid() bool { return e == EnvLive || e == EnvTest }

// Hash algorithms a key's stored hash may use.
const (
	// HashKeygate is SHA-256 of the full key, or HMAC-SHA-256 under the
	// server's pepper when one is configured.
	HashKeygate = "keygate"
	// HashSHA256 is plain SHA-256 of the full key, for keys imported from
	// systems that stored them that way. Never peppered.
	HashSHA256 = "sha256"
)

// Limits on key fields.
const (
	MaxKeyNameLen = 200
	MaxScopes     = 100
	MaxIPAllow    = 100
	MaxMetaBytes  = 4096
)

// Key is an API key's record. The plaintext key is never stored: only its
// hash, for lookup, and Start and Last4, for display.
type Key struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	Name      string `json:"name"`
	Env       Env    `json:"env"`
	Start     string `json:"start"` // prefix, env and the first 4 secret characters
	Last4     string `json:"last4"`

	// Hash is the lower-case hex digest the key is looked up by; HashAlg
	// says how it was computed (HashKeygate or HashSHA256).
	Hash    string `json:"-"`
	HashAlg string `json:"-"`

	// Tier is the key's own tier; empty means it inherits the account's.
	Tier string `json:"tier,omitempty"`

	// Per-key overrides of the tier's limits; nil means the tier's value.
	QuotaPerDay   *int64   `json:"quota_per_day,omitempty"`
	RatePerSecond *float64 `json:"rate_per_second,omitempty"`
	Burst         *int64   `json:"burst,omitempty"`

	Scopes  []string        `json:"scopes"`
	IPAllow []string        `json:"ip_allow"`
	Meta    json.RawMessage `json:"meta,omitempty"`

	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Enabled   bool       `json:"enabled"`

	// RevokedAt is when the key stops working. A rotated key has it set to
	// the end of its grace period, which may lie in the future.
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedReason string     `json:"revoked_reason,omitempty"`
	RevokedBy     string     `json:"revoked_by,omitempty"`

	// ReplacedBy names the key that a rotation issued in this key's place;
	// Replaces names the key this one replaced.
	ReplacedBy string `json:"replaced_by,omitempty"`
	Replaces   string `json:"replaces,omitempty"`
	// LineageID is the ID of the first key of the rotation chain this key
	// belongs to; empty for a key that replaced none (its lineage is its own
	// ID). A replacement continues its lineage's quota counters, so that
	// rotating a key does not reset them. It never changes.
	LineageID string `json:"lineage_id,omitempty"`

	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Lineage returns the ID of the first key of k's rotation chain: the
// identity its own quota counters are kept under.
func (k *Key) Lineage() string {
	if k.LineageID != "" {
		return k.LineageID
	}
	return k.ID
}

// Status values of a key at a point in time.
const (
	StatusActive   = "active"
	StatusRevoked  = "revoked"
	StatusExpired  = "expired"
	StatusDisabled = "disabled"
)

// Status returns the key's status at now: revoked wins over expired, which
// wins over disabled.
func (k *Key) Status(now time.Time) string {
	switch {
	case k.RevokedAt != nil && !now.Before(*k.RevokedAt):
		return StatusRevoked
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return StatusExpired
	case !k.Enabled:
		return StatusDisabled
	}
	return StatusActive
}

// Clone returns a deep copy of k, so that the copy can be changed while
// readers hold the original. Empty and nil lists stay as they were.
func (k *Key) Clone() *Key {
	c := *k
	c.Scopes = slices.Clone(k.Scopes)
	c.IPAllow = slices.Clone(k.IPAllow)
	c.Meta = slices.Clone(k.Meta)
	for _, p := range []**time.Time{&c.ExpiresAt, &c.RevokedAt, &c.LastUsedAt} {
		if *p != nil {
			t := **p
			*p = &t
		}
	}
	for _, p := range []**int64{&c.QuotaPerDay, &c.Burst} {
		if *p != nil {
			v := **p
			*p = &v
		}
	}
	if c.RatePerSecond != nil {
		v := *c.RatePerSecond
		c.RatePerSecond = &v
	}
	return &c
}

// Validate normalizes k's scopes, CIDRs and metadata and reports the first
// problem with its client-settable fields as an EINVALID *Error.
func (k *Key) Validate() error {
	k.Name = strings.TrimSpace(k.Name)
	if len(k.Name) > MaxKeyNameLen {
		return Errorf(EINVALID, "name must be at most %d characters.", MaxKeyNameLen)
	}
	if err := CheckText("name", k.Name); err != nil {
		return err
	}
	if !k.Env.Valid() {
		return Errorf(EINVALID, "env %q is invalid: use \"live\" or \"test\".", k.Env)
	}
	if k.Tier != "" && !ValidTierName(k.Tier) {
		return Errorf(EINVALID, "tier %q is not a valid tier name.", k.Tier)
	}
	if k.QuotaPerDay != nil && (*k.QuotaPerDay < 1 || *k.QuotaPerDay > MaxQuotaPerDay) {
		return Errorf(EINVALID, "quota_per_day must be between 1 and %d.", int64(MaxQuotaPerDay))
	}
	if k.RatePerSecond != nil && (!(*k.RatePerSecond > 0) || *k.RatePerSecond > MaxRatePerSecond) {
		return Errorf(EINVALID, "rate_per_second must be greater than 0 and at most %d.", MaxRatePerSecond)
	}
	if k.Burst != nil && (*k.Burst < 1 || *k.Burst > MaxBurst) {
		return Errorf(EINVALID, "burst must be between 1 and %d.", MaxBurst)
	}
	scopes, err := NormalizeScopes(k.Scopes)
	if err != nil {
		return err
	}
	k.Scopes = scopes
	cidrs, err := NormalizeCIDRs(k.IPAllow)
	if err != nil {
		return err
	}
	k.IPAllow = cidrs
	meta, err := NormalizeMeta(k.Meta)
	if err != nil {
		return err
	}
	k.Meta = meta
	return nil
}

// MaxStartLen bounds the display hint of an imported key.
const MaxStartLen = 16

// ValidateImport checks a key issued elsewhere and imported by the SHA-256
// hex of its plaintext: the hash (lower-cased here), the owning account's
// ID and the display hint, then everything Validate checks; an empty Env
// becomes live. It never quotes the hash: a file may hold plaintext keys
// there by mistake. The server and `keygate import` (which checks rows
// before sending them, to name their lines) both call it, so a row is
// judged the same way on either side.
func (k *Key) ValidateImport() error {
	h := strings.ToLower(strings.TrimSpace(k.Hash))
	switch _, ok := ParseHash(h); {
	case h == "":
		return Errorf(EINVALID, "hash is empty; give the SHA-256 of the key as 64 hex characters.")
	case !ok && (len(h) != 64 || strings.ContainsAny(h, "_-")):
		return Errorf(EINVALID, "hash is not 64 hex characters (it has %d characters); give hex(sha256(key)), never the key itself.", len(h))
	case !ok:
		return Errorf(EINVALID, "hash is not hexadecimal; give the SHA-256 of the key as 64 hex characters.")
	}
	k.Hash = h
	if k.AccountID = strings.TrimSpace(k.AccountID); k.AccountID == "" {
		return Errorf(EINVALID, "account_id is empty; every key needs the account that owns it.")
	}
	if k.Start = strings.TrimSpace(k.Start); len(k.Start) > MaxStartLen {
		return Errorf(EINVALID, "start is a display hint of at most %d characters, never the whole key.", MaxStartLen)
	}
	if k.Env == "" {
		k.Env = EnvLive
	}
	return k.Validate()
}

// NormalizeCIDRs parses each entry as a CIDR or a bare address (taken as a
// single-address prefix) and returns them in canonical form.
func NormalizeCIDRs(in []string) ([]string, error) {
	if len(in) > MaxIPAllow {
		return nil, Errorf(EINVALID, "ip_allow holds at most %d entries.", MaxIPAllow)
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		p, err := ParseCIDR(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p.String())
	}
	return out, nil
}

// ParseCIDR parses an IPv4 or IPv6 CIDR, or a bare address as /32 or /128.
func ParseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, Errorf(EINVALID, "ip_allow entry %q is not a valid CIDR such as 203.0.113.0/24 or 2001:db8::/32.", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, Errorf(EINVALID, "ip_allow entry %q is not a valid CIDR such as 203.0.113.0/24 or 2001:db8::/32.", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// NormalizeMeta checks that meta is empty or a JSON object of at most
// MaxMetaBytes, and returns it compacted.
func NormalizeMeta(meta json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(meta)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil, nil
	}
	if trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, Errorf(EINVALID, "meta must be a JSON object, such as {\"plan\": \"beta\"}.")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, Errorf(EINVALID, "meta must be a JSON object, such as {\"plan\": \"beta\"}.")
	}
	if buf.Len() > MaxMetaBytes {
		return nil, Errorf(EINVALID, "meta is %d bytes; it may be at most %d bytes of JSON.", buf.Len(), MaxMetaBytes)
	}
	if err := CheckJSONText("meta", buf.Bytes()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Limits are the effective limits of one key: its tier's, with the key's
// overrides applied.
type Limits struct {
	QuotaPerDay   int64
	RatePerSecond float64
	Burst         int64
}

// EffectiveLimits returns t's limits with k's overrides applied.
func EffectiveLimits(k *Key, t *Tier) Limits {
	l := Limits{QuotaPerDay: t.QuotaPerDay, RatePerSecond: t.RatePerSecond, Burst: t.Burst}
	return l.Override(k.QuotaPerDay, k.RatePerSecond, k.Burst)
}

// Override returns l with each non-nil override in place of its figure:
// a key's own quota, rate and burst over its tier's.
func (l Limits) Override(quotaPerDay *int64, ratePerSecond *float64, burst *int64) Limits {
	if quotaPerDay != nil {
		l.QuotaPerDay = *quotaPerDay
	}
	if ratePerSecond != nil {
		l.RatePerSecond = *ratePerSecond
	}
	if burst != nil {
		l.Burst = *burst
	}
	return l
}

// ParseHash decodes a key hash as stored and imported: a SHA-256 digest as
// 64 hex characters, in either case. ok is false for anything else.
func ParseHash(h string) (sum [sha256.Size]byte, ok bool) {
	if len(h) != 2*sha256.Size {
		return sum, false
	}
	_, err := hex.Decode(sum[:], []byte(h))
	return sum, err == nil
}
