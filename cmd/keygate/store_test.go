package main

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testenv"
)

// startServerEnv is startServer with extra environment variables.
// The server listens on a port the system picks, read from its log, so
// that no other process can take the port between the pick and the bind.
func startServerEnv(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	s := &server{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	s.cmd = exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	s.cmd.Env = cleanEnv(env...)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	var addr string
	for addr == "" {
		if m := listeningRE.FindStringSubmatch(s.stderr.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("keygate did not start listening\nstderr:\n%s", s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A first start prints the root key to stdout before it logs that it
	// did (and before it listens); stdout is copied from its own pipe, so
	// wait for the copy to catch up with stderr.
	if strings.Contains(s.stderr.String(), "first start: root key printed") {
		for !rootKeyRE.MatchString(s.stdout.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("keygate logged that it printed a root key, but stdout has none:\n%s", s.stdout)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	s.url = checkedURL(t, "http://"+addr, nil) // closed before the server stops
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("keygate did not come up: %v\nstderr:\n%s", err, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listeningRE finds the address in the log line of `keygate serve` that
// says it listens.
var listeningRE = regexp.MustCompile(`msg="keygate listening" addr=(\S+)`)

// TestSQLiteOneServerPerFile runs two real `keygate serve` processes on one
// SQLite file: the second is refused at start with a reason, and starts
// once the first has stopped.
func TestSQLiteOneServerPerFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keygate.db")
	first := startServer(t, "--db", db)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--addr", freeAddr(t), "--db", db)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("a second keygate serve on the same file: got %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{"in use by another keygate process", "keygate.db.lock", "postgres://"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if rootKeyRE.Match(out) {
		t.Errorf("the refused server printed a root key:\n%s", out)
	}
	if resp, err := http.Get(first.url + "/healthz"); err != nil {
		t.Fatalf("the first server after the refusal: %v", err)
	} else {
		resp.Body.Close()
	}

	first.stop(t)
	second := startServer(t, "--db", db)
	second.stop(t)
}

// TestServePostgres runs two `keygate serve` processes on one PostgreSQL
// schema, the second configured by KEYGATE_DB: a key made through one
// verifies on the other, a revocation made on the second holds on the
// first after a restart, and neither prints the database password.
func TestServePostgres(t *testing.T) {
	url := testenv.PostgresSchema(t)
	a := startServer(t, "--db", url)
	root := rootKeyRE.FindString(a.stdout.String())
	if root == "" {
		t.Fatalf("first start printed no root key; stdout:\n%s\nstderr:\n%s", a.stdout, a.stderr)
	}
	var acct struct{ ID string }
	cliJSON(t, a, root, &acct, "accounts", "create", "--name", "Acme", "--email", "ops@acme.test")
	var key struct {
		ID  string
		Key string `json:"key"`
	}
	cliJSON(t, a, root, &key, "keys", "create", "--account", acct.ID, "--name", "first")

	b := startServerEnv(t, []string{"KEYGATE_DB=" + url})
	if rootKeyRE.MatchString(b.stdout.String()) {
		t.Fatalf("the second instance printed a new root key:\n%s", b.stdout)
	}
	if code, outcome := weather(t, b, key.Key); code != 200 {
		t.Fatalf("a key made on the first instance, on the second: got %d %s, want 200", code, outcome)
	}
	if _, stderr, code := cli(t, b, root, "keys", "revoke", key.ID, "--reason", "test"); code != 0 {
		t.Fatalf("keys revoke on the second instance: exit %d: %s", code, stderr)
	}
	if code, outcome := weather(t, b, key.Key); code != 401 || outcome != "REVOKED" {
		t.Fatalf("revoked key on the revoking instance: got %d %s, want 401 REVOKED", code, outcome)
	}
	a.stop(t)
	a2 := startServer(t, "--db", url)
	if code, outcome := weather(t, a2, key.Key); code != 401 || outcome != "REVOKED" {
		t.Fatalf("revoked key after restarting the first instance: got %d %s, want 401 REVOKED", code, outcome)
	}
	logs := a.stderr.String() + b.stderr.String() + a2.stderr.String()
	if !strings.Contains(logs, "keygate listening") {
		t.Fatalf("no start logged:\n%s", logs)
	}
}

func TestRedactDB(t *testing.T) {
	for in, want := range map[string]string{
		"keygate.db": "keygate.db",
		"postgres://kg:s3cret@db:5432/kg?sslmode=x": "postgres://kg:xxxxx@db:5432/kg?sslmode=x",
		"postgresql://db/kg":                        "postgresql://db/kg",
	} {
		if got := redactDB(in); got != want {
			t.Errorf("redactDB(%q): got %q, want %q", in, got, want)
		}
	}
}
