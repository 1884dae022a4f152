package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/keygate/keygate"
)

// migrations holds the schema, one file per version. Files are applied in
// name order and never edited once released: a change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// seeds runs Go code in the same transaction as the migration it is keyed
// by, for data that must be inserted exactly once.
var seeds = map[string]func(ctx context.Context, s *Store, tx *sql.Tx) error{
	"0001_init": seedTiers,
}

// migrate applies, in order, every migration not yet recorded in
// schema_migrations, each in its own transaction together with its record,
// so that a failed migration leaves the database as it was and none is
// ever applied twice, even by two processes opening the file at once.
func (s *Store) migrate(ctx context.Context) error {
	// In a BEGIN IMMEDIATE transaction, not in autocommit: a statement that
	// starts as a reader and must become a writer gets SQLITE_BUSY at once,
	// without waiting, when another process opening the same file writes.
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    TEXT    PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return errors.Join(fmt.Errorf("create schema_migrations: %w", err), tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := s.applyMigration(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, name string) (err error) {
	version := strings.TrimSuffix(path.Base(name), ".sql")
	body, err := migrations.ReadFile(name)
	if err != nil {
		return fmt.Errorf("migration %s: %w", version, err)
	}
	tx, err := s.wdb.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one migrator at a time
	if err != nil {
		return fmt.Errorf("migration %s: %w", version, err)
	}
	defer func() {
		if err != nil {
			if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
				err = errors.Join(err, rerr)
			}
		}
	}()
	var applied int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", version).Scan(&applied); err != nil {
		return fmt.Errorf("migration %s: %w", version, err)
	}
	if applied > 0 {
		return tx.Rollback()
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("migration %s: %w", version, err)
	}
	if seed := seeds[version]; seed != nil {
		if err := seed(ctx, s, tx); err != nil {
			return fmt.Errorf("migration %s: seed: %w", version, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
		version, millis(s.now())); err != nil {
		return fmt.Errorf("migration %s: %w", version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: %w", version, err)
	}
	return nil
}

// seedTiers inserts the built-in tiers. It runs once, with the first
// migration, so that a built-in tier the operator deleted stays deleted.
func seedTiers(ctx context.Context, s *Store, tx *sql.Tx) error {
	for _, t := range keygate.DefaultTiers(s.now()) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tiers (name, quota_per_day, rate_per_second, burst, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)`,
			t.Name, t.QuotaPerDay, t.RatePerSecond, t.Burst, millis(t.CreatedAt), millis(t.UpdatedAt)); err != nil {
			return fmt.Errorf("tier %s: %w", t.Name, err)
		}
	}
	return nil
}
