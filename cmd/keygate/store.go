package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/postgres"
	"github.com/keygate/keygate/sqlite"
)

// openStore opens the store --db names: a postgres:// or postgresql://
// URL opens PostgreSQL, which several instances may share; anything else
// is the path of an SQLite file, which this process locks for as long as
// it runs, since SQLite serves one instance. The returned close function
// closes the store and releases the lock.
func openStore(ctx context.Context, db string, now func() time.Time) (keygate.Store, func() error, error) {
	if postgres.IsURL(db) {
		s, err := postgres.Open(ctx, db)
		if err != nil {
			return nil, nil, err
		}
		s.Now = now
		return s, s.Close, nil
	}
	release, err := sqlite.Lock(db)
	if err != nil {
		return nil, nil, err
	}
	s, err := sqlite.Open(ctx, db)
	if err != nil {
		return nil, nil, errors.Join(err, release())
	}
	s.Now = now
	return s, func() error { return errors.Join(s.Close(), release()) }, nil
}

// checkDB refuses a --db that is a URL of anything but PostgreSQL.
func checkDB(db string) error {
	if strings.Contains(db, "://") && !postgres.IsURL(db) {
		return fmt.Errorf("%w: --db %q: give an SQLite file path or a postgres:// URL", errUsage, redactDB(db))
	}
	return nil
}

// redactDB returns db fit for logs and messages: a URL loses its password.
func redactDB(db string) string {
	if !strings.Contains(db, "://") {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "(a database URL that does not parse)"
	}
	return u.Redacted()
}

// warnDBMode warns when the SQLite file at db (and its -wal file, which
// holds recent writes) can be read by its group or other users: it holds
// key hashes and password hashes. keygate creates it 0600; a looser mode
// was set by hand or by a copy.
func warnDBMode(db string, log *slog.Logger) {
	if postgres.IsURL(db) {
		return
	}
	for _, path := range []string{db, db + "-wal"} {
		if fi, err := os.Stat(path); err == nil && othersCanRead(fi) {
			log.Warn("the database file can be read by other users: it holds key and password hashes; chmod 600 it",
				"path", path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
		}
	}
}
