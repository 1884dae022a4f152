package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeMountsPortal checks that `keygate serve` serves the portal at
// /portal, beside the API, and in front of the gateway's catch-all: a
// gateway never forwards the portal's paths upstream. It also checks that
// the keys page offers the scopes of --default-scopes and the route
// rules, and that sign-ups count against --registration-limit.
func TestServeMountsPortal(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	defer up.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keygate.yaml")
	os.WriteFile(cfg, []byte("serve:\n  upstream: "+up.URL+"\nroutes:\n  - method: GET\n    path: /weather\n    scopes: [weather:read]\n  - method: POST\n    path: /alerts\n    scopes: [weather:write]\n"), 0o644)
	s := startServer(t, "--db", filepath.Join(dir, "keygate.db"), "--config", cfg, "--default-scopes", "weather:read,billing:read", "--registration-limit", "1")

	get := func(path string) (*http.Response, string) {
		t.Helper()
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/portal/signup")
	if resp.StatusCode != 200 || !strings.Contains(body, "Create account") || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("/portal/signup: got %d %.200q", resp.StatusCode, body)
	}
	if resp, _ := get("/portal"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/login" {
		t.Errorf("/portal: got %d to %q, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := get("/portal/nothing"); resp.StatusCode != 404 || strings.Contains(body, "upstream") {
		t.Errorf("/portal/nothing: got %d %.100q, want the portal's 404", resp.StatusCode, body)
	}
	if _, body := get("/status"); !strings.Contains(body, "MISSING_KEY") {
		t.Errorf("/status: got %q, want the gateway's answer", body)
	}

	// A developer who signs up is offered the server's scopes.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	form := url.Values{"name": {"Ada"}, "email": {"ada@example.com"}, "password": {"correct horse battery staple"}}
	r, err := c.PostForm(s.url+"/portal/signup", form)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("sign up: got %d", r.StatusCode)
	}
	r, err = c.Get(s.url + "/portal/keys")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, sc := range []string{"weather:read", "billing:read", "weather:write"} {
		if !strings.Contains(string(b), `name="scopes" value="`+sc+`"`) {
			t.Errorf("the keys page does not offer %s", sc)
		}
	}

	// The sign-up page and POST /v1/register share --registration-limit.
	r, err = http.Post(s.url+"/v1/register", "application/json", strings.NewReader(`{"name":"Bo","email":"bo@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("registration after a portal sign-up with --registration-limit 1: got %d, want 429", r.StatusCode)
	}
}
