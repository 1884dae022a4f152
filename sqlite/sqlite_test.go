package sqlite_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/storetest"
	"github.com/keygate/keygate/sqlite"
)

// open opens a store on path and closes it when the test ends.
func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func tempPath(t testing.TB) string { return filepath.Join(t.TempDir(), "keygate.db") }

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keygate.Store { return open(t, tempPath(t)) })
}

func hash() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newKey(accountID string, now time.Time) *keygate.Key {
	return &keygate.Key{
		ID: keygate.NewID(keygate.PrefixKey, now), AccountID: accountID, Name: "k", Env: keygate.EnvLive,
		Start: "kg_live_ab12", Last4: "wxyz", Hash: hash(), HashAlg: keygate.HashKeygate,
		Scopes: []string{"weather:read"}, Enabled: true, CreatedAt: now, UpdatedAt: now,
	}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	now := time.Now().UTC().Truncate(time.Millisecond)

	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	tier := &keygate.Tier{Name: "gold", QuotaPerDay: 7, RatePerSecond: 1, Burst: 2}
	a := &keygate.Account{Name: "A", Email: "a@example.com", Tier: "gold", PasswordHash: "h"}
	k := newKey("", now)
	ev := &keygate.AuditEvent{Actor: "system", Action: keygate.ActionAccountCreated, TargetType: keygate.TargetAccount}
	for _, err := range []error{
		s.CreateTier(ctx, tier),
		s.CreateAccount(ctx, a, k, ev),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	k.RevokedAt, k.RevokedReason, k.RevokedBy = &now, "leaked", "system"
	if _, err := s.UpdateKey(ctx, k.ID, func(cur *keygate.Key) ([]*keygate.AuditEvent, error) {
		*cur = *k.Clone()
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	counters := []keygate.Counter{{KeyID: k.ID, Day: "2031-01-02", Count: 42}}
	if err := s.SaveCounters(ctx, counters); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	gotA, err := s.Account(ctx, a.ID)
	if err != nil || gotA.Email != a.Email || gotA.Tier != "gold" || gotA.PasswordHash != "h" {
		t.Errorf("Account after reopening: got %+v, %v; want %+v", gotA, err, a)
	}
	gotK, err := s.Key(ctx, k.ID)
	if err != nil || gotK.Hash != k.Hash || gotK.RevokedAt == nil || !gotK.RevokedAt.Equal(now) ||
		gotK.RevokedReason != "leaked" || gotK.Status(now) != keygate.StatusRevoked {
		t.Errorf("Key after reopening: got %+v, %v; want it revoked at %s", gotK, err, now)
	}
	gotT, err := s.Tier(ctx, "gold")
	if err != nil || gotT.QuotaPerDay != 7 {
		t.Errorf("Tier after reopening: got %+v, %v", gotT, err)
	}
	gotC, err := s.Counters(ctx, "2031-01-02")
	if err != nil || !slices.Equal(gotC, counters) {
		t.Errorf("Counters after reopening: got %v, %v; want %v", gotC, err, counters)
	}
	evs, err := s.AuditEvents(ctx, keygate.AuditFilter{Actor: "system"})
	if err != nil || len(evs) != 1 || evs[0].ID != ev.ID {
		t.Errorf("AuditEvents after reopening: got %v, %v; want [%s]", evs, err, ev.ID)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// A built-in tier the operator deleted must stay deleted: the seed
	// runs with the first migration only.
	if err := s.DeleteTier(ctx, keygate.TierPro); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range 3 {
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+2, err)
		}
		tiers, err := s.Tiers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tier := range tiers {
			names = append(names, tier.Name)
		}
		if want := []string{keygate.TierFree}; !slices.Equal(names, want) {
			t.Errorf("Tiers after Open #%d: got %v, want %v", i+2, names, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	versions := schemaVersions(t, path)
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		want = append(want, strings.TrimSuffix(filepath.Base(f), ".sql"))
	}
	if len(want) == 0 || !slices.Equal(versions, want) {
		t.Errorf("schema_migrations: got %v, want %v", versions, want)
	}
}

// TestConcurrentOpen opens one new file from many goroutines at once, as
// two processes starting together would: every migration is applied once.
func TestConcurrentOpen(t *testing.T) {
	path := tempPath(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				errs <- err
				return
			}
			errs <- s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s := open(t, path)
	tiers, err := s.Tiers(t.Context())
	if err != nil || len(tiers) != 2 {
		t.Errorf("Tiers: got %d tiers, %v; want 2", len(tiers), err)
	}
}

// schemaVersions reads schema_migrations through database/sql directly.
func schemaVersions(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestConcurrentWriters runs many goroutines that write and read at once;
// none may fail with SQLITE_BUSY, since writers queue for the one write
// connection and readers use WAL snapshots.
func TestConcurrentWriters(t *testing.T) {
	ctx := t.Context()
	s := open(t, tempPath(t))
	const writers, each = 32, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*4)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				now := time.Now()
				a := &keygate.Account{Name: "a", Email: fmt.Sprintf("w%d-%d@example.com", w, i), Tier: keygate.TierFree}
				if err := s.CreateAccount(ctx, a, newKey("", now)); err != nil {
					errs <- fmt.Errorf("CreateAccount: %w", err)
					continue
				}
				k := newKey(a.ID, now)
				if _, err := s.ImportKeys(ctx, []*keygate.Key{k, newKey(a.ID, now)}); err != nil {
					errs <- fmt.Errorf("ImportKeys: %w", err)
				}
				if _, err := s.UpdateKey(ctx, k.ID, func(k *keygate.Key) ([]*keygate.AuditEvent, error) {
					k.Enabled = false
					return nil, nil
				}); err != nil {
					errs <- fmt.Errorf("UpdateKey: %w", err)
				}
				if err := s.SaveCounters(ctx, []keygate.Counter{{KeyID: k.ID, Day: "2031-01-02", Count: int64(i)}}); err != nil {
					errs <- fmt.Errorf("SaveCounters: %w", err)
				}
				if _, err := s.Keys(ctx, keygate.KeyFilter{AccountID: a.ID}); err != nil {
					errs <- fmt.Errorf("Keys: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	if err := s.ForEachKey(ctx, func(*keygate.Key) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := writers * each * 3; n != want {
		t.Errorf("ForEachKey: got %d keys, want %d", n, want)
	}
}

// TestClosed calls every method of a closed store: each returns
// EUNAVAILABLE, and none panics.
func TestClosed(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, tempPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	now := time.Now()
	k := newKey(keygate.NewID(keygate.PrefixAccount, now), now)
	a := &keygate.Account{Name: "a", Email: "a@example.com", Tier: keygate.TierFree}
	tier := &keygate.Tier{Name: "t", QuotaPerDay: 1, RatePerSecond: 1, Burst: 1}
	calls := map[string]func() error{
		"CreateTier":     func() error { return s.CreateTier(ctx, tier) },
		"UpdateTier":     func() error { _, err := s.UpdateTier(ctx, "t", noTierChange); return err },
		"DeleteTier":     func() error { return s.DeleteTier(ctx, "t") },
		"Tier":           func() error { _, err := s.Tier(ctx, "free"); return err },
		"Tiers":          func() error { _, err := s.Tiers(ctx); return err },
		"CreateAccount":  func() error { return s.CreateAccount(ctx, a, nil) },
		"UpdateAccount":  func() error { _, err := s.UpdateAccount(ctx, "acc_x", noAccountChange); return err },
		"Account":        func() error { _, err := s.Account(ctx, "acc_x"); return err },
		"AccountByEmail": func() error { _, err := s.AccountByEmail(ctx, "a@example.com"); return err },
		"Accounts":       func() error { _, err := s.Accounts(ctx, keygate.AccountFilter{}); return err },
		"CreateKey":      func() error { return s.CreateKey(ctx, k) },
		"UpdateKey":      func() error { _, err := s.UpdateKey(ctx, k.ID, noKeyChange); return err },
		"RotateKey": func() error {
			_, _, err := s.RotateKey(ctx, k.ID, func(*keygate.Key) (*keygate.Key, []*keygate.AuditEvent, error) {
				return newKey(k.AccountID, now), nil, nil
			})
			return err
		},
		"ImportKeys": func() error { _, err := s.ImportKeys(ctx, []*keygate.Key{k}); return err },
		"Key":        func() error { _, err := s.Key(ctx, k.ID); return err },
		"Keys":       func() error { _, err := s.Keys(ctx, keygate.KeyFilter{}); return err },
		"ForEachKey": func() error { return s.ForEachKey(ctx, func(*keygate.Key) error { return nil }) },
		"CreateRootKey": func() error {
			return s.CreateRootKey(ctx, &keygate.RootKey{Hash: hash(), Permissions: keygate.AllPermissions})
		},
		"RevokeRootKey": func() error {
			_, err := s.RevokeRootKey(ctx, "rk_x", func(*keygate.RootKey, int) ([]*keygate.AuditEvent, error) { return nil, nil })
			return err
		},
		"RootKey":     func() error { _, err := s.RootKey(ctx, "rk_x"); return err },
		"RootKeys":    func() error { _, err := s.RootKeys(ctx); return err },
		"AuditEvents": func() error { _, err := s.AuditEvents(ctx, keygate.AuditFilter{}); return err },
		"SaveCounters": func() error {
			return s.SaveCounters(ctx, []keygate.Counter{{KeyID: k.ID, Day: "2031-01-02", Count: 1}})
		},
		"Counters": func() error { _, err := s.Counters(ctx, "2031-01-02"); return err },
		"Ping":     func() error { return s.Ping(ctx) },
	}
	for name, call := range calls {
		if got := keygate.ErrorCode(call()); got != keygate.EUNAVAILABLE {
			t.Errorf("%s on a closed store: got code %q, want %q", name, got, keygate.EUNAVAILABLE)
		}
	}
	s.OnChange(func(keygate.Change) {}) // harmless
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("this is not an SQLite database\n", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", ":memory:", filepath.Join(dir, "a?mode=ro"), notDB} {
		if s, err := sqlite.Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q): got no error, want one", path)
		}
	}

	// A missing directory is created, and the file is private.
	path := filepath.Join(dir, "sub", "dir", "keygate.db")
	open(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode: got %v, want 0600", mode)
	}
}

func TestContextCanceled(t *testing.T) {
	s := open(t, tempPath(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Tiers(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Tiers with a canceled context: got %v, want context.Canceled", err)
	}
	err = s.CreateTier(ctx, &keygate.Tier{Name: "x", QuotaPerDay: 1, RatePerSecond: 1, Burst: 1})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CreateTier with a canceled context: got %v, want context.Canceled", err)
	}
	// The store still works afterwards.
	if _, err := s.Tiers(t.Context()); err != nil {
		t.Errorf("Tiers afterwards: %v", err)
	}
}

var importBatch = flag.Int("import-batch", 5000, "keys per ImportKeys call in BenchmarkImportKeys")

// BenchmarkImportKeys imports batches of new keys (5,000 unless
// -import-batch says otherwise) into one growing store, as `keygate import`
// does; ns/op is per batch. To import 1,000,000 keys:
//
//	go test -run='^$' -bench=ImportKeys -benchtime=200x ./sqlite
//	go test -run='^$' -bench=ImportKeys -benchtime=1000x ./sqlite -args -import-batch=1000
func BenchmarkImportKeys(b *testing.B) {
	batch := *importBatch
	ctx := context.Background()
	s := open(b, tempPath(b))
	s.OnChange(func(keygate.Change) {}) // the engine always listens
	a := &keygate.Account{Name: "a", Email: "bench@example.com", Tier: keygate.TierFree}
	if err := s.CreateAccount(ctx, a, nil); err != nil {
		b.Fatal(err)
	}
	keys := make([]*keygate.Key, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		now := time.Now()
		for i := range keys {
			keys[i] = newKey(a.ID, now)
			keys[i].HashAlg = keygate.HashSHA256
		}
		b.StartTimer()
		n, err := s.ImportKeys(ctx, keys)
		if err != nil {
			b.Fatal(err)
		}
		if n != batch {
			b.Fatalf("ImportKeys: got %d inserted, want %d", n, batch)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "keys/s")
}

// BenchmarkCreateKey measures one durable single-key write: a transaction
// with an audit event, committed with fsync.
func BenchmarkCreateKey(b *testing.B) {
	ctx := context.Background()
	s := open(b, tempPath(b))
	a := &keygate.Account{Name: "a", Email: "bench@example.com", Tier: keygate.TierFree}
	if err := s.CreateAccount(ctx, a, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		k := newKey(a.ID, time.Now())
		ev := &keygate.AuditEvent{Actor: "system", Action: keygate.ActionKeyCreated, TargetType: keygate.TargetKey, TargetID: k.ID}
		if err := s.CreateKey(ctx, k, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHashes checks that hashes must be SHA-256 hex, and that upper-case
// hex is stored, and returned, in lower case.
func TestHashes(t *testing.T) {
	ctx := t.Context()
	s := open(t, tempPath(t))
	a := &keygate.Account{Name: "a", Email: "a@example.com", Tier: keygate.TierFree}
	if err := s.CreateAccount(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, h := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("a", 63), strings.Repeat("a", 66)} {
		k := newKey(a.ID, now)
		k.Hash = h
		if err := s.CreateKey(ctx, k); keygate.ErrorCode(err) != keygate.EINVALID {
			t.Errorf("CreateKey with hash %q: got %v, want EINVALID", h, err)
		}
		if _, err := s.ImportKeys(ctx, []*keygate.Key{k}); keygate.ErrorCode(err) != keygate.EINVALID {
			t.Errorf("ImportKeys with hash %q: got %v, want EINVALID", h, err)
		}
		r := &keygate.RootKey{Hash: h, Permissions: keygate.AllPermissions}
		if err := s.CreateRootKey(ctx, r); keygate.ErrorCode(err) != keygate.EINVALID {
			t.Errorf("CreateRootKey with hash %q: got %v, want EINVALID", h, err)
		}
	}

	lower := hash()
	k := newKey(a.ID, now)
	k.Hash = strings.ToUpper(lower)
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	got, err := s.Key(ctx, k.ID)
	if err != nil || got.Hash != lower || k.Hash != lower {
		t.Errorf("Key with an upper-case hash: got stored %q, passed key now %q; want %q", got.Hash, k.Hash, lower)
	}
	dup := newKey(a.ID, now)
	dup.Hash = lower
	if err := s.CreateKey(ctx, dup); keygate.ErrorCode(err) != keygate.ECONFLICT {
		t.Errorf("CreateKey with the same hash in lower case: got %v, want ECONFLICT", err)
	}
}

func noKeyChange(*keygate.Key) ([]*keygate.AuditEvent, error)         { return nil, nil }
func noAccountChange(*keygate.Account) ([]*keygate.AuditEvent, error) { return nil, nil }
func noTierChange(*keygate.Tier) ([]*keygate.AuditEvent, error)       { return nil, nil }

// A usage table that refuses writes leaves every other write working.
func TestUsageFailureIsolatedTable(t *testing.T) {
	var path string
	storetest.RunUsageFailure(t, func(t *testing.T) keygate.Store {
		path = tempPath(t)
		return open(t, path)
	}, func(t *testing.T, _ keygate.Store) {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE TRIGGER usage_broken BEFORE INSERT ON usage_routes BEGIN SELECT RAISE(ABORT, 'usage table broken'); END`); err != nil {
			t.Fatal(err)
		}
	})
}

// A disk with less free space than the usage reserve stops usage writes
// first: revocations and other writes still have the space left.
func TestUsageFailureIsolatedReserve(t *testing.T) {
	storetest.RunUsageFailure(t, func(t *testing.T) keygate.Store { return open(t, tempPath(t)) },
		func(t *testing.T, s keygate.Store) { s.(*sqlite.Store).UsageReserve = 1 << 62 })
}
