package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeUpstreamFromConfig runs keygate as a gateway whose upstream and
// route rules come from a config file, and calls through it.
func TestServeUpstreamFromConfig(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.Path+" key="+r.Header.Get("X-Keygate-Key-Id")+" apikey="+r.Header.Get("X-Api-Key"))
	}))
	defer up.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keygate.yaml")
	os.WriteFile(cfg, []byte("serve:\n  upstream: "+up.URL+"\nroutes:\n  - path: /status\n    public: true\n  - method: GET\n    path: /weather\n    scopes: [weather:read]\n"), 0o644)
	s := startServer(t, "--db", filepath.Join(dir, "keygate.db"), "--config", cfg)
	root := rootKeyRE.FindString(s.stdout.String())

	get := func(path, key string) (int, string) {
		req, _ := http.NewRequest("GET", s.url+path, nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/status", ""); code != 200 || body != "upstream /status key= apikey=" {
		t.Fatalf("/status: got %d %q", code, body)
	}
	if code, body := get("/weather", ""); code != 401 || !strings.Contains(body, "MISSING_KEY") {
		t.Fatalf("/weather without a key: got %d %s", code, body)
	}
	var acct struct{ ID string }
	cliJSON(t, s, root, &acct, "accounts", "create", "--name", "Ada", "--email", "ada@example.com", "--json")
	var key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	cliJSON(t, s, root, &key, "keys", "create", "--account", acct.ID, "--scope", "weather:read", "--json")
	if code, body := get("/weather", key.Key); code != 200 || body != "upstream /weather key="+key.ID+" apikey=" {
		t.Fatalf("/weather with a key: got %d %q", code, body)
	}
	if code, body := get("/v1/nothing", ""); code != 404 || !strings.Contains(body, "RESOURCE_NOT_FOUND") {
		t.Fatalf("/v1/nothing: got %d %s, want the API's 404", code, body)
	}
	var h map[string]any
	if code, body := get("/healthz", ""); code != 200 || json.Unmarshal([]byte(body), &h) != nil {
		t.Fatalf("/healthz: got %d %s", code, body)
	}
}

func TestBadConfigStopsServe(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keygate.yaml")
	os.WriteFile(cfg, []byte("routes:\n  - path: /a\n  - path: b\n"), 0o644)
	for _, args := range [][]string{
		{"serve", "--db", filepath.Join(dir, "k.db"), "--config", cfg},
		{"routes", "check", cfg},
	} {
		cmd := exec.Command(binary, args...)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), cfg+":3: routes[1]: path \"b\" must start with /") {
			t.Fatalf("keygate %v: got %v %q, want a failure naming line 3", args, err, out)
		}
	}
	os.WriteFile(cfg, []byte("routes:\n  - path: /a\n    scopes: [x:read]\n"), 0o644)
	out, err := exec.Command(binary, "routes", "check", cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 rules") || !strings.Contains(string(out), "scopes x:read") {
		t.Fatalf("routes check on a good file: %v %s", err, out)
	}
}

func TestDefaultScopes(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "--db", filepath.Join(dir, "keygate.db"), "--default-scopes", "weather:read, weather:write")
	resp, err := http.Post(s.url+"/v1/register", "application/json", strings.NewReader(`{"name":"Ada","email":"ada@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reg struct {
		Key struct {
			Scopes []string `json:"scopes"`
		} `json:"key"`
	}
	json.NewDecoder(resp.Body).Decode(&reg)
	if resp.StatusCode != 201 || strings.Join(reg.Key.Scopes, ",") != "weather:read,weather:write" {
		t.Fatalf("register: got %d, scopes %v; want weather:read and weather:write", resp.StatusCode, reg.Key.Scopes)
	}
}

func TestDemo(t *testing.T) {
	addr := freeAddr(t)
	s := &server{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	s.cmd = exec.Command(binary, "demo", "--addr", addr, "--db", filepath.Join(t.TempDir(), "demo.db"))
	s.cmd.Env = cleanEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(t) })
	s.url = checkedURL(t, "http://"+addr, nil)
	keyRE := regexp.MustCompile(`kg_live_[0-9A-Za-z]+`)
	var keys []string
	for i := 0; i < 400 && len(keys) < 2; i++ {
		time.Sleep(50 * time.Millisecond)
		keys = keyRE.FindAllString(s.stdout.String(), -1)
	}
	if len(keys) < 2 {
		t.Fatalf("the demo printed no keys:\n%s\n%s", s.stdout, s.stderr)
	}
	free, pro := keys[0], keys[1]
	call := func(method, path, key string) int {
		req, _ := http.NewRequest(method, s.url+path, nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		method, path, key string
		want              int
	}{
		{"GET", "/weather?city=Oslo", free, 200},
		{"POST", "/alerts", free, 403},
		{"POST", "/alerts", pro, 201},
		{"GET", "/weather", "", 401},
		{"GET", "/weather?api_key=" + free, "", 400},
		{"GET", "/status", "", 200},
	} {
		if got := call(c.method, c.path, c.key); got != c.want {
			t.Errorf("%s %s: got %d, want %d", c.method, c.path, got, c.want)
		}
	}
}
