package api_test

import (
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate/api"
)

func TestUsageAPI(t *testing.T) {
	ts := newServer(t)
	acct := ts.account(t, "")
	k := ts.newKey(t, `{"account_id":"`+acct+`","scopes":["weather:read"]}`)
	for range 3 {
		ts.weather(t, k.Plaintext)
	}
	ts.call(t, "POST", "/v1/keys/"+k.ID+"/disable", ts.root(), "", nil)
	ts.weather(t, k.Plaintext)

	ts.flushUsage(t)
	var u api.UsageResponse
	ts.call(t, "GET", "/v1/usage?granularity=hour&key_id="+k.ID, ts.root(), "", &u)
	if len(u.Data) != 1 || u.Data[0].Total != 4 || u.Data[0].Counts["valid"] != 3 || u.Data[0].Counts["disabled"] != 1 || u.Granularity != "hour" {
		t.Fatalf("usage of the key: got %+v", u)
	}
	var byAccount api.UsageResponse
	ts.call(t, "GET", "/v1/usage?account_id="+acct, ts.root(), "", &byAccount)
	if len(byAccount.Data) != 1 || byAccount.Data[0].Total != 4 || byAccount.Granularity != "day" {
		t.Fatalf("daily usage of the account: got %+v", byAccount)
	}

	var rec api.KeyView
	ts.call(t, "GET", "/v1/keys/"+k.ID, ts.root(), "", &rec)
	if rec.LastUsedAt == nil {
		t.Fatal("last_used_at not set")
	}

	req, _ := http.NewRequest("GET", ts.URL+"/v1/usage?format=csv&key_id="+k.ID, nil)
	req.Header.Set("Authorization", "Bearer "+ts.rootKey)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("CSV: %v, %q", err, resp.Header.Get("Content-Type"))
	}
	if len(rows) != 2 || rows[0][0] != "start" || rows[0][1] != "total" || rows[0][2] != "valid" || rows[1][1] != "4" || rows[1][2] != "3" {
		t.Fatalf("CSV rows: got %v", rows)
	}

	for _, q := range []string{"granularity=week", "format=xml", "from=yesterday", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "granularity=hour&from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"} {
		var p problemBody
		if resp := ts.call(t, "GET", "/v1/usage?"+q, ts.root(), "", &p); resp.StatusCode != 400 || p.Code != "INVALID_REQUEST" {
			t.Errorf("GET /v1/usage?%s: got %d %+v, want 400", q, resp.StatusCode, p)
		}
	}
}

func TestReadyzFollowsTheStore(t *testing.T) {
	ts := newServer(t)
	if resp := ts.call(t, "GET", "/readyz", nil, "", nil); resp.StatusCode != 200 {
		t.Fatalf("readyz with the store up: got %d", resp.StatusCode)
	}
	acct := ts.account(t, "")
	k := ts.newKey(t, `{"account_id":"`+acct+`"}`)
	if err := ts.store.Close(); err != nil {
		t.Fatal(err)
	}
	var p problemBody
	if resp := ts.call(t, "GET", "/readyz", nil, "", &p); resp.StatusCode != 503 || p.Code != "STORE_UNAVAILABLE" {
		t.Fatalf("readyz with the store down: got %d %+v, want 503 STORE_UNAVAILABLE", resp.StatusCode, p)
	}
	// Known keys still verify from memory; admin writes answer 503.
	if code, outcome, _ := ts.weather(t, k.Plaintext); code != 200 {
		t.Fatalf("a known key with the store down: got %d %s, want 200", code, outcome)
	}
	if resp := ts.call(t, "POST", "/v1/accounts", ts.root(), `{"name":"x","email":"down@example.com"}`, &p); resp.StatusCode != 503 || p.Code != "STORE_UNAVAILABLE" {
		t.Fatalf("an admin write with the store down: got %d %+v, want 503", resp.StatusCode, p)
	}
}
