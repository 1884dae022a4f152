// Package sqlite implements keygate.Store on an SQLite file, with the
// pure-Go driver modernc.org/sqlite. It is keygate's embedded default: one
// file in WAL mode, no other process needed.
//
// A Store holds three connection pools on the same file: a single write
// connection, whose transactions all begin with BEGIN IMMEDIATE; a pool of
// read-only connections; and one connection on which a goroutine copies
// the WAL into the database file (checkpoints) after writes. Writers queue
// for the one connection inside the process instead of contending for
// SQLite's lock, so they never fail with SQLITE_BUSY among themselves;
// readers never wait for writers, because WAL lets them read the last
// committed state while a write is in progress.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ keygate.Store = (*Store)(nil)

// busyTimeout is how long a connection waits for a lock held by another
// process (a second keygate, or the sqlite3 shell) before giving up. Within
// one process the write pool's single connection means it never waits.
const busyTimeout = 10 * time.Second

// Store is a keygate.Store backed by one SQLite file. Its methods are safe
// for concurrent use.
type Store struct {
	// Now returns the current time. It stamps records and audit events
	// whose times the caller left zero, and judges KeyFilter.Status when
	// the filter's Now is zero. Tests replace it; it defaults to time.Now.
	Now func() time.Time
	// UsageReserve is the free disk space, in bytes, below which
	// RecordUsage fails with EUNAVAILABLE instead of writing, so that a
	// disk filling up stops usage before it stops revocations and other
	// admin writes. 0 means DefaultUsageReserve; less than 0 turns the
	// check off.
	UsageReserve int64

	path string
	wdb  *sql.DB // exactly one connection; every transaction is BEGIN IMMEDIATE
	rdb  *sql.DB // read-only connections, readConns at most
	cdb  *sql.DB // one connection that checkpoints the WAL

	readConns int
	closed    atomic.Bool

	checkpoint chan struct{} // a commit happened: the WAL may need a checkpoint
	stop       chan struct{} // closed by Close
	stopped    chan struct{} // closed when the checkpointer has returned

	listeners sqlstore.Listeners

	// routes caches, per UTC day (Unix ms), the routes usage_route_names
	// has admitted; RecordUsage fills it on the write connection and drops
	// it after a failed write, under routesMu.
	routesMu sync.Mutex
	routes   map[int64]map[string]bool
}

// errClosed is the cause of the EUNAVAILABLE error a closed store returns.
var errClosed = errors.New("sqlite: store is closed")

// Open opens the SQLite database at path, creating the file (mode 0600) and
// its directory when missing, and applies every migration not yet applied.
// The database is put in WAL mode with foreign keys enforced.
//
// Durability: the write connection commits with synchronous=FULL, so every
// write is on disk before its method returns, as keygate promises. WAL mode
// would allow NORMAL, with which a committed transaction survives a crash
// of the process but the last ones can be lost to an OS crash or a power
// cut; FULL costs one fsync of the WAL per commit, about 1.5 ms for a
// single-key write here (BenchmarkCreateKey). ImportKeys is the exception
// (see there): for bulk imports, FULL cost 40% of the import time.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open %q: the path must name a file, without '?' or '#'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Create the file ourselves so that it is private to the keygate user:
	// it holds key hashes and password hashes. SQLite gives the -wal and
	// -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	busy := fmt.Sprint("busy_timeout(", busyTimeout.Milliseconds(), ")")
	wq := url.Values{}
	wq.Add("_pragma", busy)
	wq.Add("_pragma", "foreign_keys(1)")
	wq.Add("_pragma", "journal_mode(WAL)")
	wq.Add("_pragma", "synchronous(FULL)")
	// A larger page cache than SQLite's 2 MB default keeps more of the
	// key hash index in memory while imports insert into it at random.
	wq.Add("_pragma", "cache_size(-65536)")
	// The checkpointer goroutine copies the WAL into the database file
	// on its own connection, so that commits need not wait for the copy.
	// The write connection checkpoints by itself only when the WAL passes
	// this size, which bounds it should that goroutine fall behind.
	wq.Add("_pragma", fmt.Sprint("wal_autocheckpoint(", fallbackCheckpointPages, ")"))
	// After a checkpoint, the WAL file is cut back to this size instead
	// of keeping the size a large import gave it.
	wq.Add("_pragma", "journal_size_limit(67108864)")
	// Statement journals (each upsert of a multi-row write keeps one, to
	// undo just that statement) live in memory rather than in a temporary
	// file: written to disk they cost a write(2) per page and were about
	// 40% of the time of a usage write. They never outlive a statement and
	// are not needed after a crash: the WAL is.
	wq.Add("_pragma", "temp_store(MEMORY)")
	wq.Set("_txlock", "immediate")
	wdb, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)

	s := &Store{path: path, wdb: wdb}
	if err := s.migrateRetrying(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open %s: %w", path, err), wdb.Close())
	}

	rq := url.Values{}
	rq.Add("_pragma", busy)
	rq.Add("_pragma", "query_only(1)")
	rdb, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open %s: %w", path, err), wdb.Close())
	}
	n := max(4, runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(n)
	s.readConns = n
	rdb.SetMaxIdleConns(n)
	rdb.SetConnMaxLifetime(0)
	rdb.SetConnMaxIdleTime(0)
	s.rdb = rdb

	cq := url.Values{}
	cq.Add("_pragma", busy)
	cq.Add("_pragma", "synchronous(FULL)")
	cdb, err := sql.Open("sqlite", path+"?"+cq.Encode())
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open %s: %w", path, err), wdb.Close(), rdb.Close())
	}
	cdb.SetMaxOpenConns(1)
	cdb.SetMaxIdleConns(1)
	cdb.SetConnMaxLifetime(0)
	cdb.SetConnMaxIdleTime(0)
	s.cdb = cdb
	s.checkpoint = make(chan struct{}, 1)
	s.stop = make(chan struct{})
	s.stopped = make(chan struct{})
	go s.checkpointer()

	if err := s.Ping(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open %s: %w", path, err), s.Close())
	}
	return s, nil
}

// fallbackCheckpointPages is the WAL size, in pages, at which a commit
// checkpoints by itself: about 80 MB. The checkpointer runs beside the
// writer and cannot finish while the writer keeps appending, as during an
// import; the commit that passes this size finishes the copy, most of it
// already done, and lets the next write start the WAL over.
const fallbackCheckpointPages = 20_000

// checkpointer copies committed pages from the WAL into the database file
// after writes, on its own connection, until Close. It makes the copy, and
// the fsync of the database file that ends it, overlap the writer's work
// instead of lengthening a commit. A PASSIVE checkpoint never blocks the
// writer or the readers: it copies what it can and leaves the rest for the
// next round. Its errors need no handling: the next round retries, and
// the write connection's own checkpoint bounds the WAL meanwhile.
func (s *Store) checkpointer() {
	defer close(s.stopped)
	for {
		select {
		case <-s.stop:
			return
		case <-s.checkpoint:
		}
		_, _ = s.cdb.Exec("PRAGMA wal_checkpoint(PASSIVE)")
	}
}

// wroteWAL tells the checkpointer that a write committed.
func (s *Store) wroteWAL() {
	select {
	case s.checkpoint <- struct{}{}:
	default: // a round is already due
	}
}

// migrateRetrying runs migrate, retrying while another process opening
// the same new file holds it: while the file is switched to WAL, SQLite
// answers some lock conflicts with SQLITE_BUSY at once instead of waiting
// for the busy timeout. It gives up after busyTimeout.
func (s *Store) migrateRetrying(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := s.migrate(ctx)
		var serr *sqlite.Error
		if err == nil || !errors.As(err, &serr) || serr.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// Close closes the store; SQLite checkpoints the WAL into the database file
// as the last connection closes. Methods called after Close return
// EUNAVAILABLE. Closing twice is harmless.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	if s.cdb != nil {
		close(s.stop)
		<-s.stopped
		errs = append(errs, s.cdb.Close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	errs = append(errs, s.wdb.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close %s: %w", s.path, err)
	}
	return nil
}

// Ping reports whether the store can serve reads. It does not wait for the
// write connection, so a long import does not make the store look down.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return keygate.Unavailable(errClosed)
	}
	var one int
	if err := s.rdb.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return s.fail("ping", err)
	}
	return nil
}

// OnChange registers fn to be called, in the writer's goroutine, after each
// committed write, once per changed record. The returned function
// unregisters it; a notification already under way may still call fn.
func (s *Store) OnChange(fn func(keygate.Change)) (remove func()) {
	return s.listeners.Add(fn)
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// write runs fn in a BEGIN IMMEDIATE transaction on the write connection,
// inserts evs and the webhook events they raise in the same transaction,
// commits, and then reports the
// changes fn returned to the OnChange listeners. Nothing is reported, and
// no event is stored, when any step fails.
func (s *Store) write(ctx context.Context, op string, evs []*keygate.AuditEvent, fn func(tx *sql.Tx) ([]keygate.Change, error)) error {
	return s.writeTx(ctx, op, false, evs, fn)
}

// writeTx is write; with bulk set, the transaction commits with
// synchronous=NORMAL, without waiting for fsync (see ImportKeys).
func (s *Store) writeTx(ctx context.Context, op string, bulk bool, evs []*keygate.AuditEvent, fn func(tx *sql.Tx) ([]keygate.Change, error)) error {
	changes, err := s.commit(ctx, op, bulk, evs, fn)
	if err != nil {
		return err
	}
	// The write connection is free again: listeners (the engine indexing
	// an import's keys) do not hold up the next writer.
	s.listeners.Notify(changes)
	return nil
}

// commit runs fn and inserts evs in one transaction on the write
// connection, commits, and returns fn's changes.
func (s *Store) commit(ctx context.Context, op string, bulk bool, evs []*keygate.AuditEvent, fn func(tx *sql.Tx) ([]keygate.Change, error)) (changes []keygate.Change, err error) {
	if s.closed.Load() {
		return nil, keygate.Unavailable(errClosed)
	}
	if err := sqlstore.PrepareEvents(evs, s.now()); err != nil {
		return nil, err
	}
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return nil, s.fail(op, err)
	}
	committed := false
	defer func() {
		// Once committed, the write stands: a connection that fails to go
		// back to the pool is the pool's problem, not the caller's.
		if cerr := conn.Close(); cerr != nil && err == nil && !committed {
			err = s.fail(op, cerr)
		}
	}()
	if bulk {
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
			return nil, s.fail(op, err)
		}
		defer func() {
			// Restore FULL even when ctx is done. A connection that
			// cannot be restored is discarded, so that no other write
			// ever commits on it without fsync.
			if _, rerr := conn.ExecContext(context.Background(), "PRAGMA synchronous = FULL"); rerr != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.fail(op, err)
	}
	changes, err = fn(tx)
	if err == nil {
		err = insertEvents(ctx, tx, evs)
	}
	if err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			err = errors.Join(err, rerr)
		}
		return nil, s.fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, s.fail(op, err)
	}
	committed = true
	s.wroteWAL()
	return changes, nil
}

// read reports the EUNAVAILABLE error to return when the store is closed.
func (s *Store) read() error {
	if s.closed.Load() {
		return keygate.Unavailable(errClosed)
	}
	return nil
}

// fail turns err into the error a Store method returns: a *keygate.Error is
// returned as it is; a context error is wrapped so that errors.Is still
// finds it; a constraint violation not already explained by the method
// becomes ECONFLICT or EINVALID; a failure of the file, the lock or the
// connection becomes EUNAVAILABLE; anything else (a bug) is wrapped as is.
func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var kerr *keygate.Error
	if errors.As(err, &kerr) {
		return err
	}
	wrapped := fmt.Errorf("sqlite: %s: %w", op, err)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return wrapped
	}
	var serr *sqlite.Error
	if !errors.As(err, &serr) {
		if s.closed.Load() || errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) ||
			strings.Contains(err.Error(), "sql: database is closed") {
			return keygate.Unavailable(wrapped)
		}
		return wrapped
	}
	switch code := serr.Code(); code & 0xff {
	case sqlite3.SQLITE_CONSTRAINT:
		switch code {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &keygate.Error{Code: keygate.ECONFLICT, Message: "The change conflicts with a record that already exists.", Err: wrapped}
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return &keygate.Error{Code: keygate.EINVALID, Message: "The change refers to a record that does not exist.", Err: wrapped}
		}
		return &keygate.Error{Code: keygate.EINVALID, Message: "A field is missing or has a value the store does not accept.", Err: wrapped}
	case sqlite3.SQLITE_TOOBIG:
		return &keygate.Error{Code: keygate.EINVALID, Message: "A field is too large to store.", Err: wrapped}
	case sqlite3.SQLITE_ERROR, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE, sqlite3.SQLITE_INTERNAL:
		return wrapped // a bug in this package, not an outage
	}
	// SQLITE_BUSY, _LOCKED, _IOERR, _FULL, _READONLY, _CANTOPEN, _CORRUPT,
	// _NOTADB, _NOMEM, _MISUSE of a closed handle and the like: the file or
	// the process is in trouble, and a retry later may succeed.
	return keygate.Unavailable(wrapped)
}

// constraint reports whether err is a violation of a constraint on column
// ("table.column", as SQLite names it in its message) with the given
// extended result code.
func constraint(err error, code int, column string) bool {
	var serr *sqlite.Error
	if !errors.As(err, &serr) || serr.Code() != code {
		return false
	}
	return column == "" || strings.Contains(serr.Error(), column)
}

func uniqueViolation(err error, column string) bool {
	return constraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, column) ||
		constraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, column)
}

func foreignKeyViolation(err error) bool {
	return constraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, "")
}

// Times are stored as integer Unix milliseconds; they come back in UTC.

// dialect is what the conditions of sqlstore's filters need: "?"
// placeholders, and times as Unix milliseconds.
var dialect = sqlstore.Dialect{Time: func(t time.Time) any { return millis(t) }}

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func nullMillis(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func fromNullMillis(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMillis(n.Int64)
	return &t
}

// encodeList encodes a string list as a JSON array; nil becomes "[]".
func encodeList(l []string) (string, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeList decodes a JSON array of strings, never returning nil.
func decodeList(s string) ([]string, error) {
	if s == "[]" || s == "" {
		return []string{}, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("decode list %.40q: %w", s, err)
	}
	if l == nil {
		l = []string{}
	}
	return l, nil
}

func fromNullJSON(n sql.NullString) json.RawMessage {
	if !n.Valid {
		return nil
	}
	return json.RawMessage(n.String)
}

// Hashes are stored as their 32 bytes rather than as 64 hex characters:
// the unique index on key hashes, into which every new key goes at a
// random place, is then half the size, and importing 300,000 keys took a
// quarter less time.

// hashBytes returns the bytes of a hex hash.
func hashBytes(h string) ([]byte, error) {
	sum, ok := keygate.ParseHash(h)
	if !ok {
		return nil, errors.New("decode hash: not 64 hex characters")
	}
	return sum[:], nil
}

type scanner interface {
	Scan(dest ...any) error
}

// queryEach runs query on the read pool and calls fn with each row that
// scan reads, stopping at fn's first error, which it returns unwrapped.
// Failures of the query or of scan are reported as op.
func queryEach[T any](ctx context.Context, s *Store, op, query string, args []any, scan func(scanner) (T, error), fn func(T) error) error {
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return s.fail(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return s.fail(op, err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// queryAll is queryEach collecting the rows; no row is an empty slice.
func queryAll[T any](ctx context.Context, s *Store, op, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	out := []T{}
	err := queryEach(ctx, s, op, query, args, scan, func(v T) error {
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
