// Package postgres implements keygate.Store on PostgreSQL, with pgx v5 and
// its connection pool. It is the store for running several keygate
// instances on the same data: every instance opens the same database, and
// every read-modify-write is one transaction that locks what it reads
// (SELECT … FOR UPDATE, or a transaction-scoped advisory lock), so that
// writers on different instances never undo each other.
//
// The schema is created and upgraded by Open, from migrations embedded in
// the binary, under a PostgreSQL advisory lock: instances starting at the
// same moment apply each migration once. The tables go in the first schema
// of the connection's search_path (add ?search_path=name to the URL to use
// a schema other than public).
//
// Change notifications (OnChange) are this process's own writes only; other
// instances learn of them through the change feed (package redis).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

var _ keygate.Store = (*Store)(nil)

// DefaultTimeout bounds each single-record operation (a read of one key, an
// admin write) when Store.Timeout is zero. An operation that runs out of it
// fails with EUNAVAILABLE rather than holding the request: a database that
// stopped answering looks the same as one that is down.
const DefaultTimeout = 10 * time.Second

// defaultConnectTimeout bounds a new connection when the URL sets no
// connect_timeout.
const defaultConnectTimeout = 5 * time.Second

// Store is a keygate.Store backed by a PostgreSQL database. Its methods are
// safe for concurrent use.
type Store struct {
	// Now returns the current time. It stamps records and audit events
	// whose times the caller left zero, and judges KeyFilter.Status when
	// the filter's Now is zero. Tests replace it; it defaults to time.Now.
	Now func() time.Time
	// Timeout bounds each single-record read and every write but the bulk
	// ones (ImportKeys, RecordUsage, PruneUsage), which run as long as the
	// caller's context allows. Zero means DefaultTimeout.
	Timeout time.Duration

	pool   *pgxpool.Pool
	closed atomic.Bool

	listeners sqlstore.Listeners

	// routes caches, per UTC day (Unix ms), the routes usage_routes has
	// admitted, as last committed; routesMu guards it.
	routesMu sync.Mutex
	routes   map[int64]map[string]bool
}

// errClosed is the cause of the EUNAVAILABLE error a closed store returns.
var errClosed = errors.New("postgres: store is closed")

// IsURL reports whether dsn names a PostgreSQL database (postgres:// or
// postgresql://) rather than an SQLite file.
func IsURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database at url (postgres://user:pass@host:5432/db?…,
// with any parameter pgx understands, such as sslmode, search_path or
// pool_max_conns) and applies every migration not yet applied, under an
// advisory lock so that instances opening the same database at once do
// not race. It fails when the database cannot be reached.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message can quote the URL, password included: keep it out.
		return nil, errors.New("postgres: open: the URL is not a valid PostgreSQL connection URL (postgres://user:password@host:5432/database?sslmode=…)")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", redact(cfg), err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", redact(cfg), err)
	}
	return s, nil
}

// redact names the database of cfg without its password, for messages.
func redact(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// Close closes every connection. Methods called after Close return
// EUNAVAILABLE. Closing twice is harmless.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.read(); err != nil {
		return err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.pool.Ping(bctx); err != nil {
		return s.fail(ctx, "ping", err)
	}
	return nil
}

// OnChange registers fn to be called, in the writer's goroutine, after each
// committed write of this Store, once per changed record. The returned
// function unregisters it.
func (s *Store) OnChange(fn func(keygate.Change)) (remove func()) {
	return s.listeners.Add(fn)
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// bound returns ctx limited to the store's operation timeout.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	return context.WithTimeout(ctx, d)
}

// read reports the EUNAVAILABLE error to return when the store is closed.
func (s *Store) read() error {
	if s.closed.Load() {
		return keygate.Unavailable(errClosed)
	}
	return nil
}

// maxAttempts is how many times a write runs when PostgreSQL aborts it for
// a deadlock or a serialization failure, which a retry resolves.
const maxAttempts = 3

// write runs fn in a transaction, inserts evs in it, commits, and then
// reports the changes fn returned to the OnChange listeners. Nothing is
// reported, and no event stored, when any step fails. A transaction that
// PostgreSQL aborts for a deadlock is run again, fn included. bulk writes
// are not bounded by the store's Timeout.
func (s *Store) write(ctx context.Context, op string, bulk bool, evs []*keygate.AuditEvent, fn func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error)) error {
	if err := s.read(); err != nil {
		return err
	}
	if err := sqlstore.PrepareEvents(evs, s.now()); err != nil {
		return err
	}
	var changes []keygate.Change
	var err error
	for attempt := 1; ; attempt++ {
		changes, err = s.commit(ctx, bulk, evs, fn)
		if err == nil || attempt == maxAttempts || !retryable(err) {
			break
		}
	}
	if err != nil {
		return s.fail(ctx, op, err)
	}
	s.listeners.Notify(changes)
	return nil
}

func (s *Store) commit(ctx context.Context, bulk bool, evs []*keygate.AuditEvent, fn func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error)) ([]keygate.Change, error) {
	if !bulk {
		var cancel context.CancelFunc
		ctx, cancel = s.bound(ctx)
		defer cancel()
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	changes, err := fn(ctx, tx)
	if err == nil {
		err = insertEvents(ctx, tx, evs)
	}
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		// Rollback after a failed Commit is harmless; its own error says
		// nothing the first one does not.
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return changes, nil
}

// retryable reports whether PostgreSQL aborted a transaction that may
// succeed when run again: a deadlock or a serialization failure.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// fail turns err into the error a Store method returns: a *keygate.Error
// is returned as it is; the caller's own cancellation is wrapped so that
// errors.Is still finds it; a constraint violation not already explained
// by the method becomes ECONFLICT or EINVALID; an unreachable, overloaded
// or shut-down server, a broken connection, a closed store and an
// operation that ran out of the store's Timeout become EUNAVAILABLE;
// anything else (a bug) is wrapped as it is.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	var kerr *keygate.Error
	if errors.As(err, &kerr) {
		return err
	}
	wrapped := fmt.Errorf("postgres: %s: %w", op, err)
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return wrapped // the caller gave up; the store is not at fault
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505": // unique_violation
			return &keygate.Error{Code: keygate.ECONFLICT, Message: "The change conflicts with a record that already exists.", Err: wrapped}
		case pgErr.Code == "23503": // foreign_key_violation
			return &keygate.Error{Code: keygate.EINVALID, Message: "The change refers to a record that does not exist.", Err: wrapped}
		case strings.HasPrefix(pgErr.Code, "23"), strings.HasPrefix(pgErr.Code, "22"): // other constraints, bad data
			return &keygate.Error{Code: keygate.EINVALID, Message: "A field is missing or has a value the store does not accept.", Err: wrapped}
		case slices.Contains([]string{"08", "28", "3D", "40", "53", "54", "55", "57", "58"}, pgErr.Code[:2]):
			// Connection, authorization, missing database, aborted
			// transaction, resources, lock not available, shutdown, I/O:
			// the server is in trouble or going away.
			return keygate.Unavailable(wrapped)
		}
		return wrapped
	}
	if s.closed.Load() || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, puddle.ErrClosedPool) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return keygate.Unavailable(wrapped)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) {
		return keygate.Unavailable(wrapped)
	}
	if strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "closed pool") {
		return keygate.Unavailable(wrapped)
	}
	return wrapped
}

// constraint reports whether err is a violation of the named constraint.
func constraint(err error, name string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.ConstraintName == name
}

// Times are stored to the millisecond, in UTC, as keygate's SQLite store
// keeps them (sqlstore.Stored), so that both stores hand back the same
// values.

// dialect is what the conditions of sqlstore's filters need: numbered
// placeholders, and times as they are.
var dialect = sqlstore.Dialect{Numbered: true, Time: func(t time.Time) any { return ms(t) }}

func ms(t time.Time) time.Time { return sqlstore.Stored(t) }

func msPtr(t *time.Time) *time.Time { return sqlstore.StoredPtr(t) }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// queryAll runs a query and scans each row with scan.
func queryAll[T any](ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
