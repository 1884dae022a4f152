package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var inviteCodeRE = regexp.MustCompile(`kginv_[a-z2-7]{32}`)

// register posts to /v1/register and returns the status and the body.
func register(t *testing.T, s *server, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(s.url+"/v1/register", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

var registerHintRE = regexp.MustCompile(`Register with:  curl -X POST \$KEYGATE_URL(/v1/register)((?: -H '[^']*')*) -d '([^']*)'\n`)

// runRegisterHint sends the request of the curl command that invites
// create printed in out, as curl would (-d alone sends a form's
// Content-Type), for Ada, and returns the status and the body.
func runRegisterHint(t *testing.T, s *server, out string) (int, map[string]any) {
	t.Helper()
	m := registerHintRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("invites create suggests no curl command to register with:\n%s", out)
	}
	body := strings.Replace(strings.Replace(m[3], `"name":"…"`, `"name":"Ada"`, 1), `"email":"…"`, `"email":"ada@example.com"`, 1)
	req, _ := http.NewRequest("POST", s.url+m[1], strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, h := range regexp.MustCompile(`-H '([^:]+): ([^']*)'`).FindAllStringSubmatch(m[2], -1) {
		req.Header.Set(h[1], h[2])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&res)
	return resp.StatusCode, res
}

func TestInvitesCLIAndInviteRegistration(t *testing.T) {
	s := startServer(t, "--db", filepath.Join(t.TempDir(), "keygate.db"), "--registration", "invite")
	root := rootKeyRE.FindString(s.stdout.String())
	if code, body := register(t, s, `{"name":"Ada","email":"ada@example.com"}`); code != 403 {
		t.Fatalf("register without a code: %d %v", code, body)
	}

	out, stderr, code := cli(t, s, root, "invites", "create", "--note", "for Ada", "--expires", "24h")
	codes := inviteCodeRE.FindAllString(out, -1)
	if code != 0 || len(codes) != 2 || codes[0] != codes[1] || !strings.Contains(out, "shown only this once") || !strings.Contains(out, "for Ada") {
		t.Fatalf("invites create: exit %d\n%s\n%s", code, out, stderr)
	}
	invite := codes[0]
	var created struct{ ID, Code, Status string }
	cliJSON(t, s, root, &created, "invites", "create")
	if !strings.HasPrefix(created.ID, "inv_") || !inviteCodeRE.MatchString(created.Code) || created.Status != "active" {
		t.Fatalf("invites create --json: %+v", created)
	}

	// The code works with the command the output suggests.
	if code, body := runRegisterHint(t, s, out); code != 201 {
		t.Fatalf("register with a code, as invites create suggests: %d %v", code, body)
	}
	if code, _ := register(t, s, `{"name":"Eve","email":"eve@example.com","invite":"`+invite+`"}`); code != 403 {
		t.Fatalf("second use of a code: %d", code)
	}

	out, _, code = cli(t, s, root, "invites", "list")
	if code != 0 || !strings.Contains(out, "used") || !strings.Contains(out, "ada@example.com") || !strings.Contains(out, "active") || inviteCodeRE.MatchString(out) {
		t.Fatalf("invites list: exit %d\n%s", code, out)
	}
	// As every list: the way to the next page goes to standard error,
	// out of a pipe of the table.
	out, stderr, code = cli(t, s, root, "invites", "list", "--limit", "1")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(stderr, "more: add --cursor ") {
		t.Fatalf("invites list --limit 1: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	out, _, code = cli(t, s, root, "invites", "revoke", created.ID)
	if code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("invites revoke: exit %d\n%s", code, out)
	}
	if code, _ := register(t, s, `{"name":"Bo","email":"bo@example.com","invite":"`+created.Code+`"}`); code != 403 {
		t.Fatalf("register with a revoked code: %d", code)
	}
	out, _, code = cli(t, s, root, "invites", "show", created.ID)
	if code != 0 || !strings.Contains(out, created.ID) || inviteCodeRE.MatchString(out) {
		t.Fatalf("invites show: exit %d\n%s", code, out)
	}
	wantFail(t, s, root, 2, "takes an invitation ID", "invites", "revoke", invite)
	wantFail(t, s, root, 1, "expires_in must be between", "invites", "create", "--expires", "10000h")
}

func TestRegistrationFlags(t *testing.T) {
	s := startServer(t, "--db", filepath.Join(t.TempDir(), "keygate.db"), "--registration", "closed")
	if code, body := register(t, s, `{"name":"Ada","email":"ada@example.com"}`); code != 403 || !strings.Contains(body["detail"].(string), "closed") {
		t.Fatalf("closed: %d %v", code, body)
	}
	s2 := startServer(t, "--db", filepath.Join(t.TempDir(), "keygate.db"), "--registration-limit", "2", "--registration-window", "1h", "--max-keys-per-account", "1")
	for i, want := range []int{201, 201, 429} {
		if code, body := register(t, s2, `{"name":"Dev","email":"dev`+string(rune('a'+i))+`@example.com"}`); code != want {
			t.Fatalf("registration %d: got %d %v, want %d", i, code, body, want)
		}
	}
	root := rootKeyRE.FindString(s2.stdout.String())
	var acct struct{ ID string }
	cliJSON(t, s2, root, &acct, "accounts", "create", "--name", "Acme", "--email", "ops@acme.test")
	if _, stderr, code := cli(t, s2, root, "keys", "create", "--account", acct.ID); code != 0 {
		t.Fatalf("first key: %s", stderr)
	}
	wantFail(t, s2, root, 1, "--max-keys-per-account", "keys", "create", "--account", acct.ID)
}

func TestRootKeysRecover(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keygate.db")
	s := startServer(t, "--db", db)
	lost := rootKeyRE.FindString(s.stdout.String())
	s.stop(t)

	// The running server holds the SQLite file; recovery opens it itself,
	// so it refuses a database that does not exist.
	code, _, stderr := runMain(t, nil, "root-keys", "recover", "--db", filepath.Join(t.TempDir(), "nothing.db"))
	if code != 1 || !strings.Contains(stderr, "no keygate database") {
		t.Fatalf("recover from a missing database: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runMain(t, nil, "root-keys", "recover"); code != 2 || !strings.Contains(stderr, "needs --db") {
		t.Fatalf("recover without --db: exit %d, %q", code, stderr)
	}
	code, stdout, stderr := runMain(t, nil, "root-keys", "recover", "--db", db)
	recovered := rootKeyRE.FindString(stdout)
	if code != 0 || recovered == "" || recovered == lost {
		t.Fatalf("recover: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// Written to a file instead, the key is not printed.
	keyFile := filepath.Join(t.TempDir(), "root.key")
	code, stdout, _ = runMain(t, map[string]string{"KEYGATE_DB": db}, "root-keys", "recover", "--root-key-file", keyFile)
	fromFile, _ := os.ReadFile(keyFile)
	if code != 0 || !rootKeyRE.Match(fromFile) || strings.Contains(stdout, strings.TrimSpace(string(fromFile))) {
		t.Fatalf("recover --root-key-file: exit %d, stdout %q, file %q", code, stdout, fromFile)
	}

	s = startServer(t, "--db", db)
	if bytes.Contains([]byte(s.stdout.String()), []byte("First start")) {
		t.Fatal("the server bootstrapped again after a recovery")
	}
	var events struct {
		Data []struct {
			Actor, Action string
			Details       map[string]any
		}
	}
	cliJSON(t, s, recovered, &events, "audit", "--action", "root_key.created")
	var actors []string
	for _, e := range events.Data {
		actors = append(actors, e.Actor)
		if e.Actor == "recovery" && e.Details["host"] == nil {
			t.Errorf("the recovery's audit event does not say where it ran: %v", e.Details)
		}
	}
	if strings.Join(actors, ",") != "recovery,recovery,system" {
		t.Fatalf("root_key.created actors, newest first: %v", actors)
	}
	if _, stderr, code := cli(t, s, strings.TrimSpace(string(fromFile)), "accounts", "list"); code != 0 {
		t.Fatalf("the key from the file: %s", stderr)
	}
}

// TestBusyPortKeepsTheFirstRootKey checks that a first start on a busy
// port fails before the first root key is made: the next start creates
// and prints it, instead of it having been printed by a server that never
// ran.
func TestBusyPortKeepsTheFirstRootKey(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	db := filepath.Join(t.TempDir(), "keygate.db")
	code, stdout, stderr := runMain(t, nil, "serve", "--addr", ln.Addr().String(), "--db", db)
	if code != 1 || !strings.Contains(stderr, "listen on") || rootKeyRE.MatchString(stdout+stderr) {
		t.Fatalf("serve on a busy port: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	s := startServer(t, "--db", db)
	if !strings.Contains(s.stdout.String(), "First start") || !rootKeyRE.MatchString(s.stdout.String()) {
		t.Fatalf("the start after a busy port printed no first root key:\n%s", s.stdout)
	}
}
