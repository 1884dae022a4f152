package gateway_test

import (
	"net/http"
	"testing"

	"github.com/keygate/keygate/problem"
)

// A 401 from the gateway names the credentials it takes (RFC 9110
// §11.6.1), and a key sent as a bearer token is found whatever the case
// of the scheme.
func TestGatewayChallengeAndBearerCase(t *testing.T) {
	e := newEnv(t, echo(200))
	plain, _ := e.key(t, "weather:read")
	for _, hdr := range []map[string]string{nil, {"X-API-Key": "kg_live_nope"}} {
		resp, body := e.do(t, "GET", "/weather", hdr, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET /weather %v: status %d, want 401: %s", hdr, resp.StatusCode, body)
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != problem.ChallengeAPIKey {
			t.Errorf("GET /weather %v: WWW-Authenticate %q, want %q", hdr, got, problem.ChallengeAPIKey)
		}
	}
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		resp, body := e.do(t, "GET", "/weather", map[string]string{"Authorization": scheme + " " + plain}, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("Authorization: %s <key>: status %d, want 200: %s", scheme, resp.StatusCode, body)
		}
		if resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("Authorization: %s <key>: a 200 carries WWW-Authenticate", scheme)
		}
	}
}
