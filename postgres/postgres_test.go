package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/storetest"
	"github.com/keygate/keygate/internal/testenv"
	"github.com/keygate/keygate/postgres"
)

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStore runs the store conformance suite, each test in a fresh schema.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keygate.Store {
		return open(t, testenv.PostgresSchema(t))
	})
}

// TestConcurrentOpen opens one new schema from several stores at once, as
// instances starting together do: the migration lock lets one apply the
// migrations, and every other finds them applied.
func TestConcurrentOpen(t *testing.T) {
	url := testenv.PostgresSchema(t)
	const n = 6
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		t.FailNow()
	}
	tiers, err := stores[0].Tiers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tier := range tiers {
		names = append(names, tier.Name)
	}
	if want := []string{keygate.TierFree, keygate.TierPro}; !slices.Equal(names, want) {
		t.Errorf("tiers after %d concurrent opens: got %v, want %v (seeded once)", n, names, want)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var versions, distinct int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&versions, &distinct); err != nil {
		t.Fatal(err)
	}
	if versions == 0 || versions != distinct {
		t.Errorf("schema_migrations: %d rows for %d versions, want one row each", versions, distinct)
	}
}

// TestReopen checks that what one store wrote, another opened later on the
// same schema reads, and that reopening applies no migration twice.
func TestReopen(t *testing.T) {
	url := testenv.PostgresSchema(t)
	ctx := t.Context()
	s := open(t, url)
	a := &keygate.Account{Name: "A", Email: "a@example.com", Tier: keygate.TierPro}
	k := &keygate.Key{AccountID: "", Env: keygate.EnvLive, Hash: strings.Repeat("ab", 32), HashAlg: keygate.HashKeygate, Enabled: true}
	if err := s.CreateAccount(ctx, a, k); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCounters(ctx, []keygate.Counter{{KeyID: k.ID, Day: "2031-01-02", Count: 42}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := open(t, url)
	got, err := s2.Key(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != k.Hash || got.AccountID != a.ID {
		t.Errorf("Key after reopen: got %+v", got)
	}
	cs, err := s2.Counters(ctx, "2031-01-02")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Count != 42 {
		t.Errorf("Counters after reopen: got %v, want one of 42", cs)
	}
}

// TestOpenErrors checks that Open fails, without quoting the password, on
// a malformed URL, an unreachable server and a missing schema.
func TestOpenErrors(t *testing.T) {
	base := testenv.Postgres(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close() // nothing listens there now
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", "kgtest_missing_schema")
	u.RawQuery = q.Encode()
	for _, tt := range []struct {
		name, url, want string
	}{
		{"malformed", "postgres://user:s3cret@host:notaport/db", "not a valid PostgreSQL connection URL"},
		{"unreachable", "postgres://user:s3cret@" + closedAddr + "/db?sslmode=disable&connect_timeout=2", "connect"},
		{"missing schema", u.String(), "no schema"},
	} {
		s, err := postgres.Open(t.Context(), tt.url)
		if err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: got %q, want it to mention %q and not the password", tt.name, err, tt.want)
		}
	}
}

// TestClosed checks that every method of a closed store returns
// EUNAVAILABLE.
func TestClosed(t *testing.T) {
	s := open(t, testenv.PostgresSchema(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for name, err := range calls(t.Context(), s) {
		if got := keygate.ErrorCode(err); got != keygate.EUNAVAILABLE {
			t.Errorf("%s on a closed store: got %q (%v), want %q", name, got, err, keygate.EUNAVAILABLE)
		}
	}
}

// TestUnreachable cuts the network between an open store and PostgreSQL
// (through a proxy; the shared server keeps running): every method then
// fails with EUNAVAILABLE, within the store's Timeout, and works again once
// the network is back.
func TestUnreachable(t *testing.T) {
	url := testenv.PostgresSchema(t)
	p := testenv.NewProxy(t, url)
	s := open(t, p.URL)
	s.Timeout = 2 * time.Second
	ctx := t.Context()
	a := &keygate.Account{Name: "A", Email: "a@example.com", Tier: keygate.TierFree}
	if err := s.CreateAccount(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	for name, err := range calls(ctx, s) {
		if got := keygate.ErrorCode(err); got != keygate.EUNAVAILABLE {
			t.Errorf("%s with PostgreSQL unreachable: got %q (%v), want %q", name, got, err, keygate.EUNAVAILABLE)
		}
	}
	p.Restore()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping once PostgreSQL is reachable again: %v", err)
	}
	if _, err := s.Account(ctx, a.ID); err != nil {
		t.Fatalf("Account once PostgreSQL is reachable again: %v", err)
	}
}

// calls calls every method of s once, with arguments that would succeed
// or fail with ENOTFOUND on a working store.
func calls(ctx context.Context, s keygate.Store) map[string]error {
	now := time.Now()
	k := &keygate.Key{AccountID: "acc_x", Env: keygate.EnvLive, Hash: strings.Repeat("cd", 32), HashAlg: keygate.HashKeygate}
	out := map[string]error{}
	out["CreateTier"] = s.CreateTier(ctx, &keygate.Tier{Name: "t", QuotaPerDay: 1, RatePerSecond: 1, Burst: 1})
	_, out["UpdateTier"] = s.UpdateTier(ctx, "free", func(*keygate.Tier) ([]*keygate.AuditEvent, error) { return nil, nil })
	out["DeleteTier"] = s.DeleteTier(ctx, "t")
	_, out["Tier"] = s.Tier(ctx, "free")
	_, out["Tiers"] = s.Tiers(ctx)
	out["CreateAccount"] = s.CreateAccount(ctx, &keygate.Account{Name: "b", Email: "b@example.com", Tier: "free"}, nil)
	_, out["UpdateAccount"] = s.UpdateAccount(ctx, "acc_x", func(*keygate.Account) ([]*keygate.AuditEvent, error) { return nil, nil })
	_, out["Account"] = s.Account(ctx, "acc_x")
	_, out["AccountByEmail"] = s.AccountByEmail(ctx, "a@example.com")
	_, out["Accounts"] = s.Accounts(ctx, keygate.AccountFilter{})
	out["CreateKey"] = s.CreateKey(ctx, k)
	_, out["UpdateKey"] = s.UpdateKey(ctx, "key_x", func(*keygate.Key) ([]*keygate.AuditEvent, error) { return nil, nil })
	_, _, out["RotateKey"] = s.RotateKey(ctx, "key_x", func(*keygate.Key) (*keygate.Key, []*keygate.AuditEvent, error) { return k, nil, nil })
	_, out["ImportKeys"] = s.ImportKeys(ctx, []*keygate.Key{k})
	_, out["Key"] = s.Key(ctx, "key_x")
	_, out["Keys"] = s.Keys(ctx, keygate.KeyFilter{})
	out["ForEachKey"] = s.ForEachKey(ctx, func(*keygate.Key) error { return nil })
	out["CreateRootKey"] = s.CreateRootKey(ctx, &keygate.RootKey{Hash: strings.Repeat("ef", 32), Permissions: keygate.AllPermissions})
	_, out["RevokeRootKey"] = s.RevokeRootKey(ctx, "rk_x", func(*keygate.RootKey, int) ([]*keygate.AuditEvent, error) { return nil, nil })
	_, out["RootKey"] = s.RootKey(ctx, "rk_x")
	_, out["RootKeys"] = s.RootKeys(ctx)
	_, out["AuditEvents"] = s.AuditEvents(ctx, keygate.AuditFilter{})
	out["SaveCounters"] = s.SaveCounters(ctx, []keygate.Counter{{KeyID: "key_x", Day: "2031-01-02", Count: 1}})
	_, out["Counters"] = s.Counters(ctx, "2031-01-02")
	out["RecordUsage"] = s.RecordUsage(ctx, []keygate.UsageEvent{{Time: now, Outcome: keygate.OutcomeNotFound}})
	_, out["Usage"] = s.Usage(ctx, keygate.UsageQuery{From: now.Add(-time.Hour), To: now, Granularity: keygate.GranularityHour})
	_, out["UsageEvents"] = s.UsageEvents(ctx, keygate.UsageQuery{}, 10)
	_, out["PruneUsage"] = s.PruneUsage(ctx, now.Add(-time.Hour))
	out["Ping"] = s.Ping(ctx)
	return out
}

// Two instances on one database claim the outbox at the same time: every
// delivery is claimed by exactly one of them (FOR UPDATE SKIP LOCKED).
func TestWebhookClaimsAcrossInstances(t *testing.T) {
	url := testenv.PostgresSchema(t)
	a, b := open(t, url), open(t, url)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	w := &keygate.Webhook{ID: keygate.NewID(keygate.PrefixWebhook, now), URL: "https://hooks.example.com/x",
		Events: []string{keygate.EventQuotaThreshold}, Enabled: true, Secret: "whsec_eA==", CreatedAt: now, UpdatedAt: now}
	if err := a.CreateWebhook(t.Context(), w); err != nil {
		t.Fatal(err)
	}
	var evs []keygate.WebhookEvent
	for i := range 200 {
		ev, err := keygate.NewWebhookEventOnce(keygate.EventQuotaThreshold, now, map[string]any{"i": i}, "claims", string(rune('a'+i%26)), time.Duration(i).String())
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if n, err := a.EnqueueWebhookEvents(t.Context(), evs); err != nil || n != len(evs) {
		t.Fatalf("EnqueueWebhookEvents: %d, %v", n, err)
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for _, s := range []*postgres.Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ds, err := s.ClaimDeliveries(t.Context(), now, time.Hour, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					claimed[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != len(evs) {
		t.Errorf("claimed %d deliveries, want %d", len(claimed), len(evs))
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("delivery %s claimed %d times, want once", id, n)
		}
	}
}

// A usage table that refuses writes leaves every other write working.
func TestUsageFailureIsolated(t *testing.T) {
	var url string
	storetest.RunUsageFailure(t, func(t *testing.T) keygate.Store {
		url = testenv.PostgresSchema(t)
		return open(t, url)
	}, func(t *testing.T, _ keygate.Store) {
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		if _, err := conn.Exec(t.Context(), `CREATE FUNCTION usage_broken() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'usage table broken'; END $$;
			CREATE TRIGGER usage_broken BEFORE INSERT ON usage_routes FOR EACH ROW EXECUTE FUNCTION usage_broken()`); err != nil {
			t.Fatal(err)
		}
	})
}

// Instances recording usage at once never admit more than
// MaxUsageRoutesPerDay routes for a day between them: each counts its
// own route names until the day is full, and the rest as (other).
func TestUsageRoutesBoundedAcrossInstances(t *testing.T) {
	url := testenv.PostgresSchema(t)
	const n = 4
	stores := make([]*postgres.Store, n)
	for i := range stores {
		stores[i] = open(t, url)
	}
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	perInstance := keygate.MaxUsageRoutesPerDay/2 + 10 // together, well past the limit
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, s := range stores {
		wg.Go(func() {
			for b := 0; b < perInstance; b += 20 {
				var evs []keygate.UsageEvent
				for j := b; j < min(b+20, perInstance); j++ {
					evs = append(evs, keygate.UsageEvent{Time: day.Add(time.Duration(j) * time.Second), KeyID: "key_x", AccountID: "acc_x",
						Outcome: keygate.OutcomeValid, Route: fmt.Sprintf("/instance-%d/%03d", i, j), Status: 200})
				}
				if err := s.RecordUsage(t.Context(), evs); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got, err := stores[0].Usage(t.Context(), keygate.UsageQuery{From: day, To: day.Add(24 * time.Hour), Granularity: keygate.GranularityDay, GroupBy: keygate.GroupByRoute})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("daily usage: got %d buckets, want 1", len(got))
	}
	named, other := 0, int64(0)
	for _, g := range got[0].Groups {
		if g.Value == keygate.UsageRouteOther {
			other = g.Total
		} else {
			named++
		}
	}
	if named != keygate.MaxUsageRoutesPerDay || got[0].Total != int64(n*perInstance) || other != got[0].Total-int64(named) {
		t.Errorf("got %d named routes and %d requests under %s of %d; want %d named and the rest under it",
			named, other, keygate.UsageRouteOther, got[0].Total, keygate.MaxUsageRoutesPerDay)
	}
}
