package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

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
			changes = append(changes, sqlstore.KeyChange(firstKey))
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
	return s.account(ctx, "email", sqlstore.NormalizeEmail(email))
}

func (s *Store) account(ctx context.Context, column, value string) (*keygate.Account, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	a, err := scanAccount(s.pool.QueryRow(bctx, `SELECT `+accountColumns+` FROM accounts WHERE `+column+` = $1`, value))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sqlstore.NoAccountWith(column, value)
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
	w := sqlstore.AccountFilter(dialect, f)
	bctx, cancel := s.bound(ctx)
	defer cancel()
	q := `SELECT ` + accountColumns + ` FROM accounts` + w.String() + ` ORDER BY id LIMIT ` + w.Next(sqlstore.PageSize(f.Limit))
	out, err := queryAll(bctx, s.pool, scanAccount, q, w.Args()...)
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

// accountConflict explains a failed insert or update of a.
func accountConflict(err error, a *keygate.Account) error {
	switch {
	case constraint(err, "accounts_email_key"):
		return sqlstore.AccountEmailTaken(err, a.Email)
	case constraint(err, "accounts_pkey"):
		return sqlstore.AccountIDTaken(err, a.ID)
	case constraint(err, "accounts_tier_fkey"):
		return sqlstore.TierMissing(err, a.Tier)
	}
	return err
}
