package api_test

import (
	"net/http"
	"testing"

	"github.com/keygate/keygate/problem"
)

// Every 401 names the credentials the endpoint takes (RFC 9110 §11.6.1):
// a root key as a bearer token on admin routes, an API key in X-API-Key
// (or as a bearer token) on keyed routes.
func TestUnauthorizedCarriesChallenge(t *testing.T) {
	ts := newServer(t)
	tests := []struct {
		method, path string
		hdr          map[string]string
		want         string
	}{
		{"GET", "/v1/accounts", nil, problem.ChallengeRootKey},
		{"GET", "/v1/accounts", map[string]string{"Authorization": "Bearer kgr_live_nope"}, problem.ChallengeRootKey},
		{"POST", "/v1/keys/verify", nil, problem.ChallengeRootKey},
		{"GET", "/demo/weather", nil, problem.ChallengeAPIKey},
		{"GET", "/demo/weather", map[string]string{"X-API-Key": "kg_live_nope"}, problem.ChallengeAPIKey},
	}
	for _, tt := range tests {
		resp := ts.call(t, tt.method, tt.path, tt.hdr, "", nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s: status %d, want 401", tt.method, tt.path, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != tt.want {
			t.Errorf("%s %s: WWW-Authenticate %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

// The auth-scheme is case-insensitive (RFC 9110 §11.1): "bearer" and
// "BEARER" carry a root key as well as "Bearer" does.
func TestBearerSchemeAnyCase(t *testing.T) {
	ts := newServer(t)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		resp := ts.call(t, "GET", "/v1/accounts", map[string]string{"Authorization": scheme + " " + ts.rootKey}, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("Authorization: %s <root key>: status %d, want 200", scheme, resp.StatusCode)
		}
	}
	resp := ts.call(t, "GET", "/v1/accounts", map[string]string{"Authorization": "Basic " + ts.rootKey}, "", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Authorization: Basic <root key>: status %d, want 401", resp.StatusCode)
	}
}
