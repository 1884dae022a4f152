package portal

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/sqlite"
)

// env is a portal on a real SQLite store and engine, served on a real
// HTTP server.
type env struct {
	t       *testing.T
	store   *sqlite.Store
	engine  *engine.Engine
	manage  *manage.Service
	portal  *Server
	srv     *httptest.Server
	clock   *testclock.Clock
	rootKey string
}

func newEnv(t *testing.T, configure ...func(*Server)) *env {
	t.Helper()
	ctx := context.Background()
	clk := testclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.Now = clk.Now
	hasher := apikey.NewHasher(nil)
	eng := engine.New(st, engine.Options{Hasher: hasher, Now: clk.Now})
	t.Cleanup(eng.Close)
	if err := eng.Load(ctx); err != nil {
		t.Fatal(err)
	}
	m := &manage.Service{Store: st, Hasher: hasher, Now: clk.Now}
	_, root, err := m.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := &Server{Store: st, Manage: m, RootKeys: eng, Now: clk.Now, Password: testParams,
		Scopes: []string{"weather:read", "weather:write"}}
	for _, f := range configure {
		f(p)
	}
	mux := http.NewServeMux()
	p.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, store: st, engine: eng, manage: m, portal: p, srv: srv, clock: clk, rootKey: root}
}

// browser is an HTTP client with its own cookies that does not follow
// redirects, so tests see them.
type browser struct {
	e      *env
	client *http.Client
	last   string // the body of the last page
	token  string // the CSRF token of the last page that had one
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(req *http.Request) *http.Response {
	b.e.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b.last = string(body)
	if m := csrfRE.FindStringSubmatch(b.last); m != nil {
		b.token = m[1]
	}
	return resp
}

func (b *browser) get(path string) *http.Response {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form as a same-origin browser would, with the CSRF token of
// the last page that had one, unless the form sets its own.
func (b *browser) post(path string, form url.Values) *http.Response {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		if b.token != "" {
			form.Set("csrf", b.token)
		}
	}
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) csrf() string {
	if m := csrfRE.FindStringSubmatch(b.last); m != nil {
		return m[1]
	}
	return ""
}

var keyRE = regexp.MustCompile(`id="new-key" type="text" readonly value="([^"]+)"`)

// shownKey returns the key the last page showed once.
func (b *browser) shownKey() string {
	b.e.t.Helper()
	m := keyRE.FindStringSubmatch(b.last)
	if m == nil {
		b.e.t.Fatalf("the page shows no new key:\n%s", b.last)
	}
	return m[1]
}

func wantStatus(t *testing.T, resp *http.Response, want int, what string) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: got status %d, want %d", what, resp.StatusCode, want)
	}
}

func wantBody(t *testing.T, body, want, what string) {
	t.Helper()
	if !strings.Contains(html.UnescapeString(body), want) {
		t.Errorf("%s: the page lacks %q:\n%s", what, want, body)
	}
}

const goodPassword = "correct horse battery staple"

// signup registers an account in b and returns the first key shown.
func (b *browser) signup(email string) string {
	b.e.t.Helper()
	resp := b.post("/portal/signup", url.Values{"name": {"Ada"}, "email": {email}, "password": {goodPassword}})
	wantStatus(b.e.t, resp, http.StatusCreated, "sign up")
	return b.shownKey()
}

func (e *env) account(email string) *keygate.Account {
	e.t.Helper()
	a, err := e.store.AccountByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) verify(key string) keygate.Outcome {
	return e.engine.Verify(context.Background(), keygate.VerifyRequest{Key: key}).Outcome
}
