package manage_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/testenv"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/postgres"
	"github.com/keygate/keygate/sqlite"
)

// instances returns, for each store backend, a function that opens n
// manage.Services on one store's data, as n keygate instances would share
// it: for SQLite, one Store (a file has one process); for PostgreSQL, a
// Store per instance on one database.
func instances(t *testing.T) map[string]func(t *testing.T, n int) []*manage.Service {
	return map[string]func(t *testing.T, n int) []*manage.Service{
		"sqlite": func(t *testing.T, n int) []*manage.Service {
			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "keygate.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			out := make([]*manage.Service, n)
			for i := range out {
				out[i] = &manage.Service{Store: s, Hasher: apikey.NewHasher(nil)}
			}
			return out
		},
		"postgres": func(t *testing.T, n int) []*manage.Service {
			url := testenv.PostgresSchema(t)
			out := make([]*manage.Service, n)
			for i := range out {
				s, err := postgres.Open(t.Context(), url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				out[i] = &manage.Service{Store: s, Hasher: apikey.NewHasher(nil)}
			}
			return out
		},
	}
}

// TestConcurrentPatchAndRevoke races a PATCH of a key against its
// revocation, on two instances: the revocation must never be undone by a
// PATCH that read the key before it, and a PATCH that succeeded must not
// be lost.
func TestConcurrentPatchAndRevoke(t *testing.T) {
	for name, open := range instances(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			svcs := open(t, 2)
			a := &keygate.Account{Name: "Race", Email: "race@example.com"}
			if err := svcs[0].CreateAccount(ctx, manage.ActorSystem, a); err != nil {
				t.Fatal(err)
			}
			for round := range 20 {
				k := &keygate.Key{AccountID: a.ID, Name: "before"}
				if _, err := svcs[0].CreateKey(ctx, manage.ActorSystem, k); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				var patchErr, revokeErr, scopeErr error
				wg.Go(func() {
					_, patchErr = svcs[0].UpdateKey(ctx, "test:patch", k.ID, func(k *keygate.Key) { k.Name = "after" })
				})
				wg.Go(func() {
					_, scopeErr = svcs[1].UpdateKey(ctx, "test:scopes", k.ID, func(k *keygate.Key) { k.Scopes = []string{"read"} })
				})
				wg.Go(func() {
					_, revokeErr = svcs[1].RevokeKey(ctx, "test:revoke", k.ID, "race")
				})
				wg.Wait()
				if revokeErr != nil {
					t.Fatalf("round %d: RevokeKey: %v", round, revokeErr)
				}
				got, err := svcs[0].Store.Key(ctx, k.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.RevokedAt == nil || got.RevokedReason != "race" {
					t.Fatalf("round %d: the revocation was lost: %+v", round, got)
				}
				for _, c := range []struct {
					what string
					err  error
					ok   bool
				}{
					{"PATCH name", patchErr, got.Name == "after"},
					{"PATCH scopes", scopeErr, len(got.Scopes) == 1},
				} {
					switch keygate.ErrorCode(c.err) {
					case "":
						if !c.ok {
							t.Fatalf("round %d: %s succeeded but was lost: %+v", round, c.what, got)
						}
					case keygate.ECONFLICT: // it came after the revocation, which is final
						if c.ok {
							t.Fatalf("round %d: %s was refused but stored", round, c.what)
						}
					default:
						t.Fatalf("round %d: %s: %v", round, c.what, c.err)
					}
				}
				evs, err := svcs[0].Store.AuditEvents(ctx, keygate.AuditFilter{TargetID: k.ID, Action: keygate.ActionKeyRevoked})
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != 1 {
					t.Fatalf("round %d: got %d key.revoked events, want 1", round, len(evs))
				}
			}
		})
	}
}

// TestConcurrentRevokeLastAdminKeys revokes the last two root keys with
// admin:write at once, on two instances: exactly one revocation succeeds,
// and one key that can administer keygate is left.
func TestConcurrentRevokeLastAdminKeys(t *testing.T) {
	for name, open := range instances(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			svcs := open(t, 2)
			first, _, err := svcs[0].Bootstrap(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for round := range 10 {
				second, _, err := svcs[1].CreateRootKey(ctx, manage.ActorSystem, fmt.Sprint("second ", round), keygate.AllPermissions)
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				errs := make([]error, 2)
				for i, id := range []string{first.ID, second.ID} {
					wg.Go(func() { _, errs[i] = svcs[i].RevokeRootKey(ctx, manage.ActorRootKey(id), id) })
				}
				wg.Wait()
				ok := 0
				for _, err := range errs {
					switch keygate.ErrorCode(err) {
					case "":
						ok++
					case keygate.ECONFLICT:
					default:
						t.Fatalf("round %d: RevokeRootKey: %v", round, err)
					}
				}
				if ok != 1 {
					t.Fatalf("round %d: %d of 2 revocations succeeded, want 1", round, ok)
				}
				left := liveAdminWriters(ctx, t, svcs[0].Store)
				if len(left) != 1 {
					t.Fatalf("round %d: %d live admin:write root keys left, want 1", round, len(left))
				}
				first = left[0]
				if need, err := svcs[0].NeedsBootstrap(ctx); err != nil || need {
					t.Fatalf("round %d: NeedsBootstrap: %t, %v", round, need, err)
				}
			}
		})
	}
}

func liveAdminWriters(ctx context.Context, t *testing.T, s keygate.Store) []*keygate.RootKey {
	t.Helper()
	all, err := s.RootKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*keygate.RootKey
	for _, r := range all {
		if r.RevokedAt == nil && r.Can(keygate.PermAdminWrite) {
			out = append(out, r)
		}
	}
	return out
}
