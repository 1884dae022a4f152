package keygate

import (
	"regexp"
	"time"
)

// Built-in tiers, seeded into every new store.
const (
	TierFree = "free"
	TierPro  = "pro"
)

// Quota scopes: what a tier's daily quota and rate are counted per.
const (
	// QuotaScopeAccount counts the requests of all of an account's keys
	// together, so that making more keys does not multiply the quota. The
	// default for new tiers.
	QuotaScopeAccount = "account"
	// QuotaScopeKey counts each key (with the keys it was rotated from)
	// on its own.
	QuotaScopeKey = "key"
)

// Tier limits: anything outside these bounds is refused as absurd.
const (
	MaxQuotaPerDay   = 1_000_000_000_000
	MaxRatePerSecond = 1_000_000
	MaxBurst         = 10_000_000
)

// Tier is a usage plan: how many requests a key — or all of an account's
// keys, by QuotaScope — may make per UTC day, and at what sustained rate
// and burst. A change to a tier applies at once to
// every key on it.
type Tier struct {
	Name          string  `json:"name"`
	QuotaPerDay   int64   `json:"quota_per_day"`
	RatePerSecond float64 `json:"rate_per_second"`
	Burst         int64   `json:"burst"`
	// QuotaScope is QuotaScopeAccount or QuotaScopeKey: whether the daily
	// quota and the rate are counted per account or per key. A key with
	// limits of its own (quota_per_day, rate_per_second or burst) is always
	// counted on its own.
	QuotaScope string    `json:"quota_scope"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// DefaultTiers returns the tiers every new store starts with.
func DefaultTiers(now time.Time) []*Tier {
	return []*Tier{
		{Name: TierFree, QuotaPerDay: 1_000, RatePerSecond: 5, Burst: 10, QuotaScope: QuotaScopeAccount, CreatedAt: now, UpdatedAt: now},
		{Name: TierPro, QuotaPerDay: 100_000, RatePerSecond: 100, Burst: 200, QuotaScope: QuotaScopeAccount, CreatedAt: now, UpdatedAt: now},
	}
}

var tierNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// ValidTierName reports whether name is a well-formed tier name.
func ValidTierName(name string) bool { return tierNameRE.MatchString(name) }

// Validate reports the first problem with t as an EINVALID *Error. An
// empty QuotaScope becomes QuotaScopeAccount.
func (t *Tier) Validate() error {
	if !ValidTierName(t.Name) {
		return Errorf(EINVALID, "Tier name %q is invalid: use 1-32 lower-case letters, digits, '-' or '_', starting with a letter.", t.Name)
	}
	switch t.QuotaScope {
	case "":
		t.QuotaScope = QuotaScopeAccount
	case QuotaScopeAccount, QuotaScopeKey:
	default:
		return Errorf(EINVALID, "quota_scope %q is invalid: use \"account\" (all of an account's keys share the quota) or \"key\" (each key has its own).", t.QuotaScope)
	}
	return ValidateLimits(t.QuotaPerDay, t.RatePerSecond, t.Burst)
}

// ValidateLimits checks a quota, rate and burst against keygate's bounds.
func ValidateLimits(quota int64, rate float64, burst int64) error {
	switch {
	case quota < 1 || quota > MaxQuotaPerDay:
		return Errorf(EINVALID, "quota_per_day must be between 1 and %d.", int64(MaxQuotaPerDay))
	case !(rate > 0) || rate > MaxRatePerSecond: // !(rate > 0) also catches NaN
		return Errorf(EINVALID, "rate_per_second must be greater than 0 and at most %d.", MaxRatePerSecond)
	case burst < 1 || burst > MaxBurst:
		return Errorf(EINVALID, "burst must be between 1 and %d.", MaxBurst)
	}
	return nil
}

// CounterID returns the identity a limiter counts a key's requests under,
// for its rate bucket and its daily quota: the account's ID when scope is
// QuotaScopeAccount and the key has no limits of its own (with ":test"
// appended for test keys, which never count against live quotas), and
// otherwise the key's lineage ID (Key.Lineage), which a rotated key shares
// with the key it replaced.
func CounterID(scope, accountID string, env Env, lineage string, ownLimits bool) string {
	if scope == QuotaScopeAccount && !ownLimits {
		if env == EnvTest {
			return accountID + ":test"
		}
		return accountID
	}
	return lineage
}
