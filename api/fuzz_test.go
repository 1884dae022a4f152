package api_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/problem"
)

// FuzzAdminBodies sends arbitrary bodies to every route of the API that
// takes one, authorized with a root key and with real IDs in the path, so
// that decoding and validation run to the end: the answer is never a 5xx
// nor a panic, and every refusal is a problem body.
func FuzzAdminBodies(f *testing.F) {
	ts := newServer(f)
	var acct keygate.Account
	if resp := ts.call(f, "POST", "/v1/accounts", ts.root(), `{"name":"Fuzz","email":"fuzz@example.com"}`, &acct); resp.StatusCode != 201 {
		f.Fatalf("create account: %d", resp.StatusCode)
	}
	var key api.KeyView
	if resp := ts.call(f, "POST", "/v1/keys", ts.root(), `{"account_id":"`+acct.ID+`","name":"k"}`, &key); resp.StatusCode != 201 {
		f.Fatalf("create key: %d", resp.StatusCode)
	}
	var endpoints []api.Endpoint
	for _, e := range ts.api.Endpoints() {
		if e.Method != "GET" {
			endpoints = append(endpoints, e)
		}
	}
	path := func(p string) string {
		r := strings.NewReplacer("{id}", key.ID, "{name}", keygate.TierFree, "{delivery_id}", "del_nope")
		if strings.HasPrefix(p, "/v1/accounts/") {
			r = strings.NewReplacer("{id}", acct.ID)
		}
		return r.Replace(p)
	}
	seeds := []string{
		`{}`, `[]`, `null`, ``, `{"name":"x"}`, `{"name":"a","email":"a@b.c","tier":"free"}`,
		`{"account_id":"` + acct.ID + `","name":"k","scopes":["a:*"],"ip_allow":["10.0.0.0/8"],"meta":{"a":1},"expires_at":"2030-01-01T00:00:00Z"}`,
		`{"key":"` + key.Plaintext + `","scopes":["x"],"ip":"::1"}`, `{"grace":"24h"}`, `{"grace":"-1s"}`,
		`{"name":"t","quota_per_day":9223372036854775807,"rate_per_second":1e308,"burst":-1}`,
		`{"keys":[{"hash":"` + strings.Repeat("ab", 32) + `","account_id":"` + acct.ID + `"}]}`,
		`{"url":"https://example.com/hook","events":["key.revoked"]}`, `{"reason":"\u202e"}`,
		`{"permissions":["metrics"],"name":"m"}`, `{"name":"x","name":"y"}`, "{\"name\":\"\xff\"}",
	}
	// Every endpoint gets the empty object and a share of the others, so
	// that the corpus stays small enough to replay in a few seconds.
	for i := range endpoints {
		f.Add(uint8(i), []byte(`{}`))
		for j := i % 4; j < len(seeds); j += 4 {
			f.Add(uint8(i), []byte(seeds[j]))
		}
	}
	h := ts.api.Handler()
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		e := endpoints[int(route)%len(endpoints)]
		req := httptest.NewRequest(e.Method, path(e.Path), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ts.rootKey)
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "192.0.2.1:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", e.Method, e.Path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && !strings.HasPrefix(rec.Header().Get("Content-Type"), problem.ContentType) {
			t.Fatalf("%s %s %q: %d without a problem body", e.Method, e.Path, body, rec.Code)
		}
		if rec.Code == http.StatusUnauthorized && e.Path != "/v1/leaks/github" && e.Path != "/demo/weather" {
			t.Fatalf("%s %s %q: 401 with the root key: it was revoked by an earlier input", e.Method, e.Path, body)
		}
	})
}
