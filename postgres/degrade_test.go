package postgres_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/internal/apicheck"
	"github.com/keygate/keygate/internal/testenv"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/quota"
)

// TestServingWithPostgresDown runs the API on a PostgreSQL store and cuts
// the network to the database (through a proxy; the shared server keeps
// running): known keys keep verifying from memory, admin writes answer 503
// STORE_UNAVAILABLE with a problem body, /readyz reports it, and once the
// database is back every verification answered meanwhile is in its usage.
func TestServingWithPostgresDown(t *testing.T) {
	ctx := t.Context()
	p := testenv.NewProxy(t, testenv.PostgresSchema(t))
	store := open(t, p.URL)
	store.Timeout = 2 * time.Second
	hasher := apikey.NewHasher(nil)
	eng := engine.New(store, engine.Options{Hasher: hasher, Limiter: quota.NewLocal(quota.Options{})})
	t.Cleanup(eng.Close)
	if err := eng.Load(ctx); err != nil {
		t.Fatal(err)
	}
	adm := &manage.Service{Store: store, Hasher: hasher}
	_, root, err := adm.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	usage := engine.NewUsageBuffer(store, engine.UsageOptions{})
	srv := &api.Server{Engine: eng, Manage: adm, Store: store, UsageStore: store, Usage: usage}
	ts := httptest.NewServer(apicheck.Handler(t, srv.Handler()))
	t.Cleanup(ts.Close)

	a := &keygate.Account{Name: "Acme", Email: "ops@acme.test"}
	if err := adm.CreateAccount(ctx, manage.ActorSystem, a); err != nil {
		t.Fatal(err)
	}
	k := &keygate.Key{AccountID: a.ID, Name: "k"}
	plaintext, err := adm.CreateKey(ctx, manage.ActorSystem, k)
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, auth, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var pb struct{ Code string }
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			json.Unmarshal(data, &pb)
		}
		return resp.StatusCode, pb.Code
	}
	weather := func() int {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+"/demo/weather", nil)
		req.Header.Set("X-API-Key", plaintext)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	if code := weather(); code != 200 {
		t.Fatalf("the key with the database up: got %d, want 200", code)
	}
	p.Cut()
	if code, pc := call("GET", "/readyz", "", ""); code != 503 || pc != keygate.EUNAVAILABLE {
		t.Errorf("/readyz with the database down: got %d %q, want 503 %s", code, pc, keygate.EUNAVAILABLE)
	}
	const down = 5
	for i := range down {
		if code := weather(); code != 200 {
			t.Fatalf("verification %d with the database down: got %d, want 200 from memory", i, code)
		}
	}
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/v1/accounts", `{"name":"Later","email":"later@acme.test"}`},
		{"PATCH", "/v1/keys/" + k.ID, `{"name":"renamed"}`},
		{"POST", "/v1/keys/" + k.ID + "/revoke", `{"reason":"test"}`},
	} {
		if code, pc := call(w.method, w.path, root, w.body); code != 503 || pc != keygate.EUNAVAILABLE {
			t.Errorf("%s %s with the database down: got %d %q, want 503 %s", w.method, w.path, code, pc, keygate.EUNAVAILABLE)
		}
	}
	if err := usage.Flush(ctx); keygate.ErrorCode(err) != keygate.EUNAVAILABLE {
		t.Errorf("writing usage with the database down: got %v, want EUNAVAILABLE", err)
	}

	p.Restore()
	if code, _ := call("GET", "/readyz", "", ""); code != 200 {
		t.Errorf("/readyz with the database back: got %d, want 200", code)
	}
	if err := usage.Flush(ctx); err != nil {
		t.Fatalf("writing usage with the database back: %v", err)
	}
	evs, err := store.UsageEvents(ctx, keygate.UsageQuery{KeyID: k.ID}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1+down {
		t.Errorf("usage events of the key: got %d, want %d (every verification answered)", len(evs), 1+down)
	}
	got, err := store.Key(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "k" || got.RevokedAt != nil {
		t.Errorf("the key after writes refused with 503: got name %q, revoked %v; want them not applied", got.Name, got.RevokedAt)
	}
	if _, err := store.AccountByEmail(ctx, "later@acme.test"); keygate.ErrorCode(err) != keygate.ENOTFOUND {
		t.Errorf("an account refused with 503 exists: %v", err)
	}
	if code, _ := call("POST", "/v1/accounts", root, `{"name":"Later","email":"later@acme.test"}`); code != 201 {
		t.Errorf("an admin write with the database back: got %d, want 201", code)
	}
}
