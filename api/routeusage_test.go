package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

// Requests without a valid key are counted per route and outcome, not
// stored a row each, and GET /v1/usage/routes shows the counts.
func TestRouteUsageCountsAnonymous(t *testing.T) {
	ts := newServer(t)
	for range 25 {
		ts.call(t, "GET", "/demo/weather", nil, "", nil)
	}
	ts.flushUsage(t)
	raw, err := ts.store.UsageEvents(context.Background(), keygate.UsageQuery{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 0 {
		t.Fatalf("raw usage events of anonymous requests: %d, want none", len(raw))
	}
	var got api.RouteUsageResponse
	if resp := ts.call(t, "GET", "/v1/usage/routes", ts.root(), "", &got); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/usage/routes: %d", resp.StatusCode)
	}
	var n int64
	for _, c := range got.Data {
		if strings.Contains(c.Route, "/demo/weather") && c.Outcome == "missing_key" {
			n += c.Count
		}
	}
	if n != 25 {
		t.Fatalf("missing_key count of /demo/weather: got %d in %+v, want 25", n, got.Data)
	}
	for _, q := range []string{"?key_id=key_x", "?granularity=day", "?from=yesterday", "?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z"} {
		var p problemBody
		if resp := ts.call(t, "GET", "/v1/usage/routes"+q, ts.root(), "", &p); resp.StatusCode != http.StatusBadRequest || p.Code != keygate.EINVALID {
			t.Errorf("GET /v1/usage/routes%s: %d %+v, want 400", q, resp.StatusCode, p)
		}
	}
}
