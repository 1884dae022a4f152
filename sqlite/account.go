package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/keygate/keygate"
)

const accountColumns = `id, name, email, tier, password_hash, created_at, updated_at, disabled_at, operator`

// CreateAccount stores a and, when firstKey is not nil, that key, in one
// transaction. It sets an empty a.ID to a new ID, zero times to Now, a's
// email to lower case, and an empty firstKey.AccountID to a.ID. ECONFLICT
// if the email is taken, EINVALID if a tier does not exist.
func (s *Store) CreateAccount(ctx context.Context, a *keygate.Account, firstKey *keygate.Key, ev ...*keygate.AuditEvent) error {
	now := s.now()
	if a.ID == "" {
		a.ID = keygate.NewID(keygate.PrefixAccount, now)
	}
	a.Email = normalizeEmail(a.Email)
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	if firstKey != nil {
		if firstKey.AccountID == "" {
			firstKey.AccountID = a.ID
		}
		if firstKey.AccountID != a.ID {
			return keygate.Errorf(keygate.EINVALID, "The first key must belong to the account being created (%s), not %s.", a.ID, firstKey.AccountID)
		}
		if err := prepareKey(firstKey, now); err != nil {
			return err
		}
	}
	return s.write(ctx, "create account", ev, func(tx *sql.Tx) ([]keygate.Change, error) {
		if err := tierExists(ctx, tx, a.Tier, unknownTier); err != nil {
			return nil, err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO accounts (`+accountColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Name, a.Email, a.Tier, a.PasswordHash, millis(a.CreatedAt), millis(a.UpdatedAt), nullMillis(a.DisabledAt), a.Operator)
		if err != nil {
			return nil, accountConflict(err, a)
		}
		changes := []keygate.Change{{Kind: keygate.ChangeAccount, ID: a.ID}}
		if firstKey != nil {
			if err := insertKey(ctx, tx, firstKey); err != nil {
				return nil, err
			}
			changes = append(changes, keyChange(firstKey))
		}
		return changes, nil
	})
}

// UpdateAccount reads the account with the given id and calls fn with a
// copy of it inside the write transaction, then stores the name, email
// (in lower case), tier, password hash, disabled time and operator flag fn
// set, with the audit events fn returns. ENOTFOUND if
// the account does not exist, ECONFLICT if another account has the email,
// EINVALID if the tier does not exist; fn's error as it is, except
// keygate.ErrUnchanged, after which nothing is written.
func (s *Store) UpdateAccount(ctx context.Context, id string, fn func(*keygate.Account) ([]*keygate.AuditEvent, error)) (*keygate.Account, error) {
	var out *keygate.Account
	err := s.write(ctx, "update account", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		cur, err := scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, accountNotFound(id)
		}
		if err != nil {
			return nil, err
		}
		a := *cur
		evs, err := fn(&a)
		if errors.Is(err, keygate.ErrUnchanged) {
			out = cur
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		a.ID, a.CreatedAt = cur.ID, cur.CreatedAt
		a.Email = normalizeEmail(a.Email)
		a.UpdatedAt = stored(a.UpdatedAt)
		a.DisabledAt = storedPtr(a.DisabledAt)
		if err := tierExists(ctx, tx, a.Tier, unknownTier); err != nil {
			return nil, err
		}
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET name = ?, email = ?, tier = ?, password_hash = ?, updated_at = ?,
			disabled_at = ?, operator = ? WHERE id = ?`,
			a.Name, a.Email, a.Tier, a.PasswordHash, millis(a.UpdatedAt), nullMillis(a.DisabledAt), a.Operator, a.ID)
		if err != nil {
			return nil, accountConflict(err, &a)
		}
		if err := s.insertEvents(ctx, tx, evs); err != nil {
			return nil, err
		}
		out = &a
		return []keygate.Change{{Kind: keygate.ChangeAccount, ID: a.ID}}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Account returns the account with the given ID; ENOTFOUND if there is none.
func (s *Store) Account(ctx context.Context, id string) (*keygate.Account, error) {
	return s.account(ctx, "id", id)
}

// AccountByEmail returns the account with the given email, compared without
// regard to case; ENOTFOUND if there is none.
func (s *Store) AccountByEmail(ctx context.Context, email string) (*keygate.Account, error) {
	return s.account(ctx, "email", normalizeEmail(email))
}

func (s *Store) account(ctx context.Context, column, value string) (*keygate.Account, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	a, err := scanAccount(s.rdb.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE `+column+` = ?`, value))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keygate.Errorf(keygate.ENOTFOUND, "No account with %s %q exists.", column, value)
	}
	if err != nil {
		return nil, s.fail("get account", err)
	}
	return a, nil
}

// Accounts returns the accounts f selects, in ID (creation) order.
func (s *Store) Accounts(ctx context.Context, f keygate.AccountFilter) ([]*keygate.Account, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	var w where
	if f.Email != "" {
		w.add("email = ?", normalizeEmail(f.Email))
	}
	if f.Tier != "" {
		w.add("tier = ?", f.Tier)
	}
	if f.After != "" {
		w.add("id > ?", f.After)
	}
	return queryAll(ctx, s, "list accounts", `SELECT `+accountColumns+` FROM accounts`+w.String()+` ORDER BY id LIMIT ?`,
		append(w.args, pageSize(f.Limit)), scanAccount)
}

func scanAccount(sc scanner) (*keygate.Account, error) {
	var a keygate.Account
	var created, updated int64
	var disabled sql.NullInt64
	if err := sc.Scan(&a.ID, &a.Name, &a.Email, &a.Tier, &a.PasswordHash, &created, &updated, &disabled, &a.Operator); err != nil {
		return nil, err
	}
	a.CreatedAt = fromMillis(created)
	a.UpdatedAt = fromMillis(updated)
	a.DisabledAt = fromNullMillis(disabled)
	return &a, nil
}

func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func accountNotFound(id string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "No account with id %q exists.", id)
}

// accountConflict explains a failed insert or update of a.
func accountConflict(err error, a *keygate.Account) error {
	switch {
	case uniqueViolation(err, "accounts.email"):
		return &keygate.Error{Code: keygate.ECONFLICT, Err: err,
			Message: "An account with email \"" + a.Email + "\" already exists; log in, or use another address."}
	case uniqueViolation(err, "accounts.id"):
		return &keygate.Error{Code: keygate.ECONFLICT, Err: err,
			Message: "An account with id \"" + a.ID + "\" already exists."}
	case foreignKeyViolation(err):
		return &keygate.Error{Code: keygate.EINVALID, Err: err,
			Message: "Tier \"" + a.Tier + "\" does not exist; create it first, or pick an existing tier."}
	}
	return err
}
