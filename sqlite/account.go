package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

const accountColumns = `id, name, email, tier, password_hash, created_at, updated_at, disabled_at, operator`

// CreateAccount stores a and, when firstKey is not nil, that key, in one
// transaction. It sets an empty a.ID to a new ID, zero times to Now, a's
// email to lower case, and an empty firstKey.AccountID to a.ID. ECONFLICT
// if the email is taken, EINVALID if a tier does not exist.
func (s *Store) CreateAccount(ctx context.Context, a *keygate.Account, firstKey *keygate.Key, ev ...*keygate.AuditEvent) error {
	if err := sqlstore.PrepareAccount(a, firstKey, s.now()); err != nil {
		return err
	}
	return s.write(ctx, "create account", ev, func(tx *sql.Tx) ([]keygate.Change, error) {
		if err := tierExists(ctx, tx, a.Tier, sqlstore.UnknownTier); err != nil {
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
			changes = append(changes, sqlstore.KeyChange(firstKey))
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
			return nil, sqlstore.AccountNotFound(id)
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
		sqlstore.PrepareAccountUpdate(&a, cur)
		if err := tierExists(ctx, tx, a.Tier, sqlstore.UnknownTier); err != nil {
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
	return s.account(ctx, "email", sqlstore.NormalizeEmail(email))
}

func (s *Store) account(ctx context.Context, column, value string) (*keygate.Account, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	a, err := scanAccount(s.rdb.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE `+column+` = ?`, value))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sqlstore.NoAccountWith(column, value)
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
	w := sqlstore.AccountFilter(dialect, f)
	return queryAll(ctx, s, "list accounts", `SELECT `+accountColumns+` FROM accounts`+w.String()+` ORDER BY id LIMIT `+w.Next(sqlstore.PageSize(f.Limit)),
		w.Args(), scanAccount)
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

// accountConflict explains a failed insert or update of a.
func accountConflict(err error, a *keygate.Account) error {
	switch {
	case uniqueViolation(err, "accounts.email"):
		return sqlstore.AccountEmailTaken(err, a.Email)
	case uniqueViolation(err, "accounts.id"):
		return sqlstore.AccountIDTaken(err, a.ID)
	case foreignKeyViolation(err):
		return sqlstore.TierMissing(err, a.Tier)
	}
	return err
}
