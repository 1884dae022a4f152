package api_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

func (ts *testServer) account(t *testing.T, tier string) string {
	t.Helper()
	var a keygate.Account
	body := fmt.Sprintf(`{"name":"n","email":"%s@example.com"`, strings.ToLower(rand.Text()[:10]))
	if tier != "" {
		body += `,"tier":"` + tier + `"`
	}
	if resp := ts.call(t, "POST", "/v1/accounts", ts.root(), body+"}", &a); resp.StatusCode != 201 {
		t.Fatalf("create account: %d", resp.StatusCode)
	}
	return a.ID
}

func (ts *testServer) newKey(t *testing.T, body string) api.KeyView {
	t.Helper()
	var k api.KeyView
	if resp := ts.call(t, "POST", "/v1/keys", ts.root(), body, &k); resp.StatusCode != 201 {
		t.Fatalf("create key %s: %d", body, resp.StatusCode)
	}
	return k
}

func (ts *testServer) weather(t *testing.T, key string) (int, string, http.Header) {
	t.Helper()
	var p problemBody
	resp := ts.call(t, "GET", "/demo/weather", map[string]string{"X-API-Key": key}, "", &p)
	return resp.StatusCode, p.Code, resp.Header
}

func TestRotateWithGrace(t *testing.T) {
	ts := newServer(t)
	acct := ts.account(t, "")
	old := ts.newKey(t, `{"account_id":"`+acct+`","name":"prod","scopes":["weather:read"],"meta":{"a":1},"ip_allow":["0.0.0.0/0","::/0"]}`)

	var nk api.KeyView
	if resp := ts.call(t, "POST", "/v1/keys/"+old.ID+"/rotate", ts.root(), `{"grace":"24h"}`, &nk); resp.StatusCode != 201 {
		t.Fatalf("rotate: got %d", resp.StatusCode)
	}
	if nk.Plaintext == "" || nk.Replaces != old.ID || nk.Name != "prod" || strings.Join(nk.Scopes, ",") != "weather:read" || string(nk.Meta) != `{"a":1}` || len(nk.IPAllow) != 2 {
		t.Fatalf("rotated key does not carry the old one's settings: %+v", nk)
	}
	for _, k := range []string{old.Plaintext, nk.Plaintext} {
		if code, outcome, _ := ts.weather(t, k); code != 200 {
			t.Fatalf("during grace: got %d %s, want 200", code, outcome)
		}
	}
	var rec api.KeyView
	ts.call(t, "GET", "/v1/keys/"+old.ID, ts.root(), "", &rec)
	if rec.ReplacedBy != nk.ID || rec.RevokedAt == nil || rec.Status != keygate.StatusActive {
		t.Fatalf("old key record: got %+v", rec)
	}

	// Rotating again is refused; rotating the replacement with 0s cuts it off at once.
	var p problemBody
	if resp := ts.call(t, "POST", "/v1/keys/"+old.ID+"/rotate", ts.root(), `{"grace":"1h"}`, &p); resp.StatusCode != 409 {
		t.Fatalf("second rotation: got %d %+v, want 409", resp.StatusCode, p)
	}
	var third api.KeyView
	ts.call(t, "POST", "/v1/keys/"+nk.ID+"/rotate", ts.root(), `{"grace":"0s"}`, &third)
	if code, outcome, _ := ts.weather(t, nk.Plaintext); code != 401 || outcome != "REVOKED" {
		t.Fatalf("rotated with 0s grace: got %d %s, want 401 REVOKED", code, outcome)
	}
	for _, bad := range []string{`{"grace":"tomorrow"}`, `{"grace":"-1h"}`, `{"grace":"9999h"}`} {
		if resp := ts.call(t, "POST", "/v1/keys/"+third.ID+"/rotate", ts.root(), bad, &p); resp.StatusCode != 400 {
			t.Errorf("rotate %s: got %d, want 400", bad, resp.StatusCode)
		}
	}
}

func TestEnableDisableAndPatch(t *testing.T) {
	ts := newServer(t)
	acct := ts.account(t, "")
	k := ts.newKey(t, `{"account_id":"`+acct+`","quota_per_day":50,"expires_at":"2099-01-01T00:00:00Z","meta":{"x":1}}`)
	ts.call(t, "POST", "/v1/keys/"+k.ID+"/disable", ts.root(), "", nil)
	if code, outcome, _ := ts.weather(t, k.Plaintext); code != 403 || outcome != "DISABLED" {
		t.Fatalf("disabled: got %d %s", code, outcome)
	}
	ts.call(t, "POST", "/v1/keys/"+k.ID+"/enable", ts.root(), "", nil)
	if code, _, hdr := ts.weather(t, k.Plaintext); code != 200 || !strings.Contains(hdr.Get("RateLimit-Policy"), `"day";q=50;`) {
		t.Fatalf("enabled: got %d, policy %q", code, hdr.Get("RateLimit-Policy"))
	}

	var got api.KeyView
	resp := ts.call(t, "PATCH", "/v1/keys/"+k.ID, ts.root(), `{"name":"renamed","scopes":["a:b","a:*"],"quota_per_day":null,"expires_at":null,"meta":null,"tier":"pro"}`, &got)
	if resp.StatusCode != 200 || got.Name != "renamed" || strings.Join(got.Scopes, ",") != "a:*,a:b" || got.QuotaPerDay != nil || got.ExpiresAt != nil || got.Meta != nil || got.Tier != "pro" {
		t.Fatalf("patch: got %d %+v", resp.StatusCode, got)
	}
	if _, _, hdr := ts.weather(t, k.Plaintext); !strings.Contains(hdr.Get("RateLimit-Policy"), `"day";q=100000;`) {
		t.Fatalf("after moving to pro and clearing the override: policy %q", hdr.Get("RateLimit-Policy"))
	}

	var audit api.List[keygate.AuditEvent]
	ts.call(t, "GET", "/v1/audit?target_id="+k.ID, ts.root(), "", &audit)
	var actions []string
	for _, e := range audit.Data {
		actions = append(actions, e.Action)
	}
	if want := "key.updated,key.enabled,key.disabled,key.created"; strings.Join(actions, ",") != want {
		t.Fatalf("audit of the key, newest first: got %v, want %s", actions, want)
	}

	var p problemBody
	ts.call(t, "POST", "/v1/keys/"+k.ID+"/revoke", ts.root(), "", nil)
	for _, body := range []string{`{"name":"again"}`} {
		if resp := ts.call(t, "PATCH", "/v1/keys/"+k.ID, ts.root(), body, &p); resp.StatusCode != 409 {
			t.Fatalf("patching a revoked key: got %d %+v, want 409", resp.StatusCode, p)
		}
	}
	k2 := ts.newKey(t, `{"account_id":"`+acct+`"}`)
	for _, body := range []string{`{"enabled":null}`, `{"scopes":["bad scope"]}`, `{"tier":"gold"}`, `{"ip_allow":["1.2.3.4/40"]}`, `{"burst":0}`, `{"id":"key_x"}`, `{"expires_at":"2001-01-01T00:00:00Z"}`, `{"quota_per_day":"lots"}`} {
		if resp := ts.call(t, "PATCH", "/v1/keys/"+k2.ID, ts.root(), body, &p); resp.StatusCode != 400 || p.Code != keygate.EINVALID {
			t.Errorf("PATCH %s: got %d %+v, want 400", body, resp.StatusCode, p)
		}
	}
}

func TestTiersCRUDAndRateLimitAnswers(t *testing.T) {
	ts := newServer(t)
	var tier keygate.Tier
	if resp := ts.call(t, "POST", "/v1/tiers", ts.root(), `{"name":"trial","quota_per_day":3,"rate_per_second":100,"burst":100}`, &tier); resp.StatusCode != 201 {
		t.Fatalf("create tier: %d", resp.StatusCode)
	}
	acct := ts.account(t, "trial")
	k := ts.newKey(t, `{"account_id":"`+acct+`"}`)
	for i := range 3 {
		if code, outcome, _ := ts.weather(t, k.Plaintext); code != 200 {
			t.Fatalf("call %d: got %d %s", i, code, outcome)
		}
	}
	var p struct {
		problemBody
		Limit      string `json:"limit"`
		RetryAfter int64  `json:"retry_after"`
	}
	resp := ts.call(t, "GET", "/demo/weather", map[string]string{"X-API-Key": k.Plaintext}, "", &p)
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 429 || p.Code != "QUOTA_EXCEEDED" || p.Limit != "quota" || ra < 1 || int64(ra) != p.RetryAfter || !strings.Contains(resp.Header.Get("RateLimit"), `"day";r=0;`) {
		t.Fatalf("over quota: got %d %+v, Retry-After %q, RateLimit %q", resp.StatusCode, p, resp.Header.Get("Retry-After"), resp.Header.Get("RateLimit"))
	}

	if tier.QuotaScope != keygate.QuotaScopeAccount {
		t.Fatalf("a new tier's quota_scope: got %q, want account", tier.QuotaScope)
	}
	// The account's second key shares the spent quota.
	k2 := ts.newKey(t, `{"account_id":"`+acct+`"}`)
	if code, outcome, _ := ts.weather(t, k2.Plaintext); code != 429 || outcome != "QUOTA_EXCEEDED" {
		t.Fatalf("second key of an account whose quota is spent: got %d %s, want 429 QUOTA_EXCEEDED", code, outcome)
	}
	// Counted per key, the second key has a quota of its own.
	ts.call(t, "PATCH", "/v1/tiers/trial", ts.root(), `{"quota_scope":"key"}`, &tier)
	if tier.QuotaScope != keygate.QuotaScopeKey {
		t.Fatalf("PATCH quota_scope: got %+v", tier)
	}
	if code, outcome, _ := ts.weather(t, k2.Plaintext); code != 200 {
		t.Fatalf("second key on a tier counted per key: got %d %s, want 200", code, outcome)
	}
	if resp := ts.call(t, "PATCH", "/v1/tiers/trial", ts.root(), `{"quota_scope":"everyone"}`, nil); resp.StatusCode != 400 {
		t.Fatalf("PATCH a bad quota_scope: got %d, want 400", resp.StatusCode)
	}

	// Raising the tier's quota applies at once.
	ts.call(t, "PATCH", "/v1/tiers/trial", ts.root(), `{"quota_per_day":10}`, &tier)
	if code, outcome, _ := ts.weather(t, k.Plaintext); code != 200 {
		t.Fatalf("after raising the quota: got %d %s", code, outcome)
	}

	var pb problemBody
	if resp := ts.call(t, "DELETE", "/v1/tiers/trial", ts.root(), "", &pb); resp.StatusCode != 409 {
		t.Fatalf("delete a tier in use: got %d %+v, want 409", resp.StatusCode, pb)
	}
	if resp := ts.call(t, "DELETE", "/v1/tiers/free", ts.root(), "", &pb); resp.StatusCode != 409 {
		t.Fatalf("delete the free tier: got %d, want 409", resp.StatusCode)
	}
	ts.call(t, "POST", "/v1/tiers", ts.root(), `{"name":"unused","quota_per_day":1,"rate_per_second":1,"burst":1}`, nil)
	if resp := ts.call(t, "DELETE", "/v1/tiers/unused", ts.root(), "", nil); resp.StatusCode != 204 {
		t.Fatalf("delete an unused tier: got %d, want 204", resp.StatusCode)
	}
	for _, body := range []string{
		`{"name":"Bad Name","quota_per_day":1,"rate_per_second":1,"burst":1}`,
		`{"name":"x","quota_per_day":0,"rate_per_second":1,"burst":1}`,
		`{"name":"x","quota_per_day":1,"rate_per_second":0,"burst":1}`,
		`{"name":"x","quota_per_day":1,"rate_per_second":1,"burst":0}`,
		`{"name":"x","quota_per_day":1e15,"rate_per_second":1,"burst":1}`,
		`{"name":"x","quota_per_day":1,"rate_per_second":1,"burst":1,"quota_scope":"ip"}`,
	} {
		if resp := ts.call(t, "POST", "/v1/tiers", ts.root(), body, &pb); resp.StatusCode != 400 {
			t.Errorf("POST /v1/tiers %s: got %d, want 400", body, resp.StatusCode)
		}
	}
	if resp := ts.call(t, "POST", "/v1/tiers", ts.root(), `{"name":"trial","quota_per_day":1,"rate_per_second":1,"burst":1}`, &pb); resp.StatusCode != 409 {
		t.Errorf("duplicate tier: got %d, want 409", resp.StatusCode)
	}
}

func TestRootKeys(t *testing.T) {
	ts := newServer(t)
	var rk api.RootKeyView
	if resp := ts.call(t, "POST", "/v1/root-keys", ts.root(), `{"name":"reader","permissions":["admin:read"]}`, &rk); resp.StatusCode != 201 || !strings.HasPrefix(rk.Plaintext, "kgr_live_") {
		t.Fatalf("create root key: %d %+v", resp.StatusCode, rk)
	}
	reader := map[string]string{"Authorization": "Bearer " + rk.Plaintext}
	if resp := ts.call(t, "GET", "/v1/tiers", reader, "", nil); resp.StatusCode != 200 {
		t.Fatalf("reader reads: %d", resp.StatusCode)
	}
	if resp := ts.call(t, "POST", "/v1/tiers", reader, `{"name":"x","quota_per_day":1,"rate_per_second":1,"burst":1}`, nil); resp.StatusCode != 403 {
		t.Fatalf("reader writes: got %d, want 403", resp.StatusCode)
	}
	ts.call(t, "POST", "/v1/root-keys/"+rk.ID+"/revoke", ts.root(), "", nil)
	if resp := ts.call(t, "GET", "/v1/tiers", reader, "", nil); resp.StatusCode != 401 {
		t.Fatalf("revoked root key: got %d, want 401", resp.StatusCode)
	}
	var list api.List[api.RootKeyView]
	ts.call(t, "GET", "/v1/root-keys", ts.root(), "", &list)
	if len(list.Data) != 2 {
		t.Fatalf("root keys: got %d, want 2", len(list.Data))
	}
	var boot api.RootKeyView
	for _, r := range list.Data {
		if r.RevokedAt == nil {
			boot = r
		}
		if r.Plaintext != "" {
			t.Fatal("a listed root key carries its plaintext")
		}
	}
	var p problemBody
	if resp := ts.call(t, "POST", "/v1/root-keys/"+boot.ID+"/revoke", ts.root(), "", &p); resp.StatusCode != 409 {
		t.Fatalf("revoking the last admin:write root key: got %d %+v, want 409", resp.StatusCode, p)
	}
	if resp := ts.call(t, "POST", "/v1/root-keys", ts.root(), `{"name":"x","permissions":["root"]}`, &p); resp.StatusCode != 400 {
		t.Fatalf("unknown permission: got %d, want 400", resp.StatusCode)
	}
}

// legacyKey makes a key the classic way: "doda_" + token_urlsafe(32).
func legacyKey() (raw, hash string) {
	b := make([]byte, 32)
	rand.Read(b)
	raw = "doda_" + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(raw))
	return raw, hex.EncodeToString(sum[:])
}

func TestImportLegacyKeys(t *testing.T) {
	ts := newServer(t)
	acct := ts.account(t, "")
	var raws []string
	var rows []api.ImportRow
	for i := range 5 {
		raw, hash := legacyKey()
		raws = append(raws, raw)
		rows = append(rows, api.ImportRow{Hash: hash, AccountID: acct, Tier: "pro", Name: fmt.Sprintf("legacy-%d", i)})
	}
	rows = append(rows, api.ImportRow{Hash: "zz", AccountID: acct}, api.ImportRow{Hash: rows[0].Hash, AccountID: "acc_missing"})
	body, _ := json.Marshal(api.ImportRequest{Keys: rows})
	var res api.ImportResult
	if resp := ts.call(t, "POST", "/v1/keys/import", ts.root(), string(body), &res); resp.StatusCode != 200 {
		t.Fatalf("import: %d", resp.StatusCode)
	}
	if res.Inserted != 5 || res.Invalid != 2 || len(res.Errors) != 2 || res.Errors[0].Index != 5 || res.Errors[1].Index != 6 {
		t.Fatalf("import result: got %+v", res)
	}
	for _, raw := range raws {
		if code, outcome, _ := ts.weather(t, raw); code != 200 {
			t.Fatalf("imported legacy key on the protected route: got %d %s", code, outcome)
		}
		var v api.VerifyResponse
		ts.call(t, "POST", "/v1/keys/verify", ts.root(), `{"key":"`+raw+`"}`, &v)
		if !v.Valid || v.Tier != "pro" {
			t.Fatalf("imported legacy key on the verify API: got %+v", v)
		}
	}
	// Re-running imports nothing new; atomic mode stores nothing when a row is bad.
	body, _ = json.Marshal(api.ImportRequest{Keys: rows[:5]})
	ts.call(t, "POST", "/v1/keys/import", ts.root(), string(body), &res)
	if res.Inserted != 0 || res.Skipped != 5 {
		t.Fatalf("re-import: got %+v, want 0 inserted, 5 skipped", res)
	}
	raw, hash := legacyKey()
	body, _ = json.Marshal(api.ImportRequest{Atomic: true, Keys: []api.ImportRow{{Hash: hash, AccountID: acct}, {Hash: "nothex", AccountID: acct}}})
	ts.call(t, "POST", "/v1/keys/import", ts.root(), string(body), &res)
	if res.Inserted != 0 || res.Invalid != 1 {
		t.Fatalf("atomic import with a bad row: got %+v", res)
	}
	if code, _, _ := ts.weather(t, raw); code != 401 {
		t.Fatalf("a key from a refused atomic batch verifies: got %d", code)
	}
	// A mistyped legacy key is unknown; arbitrary junk stays malformed.
	if _, outcome, _ := ts.weather(t, raws[0][:len(raws[0])-1]+"x"); outcome != "NOT_FOUND" {
		t.Fatalf("mistyped legacy key: got %s, want NOT_FOUND", outcome)
	}
	if _, outcome, _ := ts.weather(t, "short"); outcome != "MALFORMED" {
		t.Fatalf("junk: got %s, want MALFORMED", outcome)
	}
}

func TestRevokeIsNotUndoneByConcurrentPatches(t *testing.T) {
	ts := newServer(t)
	acct := ts.account(t, "")
	for round := range 5 {
		k := ts.newKey(t, `{"account_id":"`+acct+`"}`)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				ts.call(t, "PATCH", "/v1/keys/"+k.ID, ts.root(), fmt.Sprintf(`{"name":"n%d"}`, i), nil)
			})
		}
		wg.Go(func() { ts.call(t, "POST", "/v1/keys/"+k.ID+"/revoke", ts.root(), "", nil) })
		wg.Wait()
		var got api.KeyView
		ts.call(t, "GET", "/v1/keys/"+k.ID, ts.root(), "", &got)
		if got.Status != "revoked" {
			t.Fatalf("round %d: a PATCH undid the revocation: status %s", round, got.Status)
		}
		if code, outcome, _ := ts.weather(t, k.Plaintext); code != 401 || outcome != "REVOKED" {
			t.Fatalf("round %d: got %d %s, want 401 REVOKED", round, code, outcome)
		}
	}
}

func TestVerifyAPIFailureThrottle(t *testing.T) {
	ts := newServer(t)
	acct := ts.account(t, "")
	k := ts.newKey(t, `{"account_id":"`+acct+`"}`)
	var v api.VerifyResponse
	for range 30 { // the engine's default limit per client IP and minute
		ts.call(t, "POST", "/v1/keys/verify", ts.root(), `{"key":"kg_live_guess","ip":"203.0.113.50"}`, &v)
	}
	ts.call(t, "POST", "/v1/keys/verify", ts.root(), `{"key":"`+k.Plaintext+`","ip":"203.0.113.50"}`, &v)
	if v.Valid || v.Code != keygate.OutcomeTooManyFailures || v.RetryAfter < 1 || v.Detail == "" {
		t.Fatalf("after 30 bad keys from one end client: got %+v, want TOO_MANY_FAILURES with retry_after", v)
	}
	ts.call(t, "POST", "/v1/keys/verify", ts.root(), `{"key":"`+k.Plaintext+`","ip":"203.0.113.51"}`, &v)
	if !v.Valid {
		t.Fatalf("another end client: got %+v, want valid", v)
	}
}
