package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/keyauth"
	"github.com/keygate/keygate/manage"
)

// TestKeysInURLRefusedEverywhere checks that a key in the URL is refused
// with KEY_IN_QUERY on admin, verify and keyed routes alike, whatever the
// parameter's name or case, is never echoed or logged, and is audited
// against the key.
func TestKeysInURLRefusedEverywhere(t *testing.T) {
	ts := newServer(t)
	var reg api.RegisterResponse
	if resp := ts.call(t, "POST", "/v1/register", nil, `{"name":"Ada","email":"ada@example.com"}`, &reg); resp.StatusCode != 201 {
		t.Fatalf("register: got %d", resp.StatusCode)
	}
	key := reg.Key.Plaintext
	exp := &manage.Exposures{Service: ts.api.Manage, Lookup: ts.api.Engine.Find}
	ts.api.Exposed = func(r *http.Request, e keyauth.Exposure) { exp.Report(r, e.Key, e.Where) }
	srv := httptest.NewServer(ts.api.Handler())
	defer srv.Close()

	tests := []struct{ name, method, target string }{
		{"admin route, odd parameter name", "GET", "/v1/accounts?q=" + key},
		{"verify route, upper-case name", "POST", "/v1/keys/verify?API_KEY=" + key},
		{"keyed route, token", "GET", "/demo/weather?Token=" + key},
		{"key in a path", "GET", "/v1/keys/" + key},
		{"key in an unknown path", "GET", "/nothing/" + key + "/x"},
		{"percent-encoded", "GET", "/v1/tiers?x=" + strings.ReplaceAll(key, "_", "%5F")},
		{"named parameter with any value", "GET", "/v1/tiers?access_token=abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.target, nil)
			req.Header.Set("Authorization", "Bearer "+ts.rootKey)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(body), `"code":"KEY_IN_QUERY"`) {
				t.Fatalf("got %d %s, want 400 KEY_IN_QUERY", resp.StatusCode, body)
			}
			if strings.Contains(string(body), key[8:20]) {
				t.Fatalf("the answer echoes the key: %s", body)
			}
		})
	}
	exp.Wait()
	var audit api.List[*keygate.AuditEvent]
	ts.call(t, "GET", "/v1/audit?action=key.exposed&target="+reg.Key.ID, ts.root(), "", &audit)
	if len(audit.Data) != 1 || audit.Data[0].TargetID != reg.Key.ID {
		t.Fatalf("audit: got %d key.exposed events %+v, want 1 (reports of one key are merged for a minute)", len(audit.Data), audit.Data)
	}
	if strings.Contains(string(audit.Data[0].Details), key) {
		t.Fatalf("the audit event holds the plaintext key: %s", audit.Data[0].Details)
	}
	logs := ts.logs.String()
	if strings.Contains(logs, key) || strings.Contains(logs, key[len(key)-20:]) {
		t.Fatalf("logs contain the plaintext key:\n%s", logs)
	}
	if !strings.Contains(logs, "/v1/keys/"+reg.Key.Start+"…") {
		t.Fatalf("logs lack the redacted path:\n%s", logs)
	}
}

// TestMountBesideOtherHandlers checks that the API claims only its own
// paths on a shared mux, and still answers 404 and 405 problems there.
func TestMountBesideOtherHandlers(t *testing.T) {
	ts := newServer(t)
	mux := http.NewServeMux()
	ts.api.Mount(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream "+r.URL.Path) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(method, path string) (int, string, http.Header) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if code, body, _ := get("GET", "/weather"); code != 200 || body != "upstream /weather" {
		t.Fatalf("/weather: got %d %q, want the other handler", code, body)
	}
	if code, _, _ := get("GET", "/healthz"); code != 200 {
		t.Fatalf("/healthz: got %d", code)
	}
	if code, body, _ := get("GET", "/v1/nothing"); code != 404 || !strings.Contains(body, keygate.ENOTFOUND) {
		t.Fatalf("/v1/nothing: got %d %s, want a 404 problem", code, body)
	}
	code, body, hdr := get("DELETE", "/v1/accounts")
	if code != 405 || !strings.Contains(body, "METHOD_NOT_ALLOWED") || hdr.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("DELETE /v1/accounts: got %d %s", code, body)
	}
	if allow := hdr.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Fatalf("Allow: got %q, want GET and POST", allow)
	}
}

// TestVerifyRecordsTheCallersRoute checks that the verify API records the
// route and method the caller names, or none, never its own path.
func TestVerifyRecordsTheCallersRoute(t *testing.T) {
	ts := newServer(t)
	var reg api.RegisterResponse
	ts.call(t, "POST", "/v1/register", nil, `{"name":"Ada","email":"ada@example.com"}`, &reg)
	key := reg.Key.Plaintext
	ts.call(t, "POST", "/v1/keys/verify", ts.root(), `{"key":"`+key+`","method":"get","route":"/weather/{city}"}`, nil)
	ts.call(t, "POST", "/v1/keys/verify", ts.root(), `{"key":"`+key+`"}`, nil)
	if resp := ts.call(t, "POST", "/v1/keys/verify", ts.root(), `{"key":"`+key+`","route":"a\nb"}`, nil); resp.StatusCode != 400 {
		t.Fatalf("control character in route: got %d, want 400", resp.StatusCode)
	}
	buf := ts.api.Usage.(interface{ Flush(context.Context) error })
	if err := buf.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs, err := ts.store.UsageEvents(context.Background(), keygate.UsageQuery{KeyID: reg.Key.ID}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]string
	for _, ev := range evs {
		got = append(got, [2]string{ev.Method, ev.Route})
	}
	want := [][2]string{{"GET", "/weather/{city}"}, {"", ""}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("usage events: got %v, want %v", got, want)
	}
}
