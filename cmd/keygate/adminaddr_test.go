package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/api"
)

// TestAdminSplitFollowsOpenAPI sends every operation of the OpenAPI
// document to both listeners of --admin-addr: an operation that needs a
// root key with admin:read or admin:write reaches the API on the admin
// listener only, every other /v1/ operation on --addr only, and the
// OpenAPI document, /healthz and /readyz on both. A route added to the API
// without being placed (publicAPIRoutes) fails here.
func TestAdminSplitFollowsOpenAPI(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var reached bool
	rec := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true })
	split := &apiSplit{api: rec, log: slog.New(slog.DiscardHandler)}
	public, admin := split.publicV1(), split.adminHandler()
	send := func(h http.Handler, method, path string) (bool, *httptest.ResponseRecorder) {
		reached = false
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return reached, w
	}
	ops := 0
	for path, item := range doc.Paths {
		for method, raw := range item {
			method = strings.ToUpper(method)
			if !slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, method) {
				continue
			}
			ops++
			var op struct {
				Security []map[string][]string `json:"security"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			operator := false
			for _, req := range op.Security {
				operator = operator || slices.Contains(req["rootKey"], "admin:read") || slices.Contains(req["rootKey"], "admin:write")
			}
			url := strings.NewReplacer("{id}", "x_1", "{name}", "free", "{delivery_id}", "x_2").Replace(path)
			shared := slices.Contains(sharedAPIRoutes, method+" "+path)
			if strings.HasPrefix(path, "/v1/") {
				got, w := send(public, method, url)
				if want := !operator || shared; got != want {
					t.Errorf("%s %s on --addr: reached the API %v, want %v (%d %s)", method, path, got, want, w.Code, w.Body)
				}
				if !got && (w.Code != http.StatusNotFound || w.Header().Get("Content-Type") != "application/problem+json") {
					t.Errorf("%s %s on --addr: %d %s, want a 404 problem", method, path, w.Code, w.Header().Get("Content-Type"))
				}
			}
			got, w := send(admin, method, url)
			if want := (operator && strings.HasPrefix(path, "/v1/")) || shared; got != want {
				t.Errorf("%s %s on --admin-addr: reached the API %v, want %v (%d %s)", method, path, got, want, w.Code, w.Body)
			}
			if !got && (w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "RESOURCE_NOT_FOUND")) {
				t.Errorf("%s %s on --admin-addr: %d %s, want a 404 problem", method, path, w.Code, w.Body)
			}
		}
	}
	if ops < 40 {
		t.Fatalf("only %d operations in the OpenAPI document", ops)
	}

	// GET /v1/keys/verify is the admin GET /v1/keys/{id}: on --addr it is
	// refused as a method of the verify endpoint, never served.
	if got, w := send(public, "GET", "/v1/keys/verify"); got || w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET /v1/keys/verify on --addr: reached %v, %d Allow %q; want 405 Allow POST", got, w.Code, w.Header().Get("Allow"))
	}
	// A key in the URL is the API's to refuse and audit, on either listener.
	for _, h := range []http.Handler{public, admin} {
		if got, _ := send(h, "GET", "/v1/accounts?api_key=kg_live_x"); !got {
			t.Error("a key in the URL of an admin path was not left to the API to refuse")
		}
	}
	if got, _ := send(admin, "GET", "/portal/keys?api_key=kg_live_x"); !got {
		t.Error("a key in the URL of the portal on --admin-addr was not left to the API to refuse")
	}
}

// TestServeAdminAddr runs keygate as a gateway over HTTPS with the admin API
// on a listener of its own (KEYGATE_ADMIN_ADDR): admin calls are refused on
// --addr and served on --admin-addr, where the CLI works; registration,
// verification and the gateway stay on --addr; SIGTERM lets a request in
// flight finish and closes both listeners.
func TestServeAdminAddr(t *testing.T) {
	slow := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(slow)
			time.Sleep(700 * time.Millisecond)
		}
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	defer up.Close()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, keyPEM, cert := selfSigned(t, 2001)
	writePair(t, certFile, keyFile, certPEM, keyPEM)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Setenv("SSL_CERT_FILE", certFile) // for the CLI

	addr, adminAddr := freeAddr(t), freeAddr(t)
	pub := &server{url: "https://" + addr, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	pub.cmd = exec.Command(binary, "serve", "--addr", addr, "--db", filepath.Join(dir, "keygate.db"),
		"--tls-cert", certFile, "--tls-key", keyFile, "--upstream", up.URL)
	pub.cmd.Env = cleanEnv("KEYGATE_ADMIN_ADDR=" + adminAddr)
	pub.cmd.Stdout, pub.cmd.Stderr = pub.stdout, pub.stderr
	if err := pub.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.stop(t) })
	adm := &server{url: "https://" + adminAddr, cmd: pub.cmd, stdout: pub.stdout, stderr: pub.stderr}

	type answer struct {
		status int
		ctype  string
		body   string
	}
	do := func(method, url, auth, apiKey, body string) answer {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		if apiKey != "" {
			req.Header.Set("X-API-Key", apiKey)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := client.Get(adm.url + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admin listener did not come up over HTTPS; stderr:\n%s", pub.stderr)
		}
	}
	root := rootKeyRE.FindString(pub.stdout.String())

	// The operator's API: refused on --addr, served on --admin-addr.
	for _, path := range []string{"/v1/accounts", "/v1/keys", "/v1/root-keys", "/v1/audit", "/v1/tiers/free"} {
		if a := do("GET", pub.url+path, root, "", ""); a.status != 404 || a.ctype != "application/problem+json" || !strings.Contains(a.body, "--admin-addr") {
			t.Errorf("GET %s on --addr: %d %s %s, want a 404 problem naming --admin-addr", path, a.status, a.ctype, a.body)
		}
		if a := do("GET", adm.url+path, root, "", ""); a.status != 200 {
			t.Errorf("GET %s on --admin-addr: %d %s", path, a.status, a.body)
		}
	}
	if a := do("POST", pub.url+"/v1/accounts", root, "", `{"name":"Eve","email":"eve@example.com"}`); a.status != 404 {
		t.Errorf("POST /v1/accounts on --addr: %d %s, want 404", a.status, a.body)
	}
	// The CLI, pointed at the admin listener over HTTPS.
	var acct struct{ ID string }
	cliJSON(t, adm, root, &acct, "accounts", "create", "--name", "Ada", "--email", "ada@example.com")
	var key struct{ ID, Key string }
	cliJSON(t, adm, root, &key, "keys", "create", "--account", acct.ID)
	if _, stderr, code := cli(t, pub, root, "accounts", "list"); code != 1 || !strings.Contains(stderr, "404") && !strings.Contains(stderr, "admin") {
		t.Errorf("keygate accounts list against --addr: exit %d %q, want a failure", code, stderr)
	}

	// What developers and services call stays on --addr.
	a := do("POST", pub.url+"/v1/register", "", "", `{"name":"Bob","email":"bob@example.com"}`)
	if a.status != 201 {
		t.Fatalf("POST /v1/register on --addr: %d %s", a.status, a.body)
	}
	logScanner.Issued(a.body)
	if a := do("POST", adm.url+"/v1/register", "", "", `{"name":"Cy","email":"cy@example.com"}`); a.status != 404 || !strings.Contains(a.body, "--addr") {
		t.Errorf("POST /v1/register on --admin-addr: %d %s, want a 404 naming --addr", a.status, a.body)
	}
	verify := `{"key":"` + key.Key + `"}`
	if a := do("POST", pub.url+"/v1/keys/verify", root, "", verify); a.status != 200 || !strings.Contains(a.body, `"valid":true`) {
		t.Errorf("POST /v1/keys/verify on --addr: %d %s", a.status, a.body)
	}
	if a := do("POST", adm.url+"/v1/keys/verify", root, "", verify); a.status != 404 {
		t.Errorf("POST /v1/keys/verify on --admin-addr: %d %s, want 404", a.status, a.body)
	}
	if a := do("GET", pub.url+"/weather", "", key.Key, ""); a.status != 200 || a.body != "upstream /weather" {
		t.Errorf("the gateway on --addr: %d %s", a.status, a.body)
	}
	if a := do("GET", adm.url+"/weather", "", key.Key, ""); a.status != 404 || a.ctype != "application/problem+json" {
		t.Errorf("/weather on --admin-addr: %d %s, want a 404 problem, not the gateway", a.status, a.body)
	}
	if a := do("GET", adm.url+"/portal/login", "", "", ""); a.status != 404 {
		t.Errorf("the portal on --admin-addr: %d, want 404", a.status)
	}
	if a := do("GET", pub.url+"/portal/login", "", "", ""); a.status != 200 {
		t.Errorf("the portal on --addr: %d", a.status)
	}
	for _, u := range []string{pub.url, adm.url} {
		for _, path := range []string{"/v1/openapi.json", "/healthz", "/readyz"} {
			if a := do("GET", u+path, "", "", ""); a.status != 200 {
				t.Errorf("GET %s%s: %d %s", u, path, a.status, a.body)
			}
		}
	}
	// A key in the URL is refused on --addr even on an admin path.
	if a := do("GET", pub.url+"/v1/accounts?api_key="+key.Key, "", "", ""); a.status != 400 || !strings.Contains(a.body, "KEY_IN_QUERY") {
		t.Errorf("a key in the URL of an admin path on --addr: %d %s, want 400 KEY_IN_QUERY", a.status, a.body)
	}
	// Both listeners are HTTPS only.
	if resp, err := http.Get("http://" + adminAddr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP on --admin-addr answered %d", resp.StatusCode)
		}
	}

	// SIGTERM during a request through the gateway: it finishes, and then
	// neither listener takes connections.
	inFlight := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", pub.url+"/slow", nil)
		req.Header.Set("X-API-Key", key.Key)
		resp, err := client.Do(req)
		if err != nil {
			inFlight <- answer{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		inFlight <- answer{status: resp.StatusCode, body: string(b)}
	}()
	<-slow
	if err := pub.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if a := <-inFlight; a.status != 200 || a.body != "upstream /slow" {
		t.Errorf("the request in flight at SIGTERM: %d %s", a.status, a.body)
	}
	if err := pub.cmd.Wait(); err != nil {
		t.Fatalf("keygate exited with %v\nstderr:\n%s", err, pub.stderr)
	}
	for _, hp := range []string{addr, adminAddr} {
		if c, err := net.DialTimeout("tcp", hp, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still takes connections after the shutdown", hp)
		}
	}
	if !strings.Contains(pub.stderr.String(), "admin API listening") {
		t.Errorf("the start did not log the admin listener:\n%s", pub.stderr)
	}
}

// TestServeAdminAddrBadValues: a bad --admin-addr or KEYGATE_ADMIN_ADDR
// stops the start with a one-line usage error before the database is
// created.
func TestServeAdminAddrBadValues(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "k.db")
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--admin-addr", "nope"}, "", `--admin-addr "nope": give HOST:PORT`},
		{[]string{"--admin-addr", "127.0.0.1:http"}, "", `--admin-addr "127.0.0.1:http": give HOST:PORT`},
		{[]string{"--admin-addr", "127.0.0.1:70000"}, "", `give HOST:PORT`},
		{nil, "KEYGATE_ADMIN_ADDR=:", `--admin-addr ":": give HOST:PORT`},
		{[]string{"--addr", "127.0.0.1:18080", "--admin-addr", "127.0.0.1:18080"}, "", "--admin-addr must differ from --addr"},
		{[]string{"--metrics-addr", "127.0.0.1:19090", "--admin-addr", "127.0.0.1:19090"}, "", "--admin-addr must differ from --metrics-addr"},
	} {
		cmd := exec.Command(binary, append([]string{"serve", "--db", db}, tc.args...)...)
		cmd.Env = cleanEnv(tc.env)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.HasPrefix(string(out), "keygate: ") || !strings.Contains(string(out), tc.want) ||
			strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("keygate serve %v %s: got %v, %q; want exit 2 and one line with %q", tc.args, tc.env, err, out, tc.want)
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a bad --admin-addr stopped the start only after the database was created")
	}

	// A busy --admin-addr: exit 1 naming it, and no root key made.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cmd := exec.Command(binary, "serve", "--db", db, "--addr", freeAddr(t), "--admin-addr", busy.Addr().String())
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "listen on --admin-addr "+busy.Addr().String()) {
		t.Errorf("a busy --admin-addr: got %v, %q; want exit 1 naming it", err, out)
	}
	if rootKeyRE.Match(out) {
		t.Errorf("a busy --admin-addr still printed a root key:\n%s", out)
	}
}
