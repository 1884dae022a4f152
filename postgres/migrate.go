package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
)

// migrations holds the schema, one file per version. Files are applied in
// name order and never edited once released: a change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// seeds runs Go code in the same transaction as the migration it is keyed
// by, for data that must be inserted exactly once.
var seeds = map[string]func(ctx context.Context, s *Store, tx pgx.Tx) error{
	"0001_init": seedTiers,
}

// lockSQL and unlockSQL take and release the session advisory lock that
// migrations run under. The lock is keyed by the schema the tables go in,
// so that instances sharing a schema take turns while stores in other
// schemas of the same database (tests) do not wait for each other.
const (
	lockSQL   = `SELECT pg_advisory_lock(hashtext('keygate.migrate'), hashtext(coalesce(current_schema(), '')))`
	unlockSQL = `SELECT pg_advisory_unlock(hashtext('keygate.migrate'), hashtext(coalesce(current_schema(), '')))`
)

// migrate applies, in order, every migration not yet recorded in
// schema_migrations, each in its own transaction together with its record,
// while holding the migration lock: when several instances start at once,
// the first applies the migrations and the others find them applied.
func (s *Store) migrate(ctx context.Context) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, lockSQL); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		// On a broken connection the session, and the lock with it, ends.
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), unlockSQL); uerr != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
			if err == nil {
				err = fmt.Errorf("release the migration lock: %w", uerr)
			}
		}
	}()
	var schema *string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("find the schema: %w", err)
	}
	if schema == nil {
		return errors.New("no schema of the search_path exists: create it, or fix search_path in the URL")
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    text        PRIMARY KEY,
		applied_at timestamptz NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	slices.Sort(names)
	for _, name := range names {
		version := strings.TrimSuffix(path.Base(name), ".sql")
		if slices.Contains(applied, version) {
			continue
		}
		if err := s.applyMigration(ctx, conn.Conn(), name, version); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, conn *pgx.Conn, name, version string) error {
	body, err := migrations.ReadFile(name)
	if err != nil {
		return fmt.Errorf("migration %s: %w", version, err)
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// No arguments: the simple protocol, which runs every statement
		// of the file.
		if _, err := tx.Exec(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", version, err)
		}
		if seed := seeds[version]; seed != nil {
			if err := seed(ctx, s, tx); err != nil {
				return fmt.Errorf("migration %s: seed: %w", version, err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, version, ms(s.now())); err != nil {
			return fmt.Errorf("migration %s: %w", version, err)
		}
		return nil
	})
}

// seedTiers inserts the built-in tiers. It runs once, with the first
// migration, so that a built-in tier the operator deleted stays deleted.
func seedTiers(ctx context.Context, s *Store, tx pgx.Tx) error {
	for _, t := range keygate.DefaultTiers(s.now()) {
		if _, err := tx.Exec(ctx, `INSERT INTO tiers (name, quota_per_day, rate_per_second, burst, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			t.Name, t.QuotaPerDay, t.RatePerSecond, t.Burst, ms(t.CreatedAt), ms(t.UpdatedAt)); err != nil {
			return fmt.Errorf("tier %s: %w", t.Name, err)
		}
	}
	return nil
}
