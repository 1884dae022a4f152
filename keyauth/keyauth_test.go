package keyauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"peer by default", "203.0.113.5:4000", nil, nil, "203.0.113.5"},
		{"XFF ignored without trusted proxies", "10.0.0.1:4000", []string{"198.51.100.1"}, nil, "10.0.0.1"},
		{"XFF ignored from an untrusted peer", "203.0.113.5:4000", []string{"198.51.100.1"}, proxies, "203.0.113.5"},
		{"XFF believed from a trusted proxy", "10.0.0.1:4000", []string{"198.51.100.1"}, proxies, "198.51.100.1"},
		{"rightmost untrusted hop wins", "10.0.0.1:4000", []string{"1.1.1.1, 198.51.100.1, 10.0.0.2"}, proxies, "198.51.100.1"},
		{"several XFF headers", "10.0.0.1:4000", []string{"1.1.1.1", "198.51.100.9"}, proxies, "198.51.100.9"},
		{"garbled chain falls back to the peer", "10.0.0.1:4000", []string{"not-an-ip"}, proxies, "10.0.0.1"},
		{"only proxies in the chain", "10.0.0.1:4000", []string{"10.0.0.3"}, proxies, "10.0.0.1"},
		{"IPv6 peer", "[2001:db8::1]:4000", nil, nil, "2001:db8::1"},
		{"IPv4-mapped peer", "[::ffff:203.0.113.7]:4000", nil, nil, "203.0.113.7"},
		{"IPv6 proxy", "[fd00::1]:4000", []string{"2001:db8::9"}, proxies, "2001:db8::9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, tt.trusted); got != netip.MustParseAddr(tt.want) {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		name, target string
		hdr          map[string]string
		key          string
		inQuery      bool
	}{
		{"X-API-Key", "/", map[string]string{"X-API-Key": " kg_live_x "}, "kg_live_x", false},
		{"bearer", "/", map[string]string{"Authorization": "Bearer kg_live_y"}, "kg_live_y", false},
		{"bearer any case", "/", map[string]string{"Authorization": "bearer kg_live_y"}, "kg_live_y", false},
		{"X-API-Key wins", "/", map[string]string{"X-API-Key": "a", "Authorization": "Bearer b"}, "a", false},
		{"basic auth is not a key", "/", map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}, "", false},
		{"none", "/", nil, "", false},
		{"api_key in query", "/?api_key=kg_live_z", nil, "", true},
		{"key in query even with a header", "/?key=x", map[string]string{"X-API-Key": "a"}, "", true},
		{"other query is fine", "/?city=Oslo", map[string]string{"X-API-Key": "a"}, "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			key, inQuery := Key(r)
			if key != tt.key || inQuery != tt.inQuery {
				t.Fatalf("got %q, %v; want %q, %v", key, inQuery, tt.key, tt.inQuery)
			}
		})
	}
}

func TestRateLimitHeaders(t *testing.T) {
	tests := []struct {
		name           string
		l              keygate.LimitResult
		policy, fields string
	}{
		{"free tier", keygate.LimitResult{QuotaLimit: 1000, QuotaRemaining: 998, QuotaReset: 51234 * time.Second, RateLimit: 10, RateRemaining: 9, RateReset: 200 * time.Millisecond, RatePerSecond: 5},
			`"day";q=1000;w=86400, "sec";q=10;w=2`, `"day";r=998;t=51234, "sec";r=9;t=1`},
		{"pro tier", keygate.LimitResult{QuotaLimit: 100000, QuotaRemaining: 5, QuotaReset: time.Hour, RateLimit: 200, RateRemaining: 200, RatePerSecond: 100},
			`"day";q=100000;w=86400, "sec";q=200;w=2`, `"day";r=5;t=3600, "sec";r=200;t=0`},
		{"slow rate", keygate.LimitResult{QuotaLimit: 10, QuotaRemaining: 0, QuotaReset: 1500 * time.Millisecond, RateLimit: 1, RatePerSecond: 0.5},
			`"day";q=10;w=86400, "sec";q=1;w=2`, `"day";r=0;t=2, "sec";r=0;t=0`},
		{"window rounded up", keygate.LimitResult{QuotaLimit: 10, RateLimit: 3, RateRemaining: 3, RatePerSecond: 2},
			`"day";q=10;w=86400, "sec";q=3;w=2`, `"day";r=0;t=0, "sec";r=3;t=0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			SetRateLimitHeaders(h, &keygate.Verification{Limits: tt.l, HasLimits: true})
			if got := h.Get("RateLimit-Policy"); got != tt.policy {
				t.Errorf("RateLimit-Policy: got %q, want %q", got, tt.policy)
			}
			if got := h.Get("RateLimit"); got != tt.fields {
				t.Errorf("RateLimit: got %q, want %q", got, tt.fields)
			}
		})
	}
	h := http.Header{}
	SetRateLimitHeaders(h, &keygate.Verification{Outcome: keygate.OutcomeNotFound})
	if len(h) != 0 {
		t.Errorf("no limits known: got headers %v, want none", h)
	}
}

type fixedVerifier keygate.Verification

func (f fixedVerifier) Verify(context.Context, keygate.VerifyRequest) keygate.Verification {
	return keygate.Verification(f)
}

func TestMiddlewareRecordsUsage(t *testing.T) {
	k := &keygate.VerifiedKey{ID: "key_1", AccountID: "acc_1"}
	var events []keygate.UsageEvent
	mw := New(fixedVerifier{Outcome: keygate.OutcomeValid, Key: k}, Options{Record: func(ev keygate.UsageEvent) { events = append(events, ev) }})
	mux := http.NewServeMux()
	mux.Handle("GET /items/{id}", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v, ok := FromContext(r.Context()); !ok || v.Key.ID != "key_1" {
			t.Error("the handler did not get the verification")
		}
		w.WriteHeader(http.StatusTeapot)
	})))
	r := httptest.NewRequest("GET", "/items/42", nil)
	r.Header.Set("X-API-Key", "kg_live_whatever")
	mux.ServeHTTP(httptest.NewRecorder(), r)

	refuse := New(fixedVerifier{Outcome: keygate.OutcomeRevoked, Key: k}, Options{Record: func(ev keygate.UsageEvent) { events = append(events, ev) }})
	rec := httptest.NewRecorder()
	refuse(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	var p struct{ Code string }
	json.Unmarshal(rec.Body.Bytes(), &p)
	if rec.Code != 401 || p.Code != "REVOKED" {
		t.Fatalf("refusal: got %d %q", rec.Code, p.Code)
	}

	if len(events) != 2 {
		t.Fatalf("got %d events, want 2", len(events))
	}
	if e := events[0]; e.KeyID != "key_1" || e.AccountID != "acc_1" || e.Route != "/items/{id}" || e.Method != "GET" || e.Status != http.StatusTeapot || e.Outcome != keygate.OutcomeValid || !e.IP.IsValid() {
		t.Errorf("valid request's event: got %+v", e)
	}
	if e := events[1]; e.Status != 401 || e.Outcome != keygate.OutcomeRevoked {
		t.Errorf("refused request's event: got %+v", e)
	}
}

func TestKeyInURL(t *testing.T) {
	key, err := apikey.Generate("kg", keygate.EnvLive)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, target string
		want         Exposure
		found        bool
	}{
		{"clean", "/weather?city=Oslo", Exposure{}, false},
		{"key under any name", "/weather?q=" + key, Exposure{Key: key, Where: "query"}, true},
		{"key among others", "/weather?a=1&b=" + key + "&c=2", Exposure{Key: key, Where: "query"}, true},
		{"named parameter any case", "/weather?ApiKey=hello", Exposure{Key: "hello", Where: "query"}, true},
		{"named parameter empty", "/weather?token=", Exposure{Key: "", Where: "query"}, true},
		{"encoded name", "/weather?api%5Fkey=x", Exposure{Key: "x", Where: "query"}, true},
		{"a key wins over a name", "/weather?key=x&k=" + key, Exposure{Key: key, Where: "query"}, true},
		{"key in the path", "/users/" + key + "/profile", Exposure{Key: key, Where: "path"}, true},
		{"encoded key in the path", "/users/" + strings.ReplaceAll(key, "_", "%5F"), Exposure{Key: key, Where: "path"}, true},
		{"similar name is fine", "/weather?keys=1&monkey=2", Exposure{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			got, found := KeyInURL(r.URL)
			if got != tt.want || found != tt.found {
				t.Fatalf("got %+v, %v; want %+v, %v", got, found, tt.want, tt.found)
			}
		})
	}
}

func TestSafePath(t *testing.T) {
	key, err := apikey.Generate("kg", keygate.EnvLive)
	if err != nil {
		t.Fatal(err)
	}
	got := SafePath("/a/" + key + "/b/" + key)
	want := "/a/" + apikey.Start(key) + "…/b/" + apikey.Start(key) + "…"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := SafePath("/weather"); got != "/weather" {
		t.Fatalf("got %q, want /weather", got)
	}
}

// BenchmarkMiddleware is the middleware's own cost on an allowed request:
// finding the key, checking the URL, the RateLimit fields, the context
// and the usage event, with a verifier that answers at once.
func BenchmarkMiddleware(b *testing.B) {
	v := keygate.Verification{Outcome: keygate.OutcomeValid, Key: &keygate.VerifiedKey{ID: "key_1", AccountID: "acc_1"}, HasLimits: true,
		Limits: keygate.LimitResult{Outcome: keygate.OutcomeValid, QuotaLimit: 1000, QuotaRemaining: 999, RateLimit: 10, RateRemaining: 9, RatePerSecond: 5}}
	var recorded int
	mw := New(fixedVerifier(v), Options{Record: func(keygate.UsageEvent) { recorded++ }})
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := FromContext(r.Context()); !ok {
			b.Fatal("no verification in the context")
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	r := httptest.NewRequest("GET", "/items/42?page=2", nil)
	r.Header.Set("X-API-Key", "kg_live_whatever")
	w := &headerWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if recorded == 0 {
		b.Fatal("no usage recorded")
	}
}

// headerWriter is a reusable http.ResponseWriter that keeps nothing but
// its header map, so benchmarks count only the handler's allocations.
type headerWriter struct{ h http.Header }

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerWriter) WriteHeader(int)             {}

func TestHeaderKeyCanonicalName(t *testing.T) {
	// HeaderKey reads the header map by canonical name.
	if got := http.CanonicalHeaderKey(HeaderAPIKey); got != "X-Api-Key" {
		t.Fatalf("canonical %s is %q; HeaderKey looks up \"X-Api-Key\"", HeaderAPIKey, got)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("x-api-key", " kg_live_a ")
	if k, h := HeaderKey(r); k != "kg_live_a" || h != HeaderAPIKey {
		t.Fatalf("got %q from %q", k, h)
	}
}
