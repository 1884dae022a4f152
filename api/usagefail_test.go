package api_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/sqlite"
)

// brokenUsage is a store whose usage writes fail, as a full disk or a
// damaged usage table makes them.
type brokenUsage struct{ *sqlite.Store }

func (brokenUsage) RecordUsage(context.Context, []keygate.UsageEvent) error {
	return keygate.Unavailable(errors.New("usage table: disk full"))
}

// With every usage write failing, the API keeps answering, and a
// revocation is written and refused at once: usage is a separate failure
// domain from keys, accounts and revocations.
func TestRevocationWorksWhileUsageWritesFail(t *testing.T) {
	ts := newServerUsage(t, func(s *sqlite.Store) keygate.UsageStore { return brokenUsage{s} })
	var acct keygate.Account
	if resp := ts.call(t, "POST", "/v1/accounts", ts.root(), `{"name":"Acme","email":"ops@acme.test","tier":"pro"}`, &acct); resp.StatusCode != 201 {
		t.Fatalf("create account: got %d", resp.StatusCode)
	}
	var created api.KeyView
	if resp := ts.call(t, "POST", "/v1/keys", ts.root(), `{"account_id":"`+acct.ID+`","name":"k"}`, &created); resp.StatusCode != 201 {
		t.Fatalf("create key: got %d", resp.StatusCode)
	}
	for range 20 {
		if resp := ts.call(t, "GET", "/demo/weather", map[string]string{"X-API-Key": created.Plaintext}, "", nil); resp.StatusCode != 200 {
			t.Fatalf("weather: got %d", resp.StatusCode)
		}
		ts.call(t, "GET", "/demo/weather", map[string]string{"X-API-Key": "kg_live_nope"}, "", nil)
	}
	if err := ts.usage.Flush(context.Background()); err == nil {
		t.Fatal("a usage flush succeeded on a store whose usage writes fail")
	}
	if resp := ts.call(t, "POST", "/v1/keys/"+created.ID+"/revoke", ts.root(), `{"reason":"leaked"}`, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke while usage writes fail: got %d", resp.StatusCode)
	}
	if resp := ts.call(t, "GET", "/demo/weather", map[string]string{"X-API-Key": created.Plaintext}, "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the revoked key: got %d, want 401", resp.StatusCode)
	}
	k, err := ts.store.Key(context.Background(), created.ID)
	if err != nil || k.RevokedAt == nil {
		t.Fatalf("the revocation in the store: %+v, %v", k, err)
	}
	if resp := ts.call(t, "POST", "/v1/accounts", ts.root(), `{"name":"Beta","email":"ops@beta.test"}`, nil); resp.StatusCode != 201 {
		t.Fatalf("create account while usage writes fail: got %d", resp.StatusCode)
	}
	if ts.usage.WriteFailures() == 0 {
		t.Fatal("no usage write failed: the test proves nothing")
	}
}
