package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/problem"
)

// With MetricsAuth, /metrics needs a root key holding the metrics
// permission.
func TestMetricsAuth(t *testing.T) {
	ts := newServer(t)
	ts.api.MetricsAuth = true
	var rk api.RootKeyView
	if resp := ts.call(t, "POST", "/v1/root-keys", ts.root(), `{"name":"reader","permissions":["admin:read"]}`, &rk); resp.StatusCode != 201 {
		t.Fatalf("create root key: %d", resp.StatusCode)
	}
	var mon api.RootKeyView
	if resp := ts.call(t, "POST", "/v1/root-keys", ts.root(), `{"name":"prometheus","permissions":["metrics"]}`, &mon); resp.StatusCode != 201 {
		t.Fatalf("create root key: %d", resp.StatusCode)
	}
	resp := ts.call(t, "GET", "/metrics", nil, "", nil)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != problem.ChallengeRootKey {
		t.Fatalf("/metrics without a root key: %d %q, want 401 with a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp := ts.call(t, "GET", "/metrics", map[string]string{"Authorization": "Bearer " + rk.Plaintext}, "", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("/metrics with an admin:read root key: %d, want 403", resp.StatusCode)
	}
	if resp := ts.call(t, "GET", "/metrics", map[string]string{"Authorization": "bearer " + mon.Plaintext}, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics with a metrics root key: %d, want 200", resp.StatusCode)
	}
	if resp := ts.call(t, "GET", "/v1/accounts", map[string]string{"Authorization": "Bearer " + mon.Plaintext}, "", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("/v1/accounts with a metrics-only root key: %d, want 403", resp.StatusCode)
	}
}

// With MetricsElsewhere, the API's /metrics is 404 and MetricsHandler
// serves the metrics, and nothing else.
func TestMetricsElsewhere(t *testing.T) {
	ts := newServer(t)
	ts.api.MetricsElsewhere = true
	if resp := ts.call(t, "GET", "/metrics", nil, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/metrics on the API listener: %d, want 404", resp.StatusCode)
	}
	m := httptest.NewServer(ts.api.MetricsHandler())
	defer m.Close()
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/metrics", 200}, {"GET", "/v1/accounts", 404}, {"POST", "/metrics", 405}, {"GET", "/metrics/x", 404},
	} {
		req, _ := http.NewRequest(tt.method, m.URL+tt.path, nil)
		resp, err := m.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s on the metrics listener: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
		if tt.want != 200 && !strings.HasPrefix(resp.Header.Get("Content-Type"), problem.ContentType) {
			t.Errorf("%s %s: not a problem body", tt.method, tt.path)
		}
	}
}
