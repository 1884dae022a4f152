package postgres

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"

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
	return s.write(ctx, "create account", false, ev, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		_, err := tx.Exec(ctx, `INSERT INTO accounts (`+accountColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			a.ID, a.Name, a.Email, a.Tier, a.PasswordHash, ms(a.CreatedAt), ms(a.UpdatedAt), msPtr(a.DisabledAt), a.Operator)
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

// UpdateAccount reads the account with SELECT … FOR UPDATE, which holds it
// against every other writer until the transaction commits, calls fn with
// a copy, and stores the name, email (in lower case), tier, password hash,
// disabled time, operator flag and UpdatedAt fn set, with the audit events fn returns. ENOTFOUND if the
// account does not exist, ECONFLICT if another account has the email,
// EINVALID if the tier does not exist; fn's error as it is, except
// keygate.ErrUnchanged, after which nothing is written.
func (s *Store) UpdateAccount(ctx context.Context, id string, fn func(*keygate.Account) ([]*keygate.AuditEvent, error)) (*keygate.Account, error) {
	var out *keygate.Account
	err := s.write(ctx, "update account", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		cur, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
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
		a.UpdatedAt = ms(a.UpdatedAt)
		a.DisabledAt = msPtr(a.DisabledAt)
		_, err = tx.Exec(ctx, `UPDATE accounts SET name = $1, email = $2, tier = $3, password_hash = $4, updated_at = $5,
			disabled_at = $6, operator = $7 WHERE id = $8`,
			a.Name, a.Email, a.Tier, a.PasswordHash, a.UpdatedAt, a.DisabledAt, a.Operator, a.ID)
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
	bctx, cancel := s.bound(ctx)
	defer cancel()
	a, err := scanAccount(s.pool.QueryRow(bctx, `SELECT `+accountColumns+` FROM accounts WHERE `+column+` = $1`, value))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, keygate.Errorf(keygate.ENOTFOUND, "No account with %s %q exists.", column, value)
	}
	if err != nil {
		return nil, s.fail(ctx, "get account", err)
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
	bctx, cancel := s.bound(ctx)
	defer cancel()
	q := `SELECT ` + accountColumns + ` FROM accounts` + w.String() + ` ORDER BY id LIMIT ` + w.next(pageSize(f.Limit))
	out, err := queryAll(bctx, s.pool, scanAccount, q, w.args...)
	if err != nil {
		return nil, s.fail(ctx, "list accounts", err)
	}
	return out, nil
}

func scanAccount(row pgx.Row) (*keygate.Account, error) {
	var a keygate.Account
	if err := row.Scan(&a.ID, &a.Name, &a.Email, &a.Tier, &a.PasswordHash, &a.CreatedAt, &a.UpdatedAt, &a.DisabledAt, &a.Operator); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	a.DisabledAt = utcPtr(a.DisabledAt)
	return &a, nil
}

func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func accountNotFound(id string) error {
	return keygate.Errorf(keygate.ENOTFOUND, "No account with id %q exists.", id)
}

// accountConflict explains a failed insert or update of a.
func accountConflict(err error, a *keygate.Account) error {
	switch {
	case constraint(err, "accounts_email_key"):
		return &keygate.Error{Code: keygate.ECONFLICT, Err: err,
			Message: "An account with email \"" + a.Email + "\" already exists; log in, or use another address."}
	case constraint(err, "accounts_pkey"):
		return &keygate.Error{Code: keygate.ECONFLICT, Err: err,
			Message: "An account with id \"" + a.ID + "\" already exists."}
	case constraint(err, "accounts_tier_fkey"):
		return &keygate.Error{Code: keygate.EINVALID, Err: err,
			Message: "Tier \"" + a.Tier + "\" does not exist; create it first, or pick an existing tier."}
	}
	return err
}
