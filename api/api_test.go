package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/internal/apicheck"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/quota"
	"github.com/keygate/keygate/sqlite"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	*httptest.Server
	api     *api.Server
	rootKey string
	logs    *syncBuffer
	store   *sqlite.Store
	usage   *engine.UsageBuffer
	clock   *testclock.Clock
}

func newServer(t testing.TB) *testServer {
	t.Helper()
	return newServerUsage(t, nil)
}

// newServerUsage is newServer whose usage buffer writes to usageStore(the
// store) when usageStore is not nil.
func newServerUsage(t testing.TB, usageStore func(*sqlite.Store) keygate.UsageStore) *testServer {
	t.Helper()
	ctx := context.Background()
	clk := testclock.New(time.Date(2026, 11, 28, 12, 30, 0, 0, time.UTC))
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	store.Now = clk.Now
	t.Cleanup(func() { store.Close() })
	logs := &syncBuffer{}
	logScanner.Log(t.Name()+"'s server log", logs.String)
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hasher := apikey.NewHasher(nil)
	eng := engine.New(store, engine.Options{Hasher: hasher, Limiter: quota.NewLocal(quota.Options{Now: clk.Now}), Logger: log, Now: clk.Now})
	t.Cleanup(eng.Close)
	if err := eng.Load(ctx); err != nil {
		t.Fatal(err)
	}
	adm := &manage.Service{Store: store, Hasher: hasher, Now: clk.Now}
	_, root, err := adm.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var us keygate.UsageStore = store
	if usageStore != nil {
		us = usageStore(store)
	}
	usage := engine.NewUsageBuffer(us, engine.UsageOptions{ShutdownTimeout: 200 * time.Millisecond, Logger: log, Now: clk.Now})
	runCtx, stopUsage := context.WithCancel(context.Background())
	usageDone := make(chan struct{})
	go func() { usage.Run(runCtx); close(usageDone) }()
	t.Cleanup(func() { stopUsage(); <-usageDone })
	mets := metrics.New(metrics.Sources{UsageDepth: usage.Depth, UsageDropped: usage.Dropped})
	srv := &api.Server{Engine: eng, Manage: adm, Store: store, UsageStore: store, Usage: usage, Metrics: mets, Logger: log, Registration: manage.RegistrationOpen, Now: clk.Now}
	h := srv.Handler()
	if _, bench := t.(*testing.B); !bench {
		h = apicheck.Handler(t, h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &testServer{Server: ts, api: srv, rootKey: root, logs: logs, store: store, usage: usage, clock: clk}
}

// flushUsage writes the usage recorded so far to the store.
func (ts *testServer) flushUsage(t testing.TB) {
	t.Helper()
	if err := ts.usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// call sends a request and decodes a JSON answer into out (when not nil).
func (ts *testServer) call(t testing.TB, method, path string, hdr map[string]string, body string, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	logScanner.Issued(string(data))
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return resp
}

func (ts *testServer) root() map[string]string {
	return map[string]string{"Authorization": "Bearer " + ts.rootKey}
}

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

func TestSeedFlowEndToEnd(t *testing.T) {
	ts := newServer(t)

	// Register → get key.
	var reg api.RegisterResponse
	resp := ts.call(t, "POST", "/v1/register", nil, `{"name":"Ada","email":"ada@example.com"}`, &reg)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: got %d, want 201", resp.StatusCode)
	}
	key := reg.Key.Plaintext
	if !strings.HasPrefix(key, "kg_live_") || reg.Account.Tier != keygate.TierFree || reg.Key.AccountID != reg.Account.ID {
		t.Fatalf("register answer: got key %q, account %+v", key, reg.Account)
	}

	// Call with X-API-Key.
	var weather map[string]any
	resp = ts.call(t, "GET", "/demo/weather?city=Oslo", map[string]string{"X-API-Key": key}, "", &weather)
	if resp.StatusCode != http.StatusOK || weather["city"] != "Oslo" || weather["key_id"] != reg.Key.ID {
		t.Fatalf("weather: got %d %v", resp.StatusCode, weather)
	}
	if got := resp.Header.Get("RateLimit-Policy"); got != `"day";q=1000;w=86400, "sec";q=10;w=2` {
		t.Errorf("RateLimit-Policy: got %q", got)
	}
	if got := resp.Header.Get("RateLimit"); !strings.HasPrefix(got, `"day";r=999;t=`) {
		t.Errorf("RateLimit: got %q, want the day's remaining 999", got)
	}

	// The GET key record has no plaintext.
	var rec map[string]any
	ts.call(t, "GET", "/v1/keys/"+reg.Key.ID, ts.root(), "", &rec)
	if _, ok := rec["key"]; ok || rec["status"] != "active" {
		t.Fatalf("key record: got %v; want status active and no plaintext", rec)
	}

	// Revoke → the same call refused at once.
	resp = ts.call(t, "POST", "/v1/keys/"+reg.Key.ID+"/revoke", ts.root(), `{"reason":"leaked"}`, &rec)
	if resp.StatusCode != http.StatusOK || rec["status"] != "revoked" {
		t.Fatalf("revoke: got %d %v", resp.StatusCode, rec)
	}
	var p problemBody
	resp = ts.call(t, "GET", "/demo/weather", map[string]string{"X-API-Key": key}, "", &p)
	if resp.StatusCode != http.StatusUnauthorized || p.Code != "REVOKED" || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("after revoke: got %d %+v", resp.StatusCode, p)
	}

	// Nothing logged the plaintext keys.
	logs := ts.logs.String()
	if !strings.Contains(logs, `"path":"/demo/weather"`) {
		t.Fatalf("the log capture saw no requests: %s", logs)
	}
	for _, secret := range []string{key, ts.rootKey} {
		if strings.Contains(logs, secret) || strings.Contains(logs, secret[len(secret)-20:]) {
			t.Fatalf("logs contain a plaintext key:\n%s", logs)
		}
	}
}

func TestAdminKeyLifecycle(t *testing.T) {
	ts := newServer(t)
	var acct keygate.Account
	if resp := ts.call(t, "POST", "/v1/accounts", ts.root(), `{"name":"Acme","email":"ops@acme.test","tier":"pro"}`, &acct); resp.StatusCode != 201 {
		t.Fatalf("create account: got %d", resp.StatusCode)
	}
	var created api.KeyView
	body := `{"account_id":"` + acct.ID + `","name":"ci","scopes":["weather:read"],"env":"test","meta":{"team":"x"}}`
	if resp := ts.call(t, "POST", "/v1/keys", ts.root(), body, &created); resp.StatusCode != 201 {
		t.Fatalf("create key: got %d", resp.StatusCode)
	}
	if !strings.HasPrefix(created.Plaintext, "kg_test_") || created.Start != created.Plaintext[:len("kg_test_")+4] {
		t.Fatalf("created key: got start %q for key %q", created.Start, created.Plaintext)
	}

	var v api.VerifyResponse
	ts.call(t, "POST", "/v1/keys/verify", ts.root(), `{"key":"`+created.Plaintext+`","scopes":["weather:read"]}`, &v)
	if !v.Valid || v.Code != keygate.OutcomeValid || v.KeyID != created.ID || v.Tier != "pro" || v.Quota == nil || v.Quota.Limit != 100000 || v.Quota.Remaining != 99999 || string(v.Meta) != `{"team":"x"}` {
		t.Fatalf("verify: got %+v", v)
	}
	ts.call(t, "POST", "/v1/keys/verify", ts.root(), `{"key":"`+created.Plaintext+`","scopes":["admin:write"]}`, &v)
	if v.Valid || v.Code != keygate.OutcomeInsufficientScope || v.MissingScope != "admin:write" {
		t.Fatalf("verify with a scope the key lacks: got %+v", v)
	}

	var keys api.List[api.KeyView]
	ts.call(t, "GET", "/v1/keys?account_id="+acct.ID, ts.root(), "", &keys)
	if len(keys.Data) != 1 || keys.Data[0].ID != created.ID || keys.Data[0].Plaintext != "" {
		t.Fatalf("list keys: got %+v", keys)
	}
	var tiers api.List[keygate.Tier]
	ts.call(t, "GET", "/v1/tiers", ts.root(), "", &tiers)
	if len(tiers.Data) < 2 {
		t.Fatalf("tiers: got %+v", tiers)
	}
}

func TestAccountPagination(t *testing.T) {
	ts := newServer(t)
	var want []string
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		var a keygate.Account
		ts.call(t, "POST", "/v1/accounts", ts.root(), `{"name":"`+name+`","email":"`+name+`@example.com"}`, &a)
		want = append(want, a.ID)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		var l api.List[keygate.Account]
		ts.call(t, "GET", "/v1/accounts?limit=2&cursor="+cursor, ts.root(), "", &l)
		for _, a := range l.Data {
			got = append(got, a.ID)
		}
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paged accounts: got %v, want %v", got, want)
	}
}

func TestProblems(t *testing.T) {
	ts := newServer(t)
	ctx := context.Background()
	_, verifyOnly, err := ts.api.Manage.CreateRootKey(ctx, manage.ActorSystem, "verifier", []string{keygate.PermVerify})
	if err != nil {
		t.Fatal(err)
	}
	var reg api.RegisterResponse
	ts.call(t, "POST", "/v1/register", nil, `{"name":"Bo","email":"bo@example.com"}`, &reg)
	acct := reg.Account.ID
	key := reg.Key.Plaintext

	root := ts.root()
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		body               string
		status             int
		code               string
	}{
		{"no root key", "GET", "/v1/accounts", nil, "", 401, keygate.EUNAUTHORIZED},
		{"wrong root key", "GET", "/v1/accounts", map[string]string{"Authorization": "Bearer kgr_live_nope"}, "", 401, keygate.EUNAUTHORIZED},
		{"API key as root key", "GET", "/v1/accounts", map[string]string{"Authorization": "Bearer " + key}, "", 401, keygate.EUNAUTHORIZED},
		{"missing permission", "GET", "/v1/accounts", map[string]string{"Authorization": "Bearer " + verifyOnly}, "", 403, keygate.EFORBIDDEN},
		{"malformed JSON", "POST", "/v1/accounts", root, `{"name":`, 400, keygate.EINVALID},
		{"not an object", "POST", "/v1/accounts", root, `[1,2]`, 400, keygate.EINVALID},
		{"unknown field", "POST", "/v1/accounts", root, `{"name":"x","email":"x@example.com","admin":true}`, 400, keygate.EINVALID},
		{"wrong type", "POST", "/v1/accounts", root, `{"name":5,"email":"x@example.com"}`, 400, keygate.EINVALID},
		{"two objects", "POST", "/v1/accounts", root, `{"name":"x","email":"x@example.com"}{}`, 400, keygate.EINVALID},
		{"empty body", "POST", "/v1/accounts", root, "", 400, keygate.EINVALID},
		{"oversized body", "POST", "/v1/accounts", root, `{"name":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`, 413, keygate.ETOOLARGE},
		{"escape sequence in a registered name", "POST", "/v1/register", nil, `{"name":"Bo\u001b]0;pwned\u0007","email":"bo2@example.com"}`, 400, keygate.EINVALID},
		{"bidi override in an account name", "POST", "/v1/accounts", root, `{"name":"evil\u202egnp.exe","email":"x@example.com"}`, 400, keygate.EINVALID},
		{"line break in an email", "POST", "/v1/accounts", root, `{"name":"x","email":"x@example.com\r\nBcc: y@example.com"}`, 400, keygate.EINVALID},
		{"control character in a key name", "POST", "/v1/keys", root, `{"account_id":"` + acct + `","name":"a\nFAKE"}`, 400, keygate.EINVALID},
		{"control character in meta", "POST", "/v1/keys", root, `{"account_id":"` + acct + `","meta":{"plan":"\u009b2J"}}`, 400, keygate.EINVALID},
		{"bad email", "POST", "/v1/accounts", root, `{"name":"x","email":"not-an-email"}`, 400, keygate.EINVALID},
		{"unknown tier", "POST", "/v1/accounts", root, `{"name":"x","email":"y@example.com","tier":"gold"}`, 400, keygate.EINVALID},
		{"duplicate email", "POST", "/v1/accounts", root, `{"name":"x","email":"bo@example.com"}`, 409, keygate.ECONFLICT},
		{"unknown account", "GET", "/v1/accounts/acc_nope", root, "", 404, keygate.ENOTFOUND},
		{"key for unknown account", "POST", "/v1/keys", root, `{"account_id":"acc_nope"}`, 404, keygate.ENOTFOUND},
		{"key without account", "POST", "/v1/keys", root, `{"name":"x"}`, 400, keygate.EINVALID},
		{"bad env", "POST", "/v1/keys", root, `{"account_id":"` + acct + `","env":"prod"}`, 400, keygate.EINVALID},
		{"bad scope", "POST", "/v1/keys", root, `{"account_id":"` + acct + `","scopes":["no spaces"]}`, 400, keygate.EINVALID},
		{"bad CIDR", "POST", "/v1/keys", root, `{"account_id":"` + acct + `","ip_allow":["10.0.0.0/33"]}`, 400, keygate.EINVALID},
		{"meta not an object", "POST", "/v1/keys", root, `{"account_id":"` + acct + `","meta":[1]}`, 400, keygate.EINVALID},
		{"expiry in the past", "POST", "/v1/keys", root, `{"account_id":"` + acct + `","expires_at":"2001-01-01T00:00:00Z"}`, 400, keygate.EINVALID},
		{"absurd quota", "POST", "/v1/keys", root, `{"account_id":"` + acct + `","quota_per_day":-5}`, 400, keygate.EINVALID},
		{"unknown key", "GET", "/v1/keys/key_nope", root, "", 404, keygate.ENOTFOUND},
		{"revoke unknown key", "POST", "/v1/keys/key_nope/revoke", root, "", 404, keygate.ENOTFOUND},
		{"bad limit", "GET", "/v1/keys?limit=0", root, "", 400, keygate.EINVALID},
		{"bad status filter", "GET", "/v1/keys?status=zombie", root, "", 400, keygate.EINVALID},
		{"verify needs a root key", "POST", "/v1/keys/verify", nil, `{"key":"x"}`, 401, keygate.EUNAUTHORIZED},
		{"verify bad ip", "POST", "/v1/keys/verify", root, `{"key":"x","ip":"999.1.1.1"}`, 400, keygate.EINVALID},
		{"no such route", "GET", "/v2/whatever", nil, "", 404, keygate.ENOTFOUND},
		{"wrong method", "DELETE", "/v1/accounts", root, "", 405, "METHOD_NOT_ALLOWED"},
		{"weather without key", "GET", "/demo/weather", nil, "", 401, "MISSING_KEY"},
		{"weather with key in query", "GET", "/demo/weather?api_key=" + key, nil, "", 400, "KEY_IN_QUERY"},
		{"weather with garbage key", "GET", "/demo/weather", map[string]string{"X-API-Key": "kg_live_abc"}, "", 401, "MALFORMED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p problemBody
			resp := ts.call(t, tt.method, tt.path, tt.hdr, tt.body, &p)
			if resp.StatusCode != tt.status || p.Code != tt.code || p.Status != tt.status {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, p, tt.status, tt.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type: got %q, want application/problem+json", ct)
			}
			if p.Detail == "" || p.Title == "" || p.Type == "" {
				t.Errorf("problem lacks detail, title or type: %+v", p)
			}
		})
	}
}

func TestRegistrationClosed(t *testing.T) {
	ts := newServer(t)
	ts.api.Registration = manage.RegistrationClosed
	h := ts.api.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/register", strings.NewReader(`{"name":"x","email":"x@example.com"}`)))
	var p problemBody
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 403 || p.Code != keygate.EFORBIDDEN {
		t.Fatalf("closed registration: got %d %+v, want 403 FORBIDDEN", rec.Code, p)
	}
}
