package gateway_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/gateway"
	"github.com/keygate/keygate/keyauth"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/quota"
	"github.com/keygate/keygate/route"
	"github.com/keygate/keygate/sqlite"
)

const rules = `
routes:
  - name: read-weather
    method: GET
    path: /weather
    scopes: [weather:read]
  - name: alerts
    method: POST
    path: /alerts
    scopes: [weather:write]
  - path: /status
    public: true
`

// env is a gateway in front of an upstream, on a real SQLite store.
type env struct {
	gw       *httptest.Server
	store    *sqlite.Store
	eng      *engine.Engine
	admin    *manage.Service
	exposure *manage.Exposures
	account  string

	mu     sync.Mutex
	events []keygate.UsageEvent
}

func newEnv(t *testing.T, upstream http.Handler, opts ...func(*gateway.Options)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	hasher := apikey.NewHasher(nil)
	eng := engine.New(store, engine.Options{Hasher: hasher, Limiter: quota.NewLocal(quota.Options{})})
	if err := eng.Load(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{store: store, eng: eng, admin: &manage.Service{Store: store, Hasher: hasher}}
	e.exposure = &manage.Exposures{Service: e.admin, Lookup: eng.Find}
	a := &keygate.Account{Name: "Ada", Email: "ada@example.com"}
	if err := e.admin.CreateAccount(ctx, manage.ActorSystem, a); err != nil {
		t.Fatal(err)
	}
	e.account = a.ID

	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	table, err := route.Parse("rules.yaml", []byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	o := gateway.Options{
		Upstream: u, Routes: table.Routes, Verifier: eng, Timeout: 5 * time.Second,
		Record: func(ev keygate.UsageEvent) {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
		},
		Exposed: func(r *http.Request, x keyauth.Exposure) { e.exposure.Report(r, x.Key, x.Where) },
	}
	for _, f := range opts {
		f(&o)
	}
	g, err := gateway.New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.gw = httptest.NewServer(g)
	t.Cleanup(e.gw.Close)
	return e
}

func (e *env) key(t *testing.T, scopes ...string) (string, *keygate.Key) {
	t.Helper()
	k := &keygate.Key{AccountID: e.account, Name: "k", Env: keygate.EnvLive, Scopes: scopes}
	plain, err := e.admin.CreateKey(context.Background(), manage.ActorSystem, k)
	if err != nil {
		t.Fatal(err)
	}
	return plain, k
}

func (e *env) do(t *testing.T, method, path string, hdr map[string]string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.gw.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// echo answers with the request it received, as JSON.
type seen struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  string      `json:"query"`
	Host   string      `json:"host"`
	Header http.Header `json:"header"`
}

func echo(status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header})
	})
}

func TestRouteRules(t *testing.T) {
	e := newEnv(t, echo(200))
	reader, _ := e.key(t, "weather:read")
	writer, _ := e.key(t, "weather:*")
	bare, _ := e.key(t)
	tests := []struct {
		name, method, path, key string
		status                  int
		code                    string
	}{
		{"public needs no key", "GET", "/status", "", 200, ""},
		{"public ignores a bad key", "GET", "/status", "kg_live_nope", 200, ""},
		{"scoped route with the scope", "GET", "/weather?city=Oslo", reader, 200, ""},
		{"scoped route without it", "POST", "/alerts", reader, 403, "INSUFFICIENT_SCOPE"},
		{"wildcard scope", "POST", "/alerts", writer, 200, ""},
		{"scoped route without a key", "GET", "/weather", "", 401, "MISSING_KEY"},
		{"default needs a valid key", "GET", "/anything/else", bare, 200, ""},
		{"default without a key", "GET", "/anything/else", "", 401, "MISSING_KEY"},
		{"default with a bad key", "GET", "/anything/else", "kg_live_nope", 401, "MALFORMED"},
		{"unclean path", "GET", "/status/../weather", "", 400, keygate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.key != "" {
				hdr["X-API-Key"] = tt.key
			}
			resp, body := e.doRaw(t, tt.method, tt.path, hdr)
			if resp.StatusCode != tt.status {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, body, tt.status)
			}
			if tt.code != "" {
				if !strings.Contains(body, `"code":"`+tt.code+`"`) || resp.Header.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("got %s, want a problem with code %s", body, tt.code)
				}
			}
		})
	}
}

// doRaw sends the request line exactly as given, so that paths with dot
// segments reach the gateway uncleaned.
func (e *env) doRaw(t *testing.T, method, target string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", e.gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: 0\r\n", method, target, e.gw.Listener.Addr())
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestHeadersStrippedAndNotSpoofable(t *testing.T) {
	e := newEnv(t, echo(201))
	key, k := e.key(t, "weather:read", "weather:write")
	resp, body := e.do(t, "GET", "/weather?city=Oslo", map[string]string{
		"X-API-Key":            key,
		"X-Keygate-Key-Id":     "key_spoofed",
		"X-Keygate-Account-Id": "acc_spoofed",
		"x-keygate-tier":       "enterprise",
		"X-Keygate-Admin":      "true",
		"X-Forwarded-For":      "6.6.6.6",
		"X-Forwarded-Host":     "evil.example",
		"X-Forwarded-Proto":    "https",
		"Forwarded":            "for=6.6.6.6",
		"Connection":           "X-Custom-Hop",
		"X-Custom-Hop":         "dropped",
		"Keep-Alive":           "timeout=5",
		"X-Other":              "kept",
	}, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("got %d %s, want the upstream's 201", resp.StatusCode, body)
	}
	var got seen
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	gwHost := strings.TrimPrefix(e.gw.URL, "http://")
	want := map[string]string{
		"X-Keygate-Key-Id":     k.ID,
		"X-Keygate-Account-Id": e.account,
		"X-Keygate-Tier":       "free",
		"X-Keygate-Scopes":     "weather:read,weather:write",
		"X-Forwarded-For":      "127.0.0.1",
		"X-Forwarded-Host":     gwHost,
		"X-Forwarded-Proto":    "http",
		"X-Other":              "kept",
		"X-Api-Key":            "",
		"X-Keygate-Admin":      "",
		"Forwarded":            "",
		"X-Custom-Hop":         "",
		"Keep-Alive":           "",
	}
	gotH := map[string]string{}
	for name := range want {
		gotH[name] = strings.Join(got.Header.Values(name), "|")
	}
	if diff := cmp.Diff(want, gotH); diff != "" {
		t.Fatalf("upstream headers (-want +got):\n%s", diff)
	}
	if got.Path != "/weather" || got.Query != "city=Oslo" {
		t.Fatalf("upstream saw %s?%s, want /weather?city=Oslo", got.Path, got.Query)
	}
	if !strings.HasPrefix(resp.Header.Get("RateLimit"), `"day";r=999;`) || resp.Header.Get("RateLimit-Policy") == "" {
		t.Fatalf("RateLimit headers: got %q / %q", resp.Header.Get("RateLimit"), resp.Header.Get("RateLimit-Policy"))
	}

	// Bearer: a keygate key is the credential and is stripped; on a public
	// route someone else's bearer token is the upstream's business.
	_, body = e.do(t, "GET", "/weather", map[string]string{"Authorization": "Bearer " + key}, nil)
	got = seen{}
	json.Unmarshal([]byte(body), &got)
	if a := got.Header.Get("Authorization"); a != "" || got.Header.Get("X-Keygate-Key-Id") != k.ID {
		t.Fatalf("bearer keygate key: upstream saw Authorization %q, key id %q", a, got.Header.Get("X-Keygate-Key-Id"))
	}
	_, body = e.do(t, "GET", "/status", map[string]string{"Authorization": "Bearer upstream-session-token", "X-Keygate-Key-Id": "key_spoofed"}, nil)
	got = seen{}
	json.Unmarshal([]byte(body), &got)
	if a := got.Header.Get("Authorization"); a != "Bearer upstream-session-token" || got.Header.Get("X-Keygate-Key-Id") != "" {
		t.Fatalf("public route: upstream saw Authorization %q, key id %q", a, got.Header.Get("X-Keygate-Key-Id"))
	}

	// Refusals carry the RateLimit fields too.
	resp, _ = e.do(t, "POST", "/alerts", map[string]string{"X-API-Key": key}, nil)
	if resp.StatusCode != 201 || resp.Header.Get("RateLimit") == "" {
		t.Fatalf("POST /alerts: got %d, RateLimit %q", resp.StatusCode, resp.Header.Get("RateLimit"))
	}
	reader, _ := e.key(t, "weather:read")
	resp, _ = e.do(t, "POST", "/alerts", map[string]string{"X-API-Key": reader}, nil)
	if resp.StatusCode != 403 || resp.Header.Get("RateLimit") == "" {
		t.Fatalf("refused POST /alerts: got %d, RateLimit %q", resp.StatusCode, resp.Header.Get("RateLimit"))
	}
}

func TestTrustedProxyChainExtended(t *testing.T) {
	e := newEnv(t, echo(200), func(o *gateway.Options) {
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	key, _ := e.key(t, "weather:read")
	_, body := e.do(t, "GET", "/weather", map[string]string{
		"X-API-Key": key, "X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com",
	}, nil)
	var got seen
	json.Unmarshal([]byte(body), &got)
	if xff := got.Header.Get("X-Forwarded-For"); xff != "198.51.100.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For: got %q, want the chain extended", xff)
	}
	if p, h := got.Header.Get("X-Forwarded-Proto"), got.Header.Get("X-Forwarded-Host"); p != "https" || h != "api.example.com" {
		t.Errorf("X-Forwarded-Proto/Host: got %q %q, want the trusted proxy's", p, h)
	}
}

func TestKeyInURLRefusedNotForwardedAudited(t *testing.T) {
	var forwarded sync.Map
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forwarded.Store(r.URL.String(), true)
	}))
	key, k := e.key(t, "weather:read")
	for _, target := range []string{
		"/weather?api_key=" + key,
		"/weather?City=Oslo&Access_Token=" + key,
		"/weather?whatever=" + key,
		"/status?q=" + key, // public routes too
		"/files/" + key + "/raw",
		"/weather?KEY=not-even-a-key",
	} {
		resp, body := e.do(t, "GET", target, map[string]string{"X-API-Key": key}, nil)
		if resp.StatusCode != 400 || !strings.Contains(body, `"code":"KEY_IN_QUERY"`) {
			t.Fatalf("%s: got %d %s, want 400 KEY_IN_QUERY", target, resp.StatusCode, body)
		}
		if strings.Contains(body, key) {
			t.Fatalf("%s: the answer echoes the key", target)
		}
	}
	n := 0
	forwarded.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Fatalf("%d requests with a key in the URL reached the upstream", n)
	}
	e.exposure.Wait()
	evs, err := e.store.AuditEvents(context.Background(), keygate.AuditFilter{Action: keygate.ActionKeyExposed, TargetID: k.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || strings.Contains(string(evs[0].Details), key) {
		t.Fatalf("audit: got %d key.exposed events (%v), want 1 without the key", len(evs), evs)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.events {
		if ev.Outcome != keygate.OutcomeKeyInQuery || strings.Contains(ev.Route, key) {
			t.Fatalf("usage event %+v: want KEY_IN_QUERY without the key", ev)
		}
	}
}

func TestUsageRecordsUpstreamStatusAndRule(t *testing.T) {
	e := newEnv(t, echo(418))
	key, k := e.key(t, "weather:read")
	e.do(t, "GET", "/weather", map[string]string{"X-API-Key": key}, nil)
	e.do(t, "POST", "/alerts", map[string]string{"X-API-Key": key}, nil)
	e.do(t, "GET", "/status", nil, nil) // public: no usage
	e.mu.Lock()
	defer e.mu.Unlock()
	type row struct {
		Key, Route, Method string
		Outcome            keygate.Outcome
		Status             int
	}
	var got []row
	for _, ev := range e.events {
		got = append(got, row{ev.KeyID, ev.Route, ev.Method, ev.Outcome, ev.Status})
	}
	want := []row{
		{k.ID, "read-weather", "GET", keygate.OutcomeValid, 418},
		{k.ID, "alerts", "POST", keygate.OutcomeInsufficientScope, 403},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("usage events (-want +got):\n%s", diff)
	}
}

func TestUpstreamDownIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	e := newEnv(t, echo(200), func(o *gateway.Options) { o.Upstream = &url.URL{Scheme: "http", Host: addr} })
	key, _ := e.key(t, "weather:read")
	resp, body := e.do(t, "GET", "/weather", map[string]string{"X-API-Key": key}, nil)
	if resp.StatusCode != 502 || !strings.Contains(body, `"code":"UPSTREAM_UNAVAILABLE"`) || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %s, want a 502 UPSTREAM_UNAVAILABLE problem", resp.StatusCode, body)
	}
}

func TestSlowUpstreamIs504(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}), func(o *gateway.Options) { o.Timeout = 100 * time.Millisecond })
	defer close(release)
	key, _ := e.key(t, "weather:read")
	resp, body := e.do(t, "GET", "/weather", map[string]string{"X-API-Key": key}, nil)
	if resp.StatusCode != 504 || !strings.Contains(body, `"code":"UPSTREAM_TIMEOUT"`) {
		t.Fatalf("got %d %s, want a 504 UPSTREAM_TIMEOUT problem", resp.StatusCode, body)
	}
}

// TestLargeBodiesStream sends 64 MiB up and 64 MiB down, each in lockstep:
// the second half is produced only once the other side has received the
// first, which a proxy that buffered whole bodies would deadlock on.
func TestLargeBodiesStream(t *testing.T) {
	const half = 32 << 20
	upGotFirst := make(chan struct{})
	downGotFirst := make(chan struct{})
	chunk := func(seed byte) []byte {
		b := make([]byte, half)
		for i := range b {
			b[i] = byte(i) ^ seed
		}
		return b
	}
	first, second := chunk(1), chunk(2)
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.CopyN(h, r.Body, half); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		close(upGotFirst)
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("X-Upload-Sha256", fmt.Sprintf("%x", h.Sum(nil)))
		w.Write(first)
		http.NewResponseController(w).Flush()
		select {
		case <-downGotFirst:
		case <-time.After(time.Minute):
			return
		}
		w.Write(second)
	}), func(o *gateway.Options) { o.Timeout = time.Minute })
	key, _ := e.key(t)

	pr, pw := io.Pipe()
	go func() {
		pw.Write(first)
		select {
		case <-upGotFirst:
			pw.Write(second)
			pw.Close()
		case <-time.After(time.Minute):
			pw.CloseWithError(errors.New("the upstream never got the first half: the gateway buffers uploads"))
		}
	}()
	req, _ := http.NewRequest("PUT", e.gw.URL+"/upload", pr)
	req.Header.Set("X-API-Key", key)
	resp, err := e.gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := sha256.New()
	want.Write(first)
	want.Write(second)
	if got := resp.Header.Get("X-Upload-Sha256"); got != fmt.Sprintf("%x", want.Sum(nil)) {
		t.Fatalf("upload hash: got %q", got)
	}
	h := sha256.New()
	if _, err := io.CopyN(h, resp.Body, half); err != nil {
		t.Fatalf("reading the first half of the download: %v", err)
	}
	close(downGotFirst)
	if _, err := io.Copy(h, resp.Body); err != nil {
		t.Fatal(err)
	}
	if h.Sum(nil) == nil || fmt.Sprintf("%x", h.Sum(nil)) != fmt.Sprintf("%x", want.Sum(nil)) {
		t.Fatal("download hash differs")
	}
}

func TestWebSocketEcho(t *testing.T) {
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "" || r.Header.Get("X-Keygate-Key-Id") == "" {
			http.Error(w, "key not stripped or identity missing", 400)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	key, _ := e.key(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.gw.URL, "http")+"/socket", &websocket.DialOptions{
		HTTPHeader: http.Header{"X-Api-Key": {key}},
	})
	if err != nil {
		t.Fatalf("dial through the gateway: %v (%v)", err, resp)
	}
	defer c.CloseNow()
	if resp.Header.Get("RateLimit") == "" {
		t.Errorf("the 101 answer lacks RateLimit")
	}
	for _, msg := range []string{"hello", "world"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+msg {
			t.Fatalf("got %q, want %q", got, "echo: "+msg)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}
