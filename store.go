package keygate

import (
	"context"
	"errors"
	"time"
)

// ErrUnchanged is returned by the function passed to a conditional write
// (Store.UpdateKey and the like) to say that the record needs no change:
// the store then writes nothing and returns the record as read.
var ErrUnchanged = errors.New("keygate: record unchanged")

// DefaultPageSize and MaxPageSize bound list results.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// AccountFilter selects accounts. Results are in creation order; After is the
// cursor (the last ID of the previous page).
type AccountFilter struct {
	Email string
	Tier  string
	After string
	Limit int
}

// KeyFilter selects keys. Results are in creation order; After is the cursor
// (the last ID of the previous page). Status, when set, is judged at Now.
type KeyFilter struct {
	AccountID string
	Start     string // the key's start (prefix, env, first 4 secret characters), as displayed
	Tier      string // the key's own tier; keys that inherit have ""
	Env       Env
	Status    string // StatusActive, StatusRevoked, StatusExpired, StatusDisabled
	Now       time.Time
	After     string
	Limit     int
}

// AuditFilter selects audit events. Results are newest first; Before is the
// cursor (the last ID of the previous page).
type AuditFilter struct {
	Actor      string
	Action     string
	TargetType string
	TargetID   string
	Since      time.Time // inclusive; zero means no bound
	Until      time.Time // exclusive; zero means no bound
	Before     string
	Limit      int
}

// Counter is a request count for one UTC day ("2006-01-02"). KeyID is the
// counter's identity (see CounterID): a key's lineage ID, or an account
// ID for tiers counted per account.
type Counter struct {
	KeyID string
	Day   string
	Count int64
}

// ChangeKind names what a Change is about.
type ChangeKind string

// Kinds of change.
const (
	ChangeKey     ChangeKind = "key"
	ChangeAccount ChangeKind = "account"
	ChangeTier    ChangeKind = "tier"
	ChangeRootKey ChangeKind = "root_key"
)

// Change tells a listener that a record was written. ID is the record's ID
// (the name, for tiers). Key carries the key as written when the writer has
// it, so the listener need not read it back; a listener must treat it as
// read-only.
type Change struct {
	Kind ChangeKind
	ID   string
	Key  *Key
}

// Store is durable state: accounts, tiers, keys, root keys, audit events and
// daily counters. Every write is committed before the method returns, and
// the audit events passed with a write are committed in the same
// transaction. Errors are *Error with ENOTFOUND, ECONFLICT or EINVALID where
// the caller can act on them, EUNAVAILABLE when the backend is unreachable.
//
// Conditional writes: every read-modify-write (UpdateKey, RotateKey,
// UpdateAccount, UpdateTier, RevokeRootKey) reads the record and writes it
// back in one transaction that holds the record against every other
// writer, in this process or another, until it commits: a change made
// meanwhile by another writer is never overwritten with a stale copy. The
// function passed in runs inside that transaction, so it must be quick and
// must not call the store. It changes the record in place and returns the
// audit events describing the change, which commit with it; when it
// returns an error, nothing is written and the method returns that error,
// except ErrUnchanged, after which the method returns the record as read
// and a nil error.
//
// After each committed write the store calls every function registered
// with OnChange, synchronously, once per changed record, so that in-memory
// indexes are current before the writing call returns. Notifications of
// concurrent writes may arrive out of order; a listener that keeps keys
// compares UpdatedAt.
type Store interface {
	UsageStore
	WebhookStore
	InviteStore
	SessionStore

	CreateTier(ctx context.Context, t *Tier, ev ...*AuditEvent) error
	// UpdateTier reads the named tier and calls fn with it in a transaction
	// that no other writer can interleave with (see "Conditional writes"),
	// then stores the limits fn set. ENOTFOUND if the tier does not exist.
	UpdateTier(ctx context.Context, name string, fn func(*Tier) ([]*AuditEvent, error)) (*Tier, error)
	// DeleteTier deletes a tier; ECONFLICT while an account or a key uses it.
	DeleteTier(ctx context.Context, name string, ev ...*AuditEvent) error
	Tier(ctx context.Context, name string) (*Tier, error)
	Tiers(ctx context.Context) ([]*Tier, error)

	// CreateAccount creates a and, when firstKey is not nil, that key, in one
	// transaction. ECONFLICT if the email is taken, EINVALID if the tier
	// does not exist.
	CreateAccount(ctx context.Context, a *Account, firstKey *Key, ev ...*AuditEvent) error
	// UpdateAccount reads the account and calls fn with it in a
	// transaction that no other writer can interleave with, then stores the
	// name, email, tier, password hash, disabled time and operator flag fn
	// set. ENOTFOUND if the account
	// does not exist, ECONFLICT if another account has the new email,
	// EINVALID if the new tier does not exist.
	UpdateAccount(ctx context.Context, id string, fn func(*Account) ([]*AuditEvent, error)) (*Account, error)
	Account(ctx context.Context, id string) (*Account, error)
	AccountByEmail(ctx context.Context, email string) (*Account, error)
	Accounts(ctx context.Context, f AccountFilter) ([]*Account, error)

	// CreateKey stores k. ENOTFOUND if the account does not exist, EINVALID
	// if its tier does not exist, ECONFLICT if its hash is already stored.
	CreateKey(ctx context.Context, k *Key, ev ...*AuditEvent) error
	// UpdateKey reads the key and calls fn with it in a transaction that no
	// other writer can interleave with, then stores every mutable field fn
	// set (the ID, account, env, hash, start, last4, replaces and creation
	// time never change) and returns the key as stored. ENOTFOUND if the
	// key does not exist, EINVALID if the new tier does not exist.
	UpdateKey(ctx context.Context, id string, fn func(*Key) ([]*AuditEvent, error)) (*Key, error)
	// RotateKey reads the key and calls fn with it in a transaction that no
	// other writer can interleave with; fn changes the old key in place and
	// returns its replacement. The store updates the old key (as UpdateKey
	// does) and creates the replacement (as CreateKey does) in that
	// transaction, and returns both as stored.
	RotateKey(ctx context.Context, id string, fn func(old *Key) (replacement *Key, evs []*AuditEvent, err error)) (old, replacement *Key, err error)
	// ImportKeys stores keys, skipping any whose hash is already stored,
	// and returns how many it inserted.
	ImportKeys(ctx context.Context, keys []*Key, ev ...*AuditEvent) (int, error)
	Key(ctx context.Context, id string) (*Key, error)
	Keys(ctx context.Context, f KeyFilter) ([]*Key, error)
	// CountKeys returns how many of the account's keys are not revoked (a
	// rotated key in its grace period is not counted).
	CountKeys(ctx context.Context, accountID string) (int, error)
	// ForEachKey calls fn for every stored key, in no particular order,
	// stopping at fn's first error.
	ForEachKey(ctx context.Context, fn func(*Key) error) error

	CreateRootKey(ctx context.Context, r *RootKey, ev ...*AuditEvent) error
	// RevokeRootKey reads the root key and calls fn with it and the number
	// of other unrevoked root keys that hold admin:write, in a transaction
	// that no other root key revocation, in any process, can interleave
	// with: the count stays true until the revocation commits, so that fn
	// can refuse to revoke the last key that can administer keygate and
	// two concurrent revocations cannot remove the last two. fn sets
	// RevokedAt; the store writes it and returns the root key as stored.
	// ENOTFOUND if there is no such key.
	RevokeRootKey(ctx context.Context, id string, fn func(r *RootKey, otherAdminWriters int) ([]*AuditEvent, error)) (*RootKey, error)
	RootKey(ctx context.Context, id string) (*RootKey, error)
	RootKeys(ctx context.Context) ([]*RootKey, error)

	AuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)

	// SaveCounters upserts counters, keeping the larger count when one is
	// already stored for the same key and day.
	SaveCounters(ctx context.Context, cs []Counter) error
	// Counters returns every counter stored for day.
	Counters(ctx context.Context, day string) ([]Counter, error)

	// ChangedSince returns a Change for every key, account and tier whose
	// UpdatedAt is at or after since, and every root key created or
	// revoked at or after since; key changes carry the key. Records are
	// judged by the times their writers gave them, so an instance that
	// catches up on other instances' writes with it (engine.Engine.Sync)
	// asks from a little before its last catch-up.
	ChangedSince(ctx context.Context, since time.Time) ([]Change, error)

	// OnChange registers fn to be called after each committed write and
	// returns a function that unregisters it: once that has returned, no
	// later write calls fn (a notification already under way may finish).
	OnChange(fn func(Change)) (remove func())
	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
	Close() error
}
