package sqlstore

import (
	"errors"
	"fmt"

	"github.com/keygate/keygate"
)

// The errors both stores return, with the messages the caller sees. The
// store decides when (which constraint a violation names, which read found
// no row); cause, where taken, is the driver's error, kept for the log.

func conflict(cause error, format string, args ...any) error {
	return &keygate.Error{Code: keygate.ECONFLICT, Message: fmt.Sprintf(format, args...), Err: cause}
}

// KeyNotFound is the error for a key ID that names no key.
func KeyNotFound(id string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "No key with id %q exists.", id)
}

// KeyHashTaken is the error for a key whose hash is already stored.
func KeyHashTaken(cause error) error {
	return conflict(cause, "A key with the same hash is already stored; issue a new key instead of reusing one.")
}

// KeyIDTaken is the error for a key whose ID is already stored.
func KeyIDTaken(cause error, id string) error {
	return conflict(cause, "A key with id %q already exists.", id)
}

// KeyAccountMissing is the error for a key whose account does not exist.
func KeyAccountMissing(cause error, accountID string) error {
	return &keygate.Error{Code: keygate.ENOTFOUND, Err: cause,
		Message: fmt.Sprintf("Account %q does not exist; create the account before its keys.", accountID)}
}

// NoReplacement is the error for a rotation whose function returned no
// replacement key.
func NoReplacement(id string) error {
	return keygate.Errorf(keygate.EINTERNAL, "Rotating key %s produced no replacement.", id)
}

// ImportError prefixes the message of a *keygate.Error about key i of an
// import with the key's position and ID, so the operator can find it.
func ImportError(i int, k *keygate.Key, err error) error {
	var kerr *keygate.Error
	if errors.As(err, &kerr) {
		return &keygate.Error{Code: kerr.Code, Message: fmt.Sprintf("Key %d of the import (%s): %s", i, k.ID, kerr.Message), Err: err}
	}
	return err
}

// AccountNotFound is the error for an account ID that names no account.
func AccountNotFound(id string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "No account with id %q exists.", id)
}

// NoAccountWith is the error for an account looked up by column (id,
// email) and found by none.
func NoAccountWith(column, value string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "No account with %s %q exists.", column, value)
}

// AccountEmailTaken is the error for an account whose email another
// account has.
func AccountEmailTaken(cause error, email string) error {
	return conflict(cause, "An account with email %q already exists; log in, or use another address.", email)
}

// AccountIDTaken is the error for an account whose ID is already stored.
func AccountIDTaken(cause error, id string) error {
	return conflict(cause, "An account with id %q already exists.", id)
}

// TierNotFound is the error for a tier name that names no tier.
func TierNotFound(name string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "No tier named %q exists.", name)
}

// UnknownTier is the error for a record that names a tier that does not
// exist: the request, not the URL, is wrong, so it is EINVALID.
func UnknownTier(name string) error { return TierMissing(nil, name) }

// TierMissing is UnknownTier for a write the database refused (cause).
func TierMissing(cause error, name string) error {
	return &keygate.Error{Code: keygate.EINVALID, Err: cause,
		Message: fmt.Sprintf("Tier %q does not exist; create it first, or pick an existing tier.", name)}
}

// TierTaken is the error for a tier whose name is already stored.
func TierTaken(cause error, name string) error {
	return conflict(cause, "A tier named %q already exists; choose another name, or update that tier.", name)
}

// TierInUse is the error for deleting a tier that accounts or keys are on.
func TierInUse(name string, accounts, keys int64) error {
	return keygate.Errorf(keygate.ECONFLICT,
		"Tier %q is still used by %d account(s) and %d key(s); move them to another tier before deleting it.",
		name, accounts, keys)
}

// RootKeyNotFound is the error for a root key ID that names no root key.
func RootKeyNotFound(id string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "No root key with id %q exists.", id)
}

// RootKeyHashTaken is the error for a root key whose hash is already
// stored.
func RootKeyHashTaken(cause error) error {
	return conflict(cause, "A root key with the same hash is already stored; issue a new root key.")
}

// RootKeyIDTaken is the error for a root key whose ID is already stored.
func RootKeyIDTaken(cause error, id string) error {
	return conflict(cause, "A root key with id %q already exists.", id)
}

// AuditEventIDTaken is the error for an audit event whose ID is already
// stored.
func AuditEventIDTaken(cause error, id string) error {
	return conflict(cause, "An audit event with id %q already exists.", id)
}

// InviteNotFound is the error for an invitation ID that names none.
func InviteNotFound(id string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "There is no invitation %q.", id)
}

// NoInviteCode is the error for an invitation code that matches none.
func NoInviteCode() error { return keygate.Errorf(keygate.ENOTFOUND, "No invitation has that code.") }

// InviteTaken is the error for an invitation whose ID or code is already
// stored.
func InviteTaken(cause error) error {
	return conflict(cause, "An invitation with that id or code is already stored.")
}

// SessionTaken is the error for a session whose ID or token is already
// stored.
func SessionTaken(cause error) error { return conflict(cause, "The session already exists.") }

// SessionOwnerMissing is the error for a session whose account or root key
// does not exist.
func SessionOwnerMissing(cause error) error {
	return &keygate.Error{Code: keygate.ENOTFOUND, Message: "The session's account or root key does not exist.", Err: cause}
}

// NoSession is the error for a token hash that names no session.
func NoSession() error { return keygate.Errorf(keygate.ENOTFOUND, "No such session.") }

// SessionNotFound is the error for a session ID that names none.
func SessionNotFound(id string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "No session with id %q exists.", id)
}

// WebhookNotFound is the error for a webhook ID that names no endpoint.
func WebhookNotFound(id string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "There is no webhook %q.", id)
}

// WebhookIDTaken is the error for a webhook whose ID is already stored.
func WebhookIDTaken(id string) error {
	return keygate.Errorf(keygate.ECONFLICT, "A webhook with id %q already exists.", id)
}

// DeliveryNotFound is the error for a delivery ID that names none.
func DeliveryNotFound(id string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "There is no webhook delivery %q.", id)
}

// PendingDeliveryNotFound is the error for an attempt recorded on a
// delivery that does not exist or is no longer pending.
func PendingDeliveryNotFound(id string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "There is no pending webhook delivery %q.", id)
}
