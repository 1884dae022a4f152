package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEndToEnd is the foundation's acceptance test, as a new user would run
// it: serve, CLI create, verify over HTTP, revoke, restart, no leaks.
func TestEndToEnd(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keygate.db")
	s := startServer(t, "--db", db, "--log-level", "debug")
	root := rootKeyRE.FindString(s.stdout.String())
	if root == "" {
		t.Fatalf("first start printed no root key; stdout:\n%s", s.stdout)
	}

	var acct struct{ ID, Tier string }
	cliJSON(t, s, root, &acct, "accounts", "create", "--name", "Acme", "--email", "ops@acme.test")
	var key, other struct {
		ID  string
		Key string `json:"key"`
	}
	cliJSON(t, s, root, &key, "keys", "create", "--account", acct.ID, "--name", "first")
	cliJSON(t, s, root, &other, "keys", "create", "--account", acct.ID, "--name", "second", "--scope", "weather:read")
	if !strings.HasPrefix(key.Key, "kg_live_") {
		t.Fatalf("keys create printed no key: %+v", key)
	}
	if code, outcome := weather(t, s, key.Key); code != 200 {
		t.Fatalf("a key created with the CLI: got %d %s, want 200", code, outcome)
	}

	// Tables for people.
	out, _, code := cli(t, s, root, "keys", "list", "--account", acct.ID)
	if code != 0 || !strings.Contains(out, "STATUS") || !strings.Contains(out, key.ID) || strings.Contains(out, key.Key) {
		t.Fatalf("keys list table: exit %d\n%s", code, out)
	}

	// Only the answer that issues a key shows it; JSON for scripts too.
	for _, args := range [][]string{{"keys", "list", "--json"}, {"keys", "show", key.ID, "--json"}, {"keys", "disable", key.ID, "--json"},
		{"keys", "enable", key.ID, "--json"}, {"root-keys", "list", "--json"}, {"audit", "--json"}, {"accounts", "list", "--json"}} {
		out, stderr, code := cli(t, s, root, args...)
		if code != 0 || strings.Contains(out+stderr, key.Key) || strings.Contains(out+stderr, root) {
			t.Fatalf("keygate %v: exit %d, or a plaintext key in the output:\n%s%s", args, code, out, stderr)
		}
	}

	if _, stderr, code := cli(t, s, root, "keys", "revoke", key.ID, "--reason", "test"); code != 0 {
		t.Fatalf("keys revoke: exit %d: %s", code, stderr)
	}
	if code, outcome := weather(t, s, key.Key); code != 401 || outcome != "REVOKED" {
		t.Fatalf("revoked key at once: got %d %s, want 401 REVOKED", code, outcome)
	}

	// Restart on the same database: everything is still there.
	logs1, out1 := s.stderr.String(), s.stdout.String()
	s.stop(t)
	s2 := startServer(t, "--db", db)
	if rootKeyRE.MatchString(s2.stdout.String()) {
		t.Fatalf("a restart printed a new root key:\n%s", s2.stdout)
	}
	if code, outcome := weather(t, s2, key.Key); code != 401 || outcome != "REVOKED" {
		t.Fatalf("revoked key after restart: got %d %s, want 401 REVOKED", code, outcome)
	}
	if code, outcome := weather(t, s2, other.Key); code != 200 {
		t.Fatalf("live key after restart: got %d %s, want 200", code, outcome)
	}
	var accts struct{ Data []struct{ ID string } }
	cliJSON(t, s2, root, &accts, "accounts", "list")
	if len(accts.Data) != 1 || accts.Data[0].ID != acct.ID {
		t.Fatalf("accounts after restart: got %+v", accts)
	}
	s2.stop(t)

	// The server logged requests, but never a plaintext key.
	logs := logs1 + s2.stderr.String()
	if !strings.Contains(logs, "/demo/weather") {
		t.Fatalf("no request logs captured:\n%s", logs)
	}
	for _, secret := range []string{key.Key, other.Key, root} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the server's log holds a plaintext key:\n%s", logs)
		}
	}
	if strings.Count(out1, root) != 2 { // the key itself, and the export line
		t.Errorf("root key printed %d times on first start, want once (plus the export hint)", strings.Count(out1, root))
	}
}

func TestCLIErrors(t *testing.T) {
	s := startServer(t, "--db", filepath.Join(t.TempDir(), "keygate.db"))
	root := rootKeyRE.FindString(s.stdout.String())
	tests := []struct {
		name    string
		rootKey string
		args    []string
		code    int
		want    string
	}{
		{"no root key", "", []string{"accounts", "list"}, 1, "KEYGATE_ROOT_KEY is not set"},
		{"wrong root key", "kgr_live_wrong", []string{"accounts", "list"}, 1, "refused the root key"},
		{"unknown account", root, []string{"accounts", "show", "acc_nope"}, 1, "acc_nope"},
		{"missing flags", root, []string{"accounts", "create", "--name", "x"}, 2, "needs --name and --email"},
		{"bad email", root, []string{"accounts", "create", "--name", "x", "--email", "nope"}, 1, "not a valid address"},
		{"no subcommand", root, []string{"keys"}, 2, "needs a subcommand"},
		{"unknown command", root, []string{"frobnicate"}, 2, "unknown command"},
		{"bad expiry", root, []string{"keys", "create", "--account", "acc_x", "--expires", "tomorrow"}, 2, "RFC 3339"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := cli(t, s, tt.rootKey, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.want)
			}
			if tt.code == 1 && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("want a one-line explanation, got:\n%s", stderr)
			}
		})
	}

	// Unreachable server.
	cmd := exec.Command(binary, "accounts", "list")
	cmd.Env = cleanEnv("KEYGATE_URL=http://"+freeAddr(t), "KEYGATE_ROOT_KEY="+root)
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "is `keygate serve` running") {
		t.Fatalf("unreachable server: got %q", out)
	}
}

// TestVersionAgrees checks that `keygate version`, /healthz and the
// OpenAPI document the server serves all name the version the binary was
// built with.
func TestVersionAgrees(t *testing.T) {
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "keygate "+testVersion+" (") {
		t.Fatalf("keygate version: got %q, %v; want keygate %s (…)", out, err, testVersion)
	}
	s := startServer(t, "--db", filepath.Join(t.TempDir(), "keygate.db"))
	var doc struct {
		Info struct {
			Version string `json:"version"`
		} `json:"info"`
	}
	getJSON(t, s.url+"/v1/openapi.json", "", &doc)
	if doc.Info.Version != testVersion {
		t.Errorf("/v1/openapi.json info.version = %q, want %q", doc.Info.Version, testVersion)
	}
	var health struct {
		Version string `json:"version"`
	}
	getJSON(t, s.url+"/healthz", "", &health)
	if health.Version != testVersion {
		t.Errorf("/healthz version = %q, want %q", health.Version, testVersion)
	}
}
