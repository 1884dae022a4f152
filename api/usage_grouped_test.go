package api_test

import (
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

func TestUsageGroupedAndTop(t *testing.T) {
	ts := newServer(t)
	acct := ts.account(t, "")
	k := ts.newKey(t, `{"account_id":"`+acct+`","scopes":["weather:read"]}`)
	other := ts.newKey(t, `{"account_id":"`+ts.account(t, "")+`"}`)
	for range 3 {
		ts.weather(t, k.Plaintext)
	}
	ts.call(t, "POST", "/v1/keys/"+other.ID+"/disable", ts.root(), "", nil)
	ts.weather(t, other.Plaintext) // 403 DISABLED
	for _, route := range []string{"/orders/{id}", "/orders/{id}"} {
		if resp := ts.call(t, "POST", "/v1/keys/verify", ts.root(), `{"key":"`+k.Plaintext+`","method":"get","route":"`+route+`"}`, nil); resp.StatusCode != 200 {
			t.Fatalf("verify: %d", resp.StatusCode)
		}
	}
	ts.flushUsage(t)

	groups := func(q string) (api.UsageResponse, map[string]int64) {
		t.Helper()
		var u api.UsageResponse
		if resp := ts.call(t, "GET", "/v1/usage?granularity=hour&"+q, ts.root(), "", &u); resp.StatusCode != 200 {
			t.Fatalf("GET /v1/usage?%s: %d", q, resp.StatusCode)
		}
		m := map[string]int64{}
		for _, b := range u.Data {
			for _, g := range b.Groups {
				m[g.Value] += g.Total
			}
		}
		return u, m
	}
	u, byRoute := groups("group_by=route")
	if u.GroupBy != "route" || len(u.Data) != 1 || u.Data[0].Total != 6 || u.Data[0].Latency == nil {
		t.Fatalf("usage by route: got %+v", u)
	}
	if byRoute["/demo/weather"] != 4 || byRoute["/orders/{id}"] != 2 || len(byRoute) != 2 {
		t.Errorf("usage by route: got %v, want 4 on /demo/weather and 2 on /orders/{id}", byRoute)
	}
	if _, byStatus := groups("group_by=status"); byStatus["200"] != 5 || byStatus["403"] != 1 {
		t.Errorf("usage by status: got %v, want 5×200 and 1×403", byStatus)
	}
	if _, byOutcome := groups("group_by=outcome"); byOutcome["valid"] != 5 || byOutcome["disabled"] != 1 {
		t.Errorf("usage by outcome: got %v", byOutcome)
	}
	if u, byKey := groups("group_by=key&account_id=" + acct); byKey[k.ID] != 5 || len(byKey) != 1 || u.Data[0].Groups[0].AccountID != acct {
		t.Errorf("usage of an account by key: got %v (%+v)", byKey, u.Data)
	}
	if _, byAccount := groups("group_by=account"); byAccount[acct] != 5 || len(byAccount) != 2 {
		t.Errorf("usage by account: got %v", byAccount)
	}

	var top api.UsageTopResponse
	ts.call(t, "GET", "/v1/usage/top?limit=1", ts.root(), "", &top)
	if top.By != "key" || len(top.Data) != 1 || top.Data[0].Value != k.ID || top.Data[0].Total != 5 || top.Data[0].AccountID != acct || top.Data[0].Latency == nil {
		t.Errorf("GET /v1/usage/top: got %+v, want the busiest key", top)
	}
	ts.call(t, "GET", "/v1/usage/top?by=account", ts.root(), "", &top)
	if top.By != "account" || len(top.Data) != 2 || top.Data[0].Value != acct {
		t.Errorf("GET /v1/usage/top?by=account: got %+v", top)
	}

	req, _ := http.NewRequest("GET", ts.URL+"/v1/usage?format=csv&group_by=route&granularity=hour", nil)
	req.Header.Set("Authorization", "Bearer "+ts.rootKey)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("CSV by route: %v, %q", err, body)
	}
	head := rows[0]
	if head[1] != "route" || head[2] != "total" || head[len(head)-3] != "p50_ms" || rows[1][1] != "/demo/weather" || rows[1][2] != "4" {
		t.Errorf("CSV by route: got %v", rows)
	}

	for _, tt := range []struct{ path, param string }{
		{"/v1/usage?group_by=path", "group_by"},
		{"/v1/usage?group_by=route&from=2026-11-29T00:00:00Z&to=2026-11-28T00:00:00Z", "from"},
		{"/v1/usage?group_by=key&to=tomorrow", "to"},
		{"/v1/usage/top?by=route", "by"},
		{"/v1/usage/top?limit=0", "limit"},
		{"/v1/usage/top?limit=1000", "limit"},
		{"/v1/usage/top?granularity=week", "granularity"},
		{"/v1/usage/top?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&granularity=hour", "from and to"},
	} {
		var p problemBody
		resp := ts.call(t, "GET", tt.path, ts.root(), "", &p)
		if resp.StatusCode != 400 || p.Code != keygate.EINVALID || !strings.Contains(p.Detail, tt.param) ||
			resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: got %d %+v, want 400 naming %s", tt.path, resp.StatusCode, p, tt.param)
		}
	}
}
