package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// newKey is what keys create and keys rotate print with --json.
type newKey struct {
	ID               string
	Key              string `json:"key"`
	Replaces         string
	Status           string
	Scopes           []string
	Tier             string
	QuotaPerDay      *int64     `json:"quota_per_day"`
	ExpiresAt        *time.Time `json:"expires_at"`
	Meta             json.RawMessage
	OldKeyWorksUntil *time.Time `json:"old_key_works_until"`
}

// setup starts a server and creates one account; it returns the server,
// the root key and the account ID.
func setup(t *testing.T) (*server, string, string) {
	t.Helper()
	s := startServer(t, "--db", filepath.Join(t.TempDir(), "keygate.db"))
	root := rootKeyRE.FindString(s.stdout.String())
	if root == "" {
		t.Fatalf("first start printed no root key; stdout:\n%s", s.stdout)
	}
	var acct struct{ ID string }
	cliJSON(t, s, root, &acct, "accounts", "create", "--name", "Acme", "--email", "ops@acme.test")
	return s, root, acct.ID
}

// wantFail runs a command that must fail with code and a stderr holding
// want; exit 1 answers must be one line.
func wantFail(t *testing.T, s *server, root string, code int, want string, args ...string) string {
	t.Helper()
	_, stderr, got := cli(t, s, root, args...)
	if got != code || !strings.Contains(stderr, want) {
		t.Fatalf("keygate %v: exit %d, stderr %q; want exit %d and %q", args, got, stderr, code, want)
	}
	if code == 1 && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("keygate %v: want a one-line explanation, got:\n%s", args, stderr)
	}
	return stderr
}

func wantWeather(t *testing.T, s *server, key string, code int, outcome string) {
	t.Helper()
	if got, o := weather(t, s, key); got != code || (outcome != "" && o != outcome) {
		t.Fatalf("/demo/weather: got %d %s, want %d %s", got, o, code, outcome)
	}
}

func TestKeyLifecycleCLI(t *testing.T) {
	s, root, acct := setup(t)
	var plaintexts []string
	create := func(name string) newKey {
		var k newKey
		cliJSON(t, s, root, &k, "keys", "create", "--account", acct, "--name", name)
		plaintexts = append(plaintexts, k.Key)
		return k
	}

	// Rotate with a grace period: both keys work until it ends.
	k1 := create("one")
	var r1 newKey
	cliJSON(t, s, root, &r1, "keys", "rotate", k1.ID, "--grace", "1h")
	plaintexts = append(plaintexts, r1.Key)
	if !strings.HasPrefix(r1.Key, "kg_live_") || r1.Replaces != k1.ID || r1.ID == k1.ID {
		t.Fatalf("keys rotate --json: %+v", r1)
	}
	if r1.OldKeyWorksUntil == nil || time.Until(*r1.OldKeyWorksUntil) < 59*time.Minute || time.Until(*r1.OldKeyWorksUntil) > 61*time.Minute {
		t.Fatalf("old_key_works_until: got %v, want about an hour from now", r1.OldKeyWorksUntil)
	}
	wantWeather(t, s, k1.Key, 200, "")
	wantWeather(t, s, r1.Key, 200, "")
	wantFail(t, s, root, 1, "already rotated", "keys", "rotate", k1.ID)

	// Rotate with --grace 0s, as a person would: the old key stops at once.
	k2 := create("two")
	out, stderr, code := cli(t, s, root, "keys", "rotate", k2.ID, "--grace", "0s")
	if code != 0 {
		t.Fatalf("keys rotate --grace 0s: exit %d: %s", code, stderr)
	}
	newPlain := regexpKey.FindString(out)
	if newPlain == "" || strings.Count(out, newPlain) != 1 || !strings.Contains(out, "revoked at once") || !strings.Contains(out, "STATUS") {
		t.Fatalf("keys rotate table output:\n%s", out)
	}
	plaintexts = append(plaintexts, newPlain)
	wantWeather(t, s, k2.Key, 401, "REVOKED")
	wantWeather(t, s, newPlain, 200, "")

	// The table tells until when the old key works.
	k3 := create("three")
	out, _, _ = cli(t, s, root, "keys", "rotate", k3.ID, "--grace", "24h")
	if !strings.Contains(out, "keeps working until") || !strings.Contains(out, "(24h from now)") {
		t.Fatalf("keys rotate --grace 24h:\n%s", out)
	}
	plaintexts = append(plaintexts, regexpKey.FindString(out))

	// Disable and enable.
	var k newKey
	cliJSON(t, s, root, &k, "keys", "disable", r1.ID)
	if k.Status != "disabled" {
		t.Fatalf("keys disable: status %q", k.Status)
	}
	wantWeather(t, s, r1.Key, 403, "DISABLED")
	cliJSON(t, s, root, &k, "keys", "enable", r1.ID)
	if k.Status != "active" {
		t.Fatalf("keys enable: status %q", k.Status)
	}
	wantWeather(t, s, r1.Key, 200, "")

	// Update only the fields given.
	cliJSON(t, s, root, &k, "keys", "update", r1.ID, "--scope", "weather:read", "--scope", "billing:read,admin:*",
		"--quota", "50", "--tier", "pro", "--meta", `{"team":"ci"}`, "--expires", "720h")
	var shown newKey
	cliJSON(t, s, root, &shown, "keys", "show", r1.ID)
	if want := []string{"admin:*", "billing:read", "weather:read"}; !slices.Equal(shown.Scopes, want) {
		t.Fatalf("scopes after keys update: got %v, want %v", shown.Scopes, want)
	}
	if shown.Tier != "pro" || shown.QuotaPerDay == nil || *shown.QuotaPerDay != 50 || compact(shown.Meta) != `{"team":"ci"}` || shown.ExpiresAt == nil {
		t.Fatalf("keys show after keys update: %+v", shown)
	}
	out, _, _ = cli(t, s, root, "keys", "show", r1.ID)
	if !strings.Contains(out, "admin:*,billing:read,weather:read") {
		t.Fatalf("keys show table lacks the scopes:\n%s", out)
	}
	cliJSON(t, s, root, &k, "keys", "update", r1.ID, "--name", "renamed")
	cliJSON(t, s, root, &shown, "keys", "show", r1.ID)
	if len(shown.Scopes) != 3 || shown.Tier != "pro" {
		t.Fatalf("keys update --name changed other fields: %+v", shown)
	}
	cliJSON(t, s, root, &k, "keys", "update", r1.ID, "--no-scopes", "--no-quota", "--inherit-tier", "--no-meta", "--no-expiry")
	shown = newKey{}
	cliJSON(t, s, root, &shown, "keys", "show", r1.ID)
	if len(shown.Scopes) != 0 || shown.Tier != "" || shown.QuotaPerDay != nil || shown.Meta != nil || shown.ExpiresAt != nil {
		t.Fatalf("keys update --no-…: %+v", shown)
	}
	wantWeather(t, s, r1.Key, 200, "")

	// Bad input: usage errors exit 2, server refusals exit 1.
	wantFail(t, s, root, 2, "at least one change", "keys", "update", r1.ID)
	wantFail(t, s, root, 2, "contradict", "keys", "update", r1.ID, "--scope", "a", "--no-scopes")
	wantFail(t, s, root, 2, "invalid value", "keys", "update", r1.ID, "--quota", "lots")
	wantFail(t, s, root, 2, "--grace", "keys", "rotate", r1.ID, "--grace", "forever")
	wantFail(t, s, root, 1, "quota_per_day", "keys", "update", r1.ID, "--quota", "0")
	wantFail(t, s, root, 1, "not a valid CIDR", "keys", "update", r1.ID, "--ip", "10.0.0.0/99")
	wantFail(t, s, root, 1, "key_nope", "keys", "disable", "key_nope")
	if stderr := wantFail(t, s, root, 2, "key ID", "keys", "rotate", r1.Key); strings.Contains(stderr, r1.Key) {
		t.Fatalf("a plaintext key passed as an ID was echoed: %s", stderr)
	}

	// The audit log records the lifecycle, and never a plaintext key.
	if _, stderr, code := cli(t, s, root, "keys", "revoke", r1.ID, "--reason", "test"); code != 0 {
		t.Fatalf("keys revoke: %s", stderr)
	}
	var audit struct {
		Data []struct{ Action, TargetID, Actor string }
	}
	cliJSON(t, s, root, &audit, "audit", "--limit", "1000")
	actions := map[string]int{}
	for _, e := range audit.Data {
		actions[e.Action]++
	}
	for _, a := range []string{"key.created", "key.rotated", "key.revoked", "key.enabled", "key.disabled", "key.updated"} {
		if actions[a] == 0 {
			t.Errorf("audit has no %s event: %v", a, actions)
		}
	}
	cliJSON(t, s, root, &audit, "audit", "--action", "key.rotated", "--since", "1h")
	if len(audit.Data) != 3 {
		t.Fatalf("audit --action key.rotated: got %d events, want 3", len(audit.Data))
	}
	cliJSON(t, s, root, &audit, "audit", "--target", k1.ID)
	if len(audit.Data) != 2 || audit.Data[0].Action != "key.rotated" || audit.Data[1].Action != "key.created" || !strings.HasPrefix(audit.Data[0].Actor, "root_key:rk_") {
		t.Fatalf("audit --target %s: %+v", k1.ID, audit.Data)
	}
	cliJSON(t, s, root, &audit, "audit", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if len(audit.Data) != 0 {
		t.Fatalf("audit --since in the future: %+v", audit.Data)
	}
	table, _, code := cli(t, s, root, "audit", "--limit", "1000")
	if code != 0 || !strings.HasPrefix(table, "TIME") || !strings.Contains(table, "key.rotated") || !strings.Contains(table, "DETAILS") {
		t.Fatalf("audit table: exit %d\n%s", code, table)
	}
	for _, line := range strings.Split(strings.TrimSpace(table), "\n") {
		if n := len([]rune(line)); n > 250 {
			t.Errorf("audit table line of %d characters: details are not truncated:\n%s", n, line)
		}
	}
	jsonOut, _, _ := cli(t, s, root, "audit", "--limit", "1000", "--json")
	for _, p := range append(plaintexts, root) {
		if p == "" || strings.Contains(table, p) || strings.Contains(jsonOut, p) {
			t.Fatalf("the audit log shows a plaintext key (or one is empty: %q)", p)
		}
	}
	wantFail(t, s, root, 2, "duration ago", "audit", "--since", "yesterday")
	wantFail(t, s, root, 2, "not a key", "audit", "--target", r1.Key)
}

func TestTiersAndAccountsCLI(t *testing.T) {
	s, root, acct := setup(t)
	var tier struct {
		Name          string
		QuotaPerDay   int64   `json:"quota_per_day"`
		RatePerSecond float64 `json:"rate_per_second"`
		Burst         int64
	}
	cliJSON(t, s, root, &tier, "tiers", "create", "--name", "gold", "--quota", "5000", "--rate", "10", "--burst", "20")
	if tier.Name != "gold" || tier.QuotaPerDay != 5000 || tier.RatePerSecond != 10 || tier.Burst != 20 {
		t.Fatalf("tiers create: %+v", tier)
	}
	cliJSON(t, s, root, &tier, "tiers", "update", "gold", "--quota", "6000")
	if tier.QuotaPerDay != 6000 || tier.Burst != 20 {
		t.Fatalf("tiers update --quota: %+v", tier)
	}
	out, _, code := cli(t, s, root, "tiers", "show", "gold")
	if code != 0 || !strings.Contains(out, "QUOTA/DAY") || !strings.Contains(out, "6000") {
		t.Fatalf("tiers show: exit %d\n%s", code, out)
	}
	out, _, _ = cli(t, s, root, "tiers", "list")
	if !strings.Contains(out, "gold") || !strings.Contains(out, "free") {
		t.Fatalf("tiers list:\n%s", out)
	}

	// A tier in use cannot be deleted.
	var a struct{ ID, Name, Email, Tier string }
	cliJSON(t, s, root, &a, "accounts", "update", acct, "--tier", "gold", "--name", "Acme Inc")
	if a.Tier != "gold" || a.Name != "Acme Inc" || a.Email != "ops@acme.test" {
		t.Fatalf("accounts update: %+v", a)
	}
	wantFail(t, s, root, 1, `Tier "gold" is still used by 1 account`, "tiers", "delete", "gold")
	cliJSON(t, s, root, &a, "accounts", "update", acct, "--tier", "free")
	if out, stderr, code := cli(t, s, root, "tiers", "delete", "gold"); code != 0 || !strings.Contains(out, "Deleted tier gold") {
		t.Fatalf("tiers delete: exit %d: %s%s", code, out, stderr)
	}
	wantFail(t, s, root, 1, "gold", "tiers", "show", "gold")
	wantFail(t, s, root, 1, "free tier", "tiers", "delete", "free")

	wantFail(t, s, root, 2, "needs --rate, --burst", "tiers", "create", "--name", "x", "--quota", "1")
	wantFail(t, s, root, 2, "at least one of --quota", "tiers", "update", "pro")
	wantFail(t, s, root, 1, "quota_per_day", "tiers", "create", "--name", "silly", "--quota", "0", "--rate", "1", "--burst", "1")
	wantFail(t, s, root, 1, "already exists", "tiers", "create", "--name", "pro", "--quota", "1", "--rate", "1", "--burst", "1")
	wantFail(t, s, root, 2, "unknown subcommand", "tiers", "frob")
	wantFail(t, s, root, 2, "at least one of --name", "accounts", "update", acct)
	wantFail(t, s, root, 1, "not a valid address", "accounts", "update", acct, "--email", "nope")
}

func TestRootKeysCLI(t *testing.T) {
	s, root, _ := setup(t)
	var rk struct {
		ID, Name, Key string
		Permissions   []string
	}
	cliJSON(t, s, root, &rk, "root-keys", "create", "--name", "gateway", "--permission", "verify", "--permission", "admin:read")
	if !rootKeyRE.MatchString(rk.Key) || rk.Name != "gateway" || !slices.Equal(rk.Permissions, []string{"verify", "admin:read"}) {
		t.Fatalf("root-keys create: %+v", rk)
	}
	// The new key works within its permissions, and only there.
	if _, stderr, code := cli(t, s, rk.Key, "accounts", "list"); code != 0 {
		t.Fatalf("admin:read key cannot list accounts: %s", stderr)
	}
	wantFail(t, s, rk.Key, 1, "not allowed", "tiers", "create", "--name", "x", "--quota", "1", "--rate", "1", "--burst", "1")

	out, _, code := cli(t, s, root, "root-keys", "list")
	if code != 0 || !strings.Contains(out, rk.ID) || !strings.Contains(out, "verify,admin:read") || strings.Contains(out, rk.Key) || strings.Contains(out, root) {
		t.Fatalf("root-keys list: exit %d\n%s", code, out)
	}
	out, _, _ = cli(t, s, root, "root-keys", "create", "--name", "ops", "--permission", "admin:read,admin:write")
	if strings.Count(out, "kgr_live_") != 2 || !strings.Contains(out, "shown only this once") { // the start, and the key once
		t.Fatalf("root-keys create table:\n%s", out)
	}

	if _, stderr, code := cli(t, s, root, "root-keys", "revoke", rk.ID); code != 0 {
		t.Fatalf("root-keys revoke: %s", stderr)
	}
	wantFail(t, s, rk.Key, 1, "refused the root key", "accounts", "list")
	var list struct {
		Data []struct {
			ID        string
			RevokedAt *time.Time `json:"revoked_at"`
		}
	}
	cliJSON(t, s, root, &list, "root-keys", "list")
	if len(list.Data) != 3 {
		t.Fatalf("root-keys list --json: %+v", list)
	}
	for _, r := range list.Data {
		if (r.ID == rk.ID) != (r.RevokedAt != nil) {
			t.Fatalf("root-keys list after revoke: %+v", list)
		}
	}
	wantFail(t, s, root, 2, "needs --name and at least one --permission", "root-keys", "create", "--name", "x")
	wantFail(t, s, root, 1, "unknown", "root-keys", "create", "--name", "x", "--permission", "superuser")
	wantFail(t, s, root, 2, "root key ID", "root-keys", "revoke", root)
}

// legacyKey makes a key the classic way: "doda_" + token_urlsafe(32), and
// the SHA-256 hex it is stored by.
func legacyKey(t *testing.T) (raw, hash string) {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	raw = "doda_" + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(raw))
	return raw, hex.EncodeToString(sum[:])
}

type verifyAnswer struct {
	Valid  bool
	Code   string
	KeyID  string `json:"key_id"`
	Name   string
	Tier   string
	Scopes []string
}

func verifyKey(t *testing.T, s *server, root, key string) verifyAnswer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"key": key})
	req, _ := http.NewRequest("POST", s.url+"/v1/keys/verify", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+root)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v verifyAnswer
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&v) != nil {
		t.Fatalf("POST /v1/keys/verify: %s", resp.Status)
	}
	return v
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cliStdin is cli with data on standard input.
func cliStdin(t *testing.T, s *server, rootKey, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv("KEYGATE_URL="+s.url, "KEYGATE_ROOT_KEY="+rootKey)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func TestImportCLI(t *testing.T) {
	s, root, acct := setup(t)

	// CSV, columns in any order, with a column keygate does not know.
	var csvRaw []string
	var b strings.Builder
	b.WriteString("name,account_id,hash,tier,scopes,created_at\n")
	for i := range 5 {
		raw, hash := legacyKey(t)
		csvRaw = append(csvRaw, raw)
		fmt.Fprintf(&b, "legacy %d,%s,%s,pro,weather:read;billing:read,2019-01-01\n", i, acct, hash)
	}
	csvPath := writeFile(t, "legacy.csv", b.String())
	out, stderr, code := cli(t, s, root, "import", csvPath)
	if code != 0 || !strings.HasPrefix(out, "5 imported, 0 already present, 0 invalid") {
		t.Fatalf("import CSV: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	if !strings.Contains(stderr, `ignoring unknown column(s) "created_at"`) {
		t.Errorf("no warning about the unknown column: %q", stderr)
	}

	// JSONL, with a blank line and scopes as an array.
	var jsonlRaw []string
	b.Reset()
	for i := range 3 {
		raw, hash := legacyKey(t)
		jsonlRaw = append(jsonlRaw, raw)
		row, _ := json.Marshal(map[string]any{"hash": hash, "account_id": acct, "tier": "free", "name": fmt.Sprintf("j%d", i), "scopes": []string{"weather:read"}})
		b.Write(row)
		b.WriteString("\n\n")
	}
	jsonlPath := writeFile(t, "legacy.jsonl", b.String())
	var sum struct{ Rows, Inserted, Skipped, Invalid, Batches int }
	cliJSON(t, s, root, &sum, "import", jsonlPath)
	if sum.Rows != 3 || sum.Inserted != 3 || sum.Invalid != 0 {
		t.Fatalf("import JSONL --json: %+v", sum)
	}

	// The imported keys work, unchanged.
	for i, raw := range append(csvRaw, jsonlRaw...) {
		wantWeather(t, s, raw, 200, "")
		v := verifyKey(t, s, root, raw)
		wantTier := "pro"
		if i >= len(csvRaw) {
			wantTier = "free"
		}
		if !v.Valid || v.Code != "VALID" || !strings.HasPrefix(v.KeyID, "key_") || v.Tier != wantTier || !slices.Contains(v.Scopes, "weather:read") {
			t.Fatalf("verify imported key %d: %+v", i, v)
		}
	}

	// Re-running imports nothing new; standard input works with --format.
	out, _, code = cli(t, s, root, "import", csvPath)
	if code != 0 || !strings.HasPrefix(out, "0 imported, 5 already present, 0 invalid") {
		t.Fatalf("re-import CSV: exit %d: %s", code, out)
	}
	data, _ := os.ReadFile(jsonlPath)
	out, _, code = cliStdin(t, s, root, string(data), "import", "-", "--format", "jsonl")
	if code != 0 || !strings.HasPrefix(out, "0 imported, 3 already present, 0 invalid") {
		t.Fatalf("re-import JSONL from stdin: exit %d: %s", code, out)
	}
	wantFail(t, s, root, 2, "needs --format", "import", "-")

	// Bad rows are reported by their line in the file, whether keygate
	// finds them (bad hash, missing field) or the server does (unknown
	// account or tier), across batches.
	good := make([]string, 4)
	hashes := make([]string, 4)
	for i := range good {
		good[i], hashes[i] = legacyKey(t)
	}
	plainInHash, _ := legacyKey(t)
	_, h5 := legacyKey(t)
	_, h6 := legacyKey(t)
	_, h8 := legacyKey(t)
	bad := strings.Join([]string{
		"hash,account_id,tier,name",                 // 1
		hashes[0] + "," + acct + ",,first",          // 2 ok
		plainInHash + "," + acct + ",,leaked",       // 3 a plaintext key where the hash goes
		hashes[1] + "," + acct + ",,\"two\nlines\"", // 4-5 ok, a quoted newline
		h5 + ",acc_nope,,orphan",                    // 6 unknown account (server)
		h6 + "," + acct + ",gold,golden",            // 7 unknown tier (server)
		h8 + "," + acct,                             // 8 too few fields
		"abc," + acct + ",,short",                   // 9 bad hash
		hashes[2] + "," + acct + ",,later",          // 10 ok
		hashes[0] + "," + acct + ",,again",          // 11 repeats line 2: already present
	}, "\n") + "\n"
	badPath := writeFile(t, "bad.csv", bad)
	out, stderr, code = cli(t, s, root, "import", badPath, "--batch", "2")
	if code != 0 || !strings.HasPrefix(out, "3 imported, 1 already present, 5 invalid") {
		t.Fatalf("import with bad rows (skip): exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if _, rest, ok := strings.Cut(l, "bad.csv: line "); ok {
			n, _, _ := strings.Cut(rest, ":")
			lines = append(lines, n)
		}
	}
	if want := []string{"3", "6", "7", "8", "9"}; !slices.Equal(lines, want) {
		t.Fatalf("bad lines reported: got %v, want %v; stderr:\n%s", lines, want, stderr)
	}
	for _, want := range []string{"line 6: account \"acc_nope\" does not exist", "line 7: tier \"gold\" does not exist", "line 8: has 2 fields", "line 9: hash is not 64 hex"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, plainInHash) {
		t.Fatalf("a plaintext key in the hash column was echoed:\n%s", stderr)
	}
	for _, raw := range good[:3] {
		wantWeather(t, s, raw, 200, "")
	}

	// Stop mode: the first bad row ends the import; the batches before it
	// stay imported, the one holding it does not.
	_, s1 := legacyKey(t)
	_, s2 := legacyKey(t)
	k3, s3 := legacyKey(t)
	k4, s4 := legacyKey(t)
	stop := strings.Join([]string{
		"hash,account_id",
		s1 + "," + acct,        // 2 ┐ batch 1: imported
		s2 + "," + acct,        // 3 ┘
		s3 + "," + acct,        // 4 ┐ batch 2: refused whole
		s4 + ",acc_nope",       // 5 ┘ unknown account
		hashes[3] + "," + acct, // 6 never sent
	}, "\n")
	stopPath := writeFile(t, "stop.csv", stop)
	out, stderr, code = cli(t, s, root, "import", stopPath, "--batch", "2", "--on-error", "stop")
	if code != 1 || !strings.HasPrefix(out, "2 imported, 0 already present, 1 invalid") ||
		!strings.Contains(stderr, "stop.csv: line 5: account \"acc_nope\" does not exist") ||
		!strings.Contains(stderr, "import stopped at line 5") || !strings.Contains(stderr, "rows before line 4 stay imported") {
		t.Fatalf("import --on-error stop: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	wantWeather(t, s, k3, 401, "NOT_FOUND")
	wantWeather(t, s, k4, 401, "NOT_FOUND")
	wantWeather(t, s, good[3], 401, "NOT_FOUND")

	// Stop mode, a row keygate rejects itself: nothing of its batch is sent.
	stop2 := "hash,account_id\n" + hashes[3] + "," + acct + "\nnot-a-hash," + acct + "\n"
	out, stderr, code = cli(t, s, root, "import", writeFile(t, "stop2.csv", stop2), "--on-error", "stop")
	if code != 1 || !strings.Contains(stderr, "stop2.csv: line 3: hash") || !strings.Contains(stderr, "nothing was imported") {
		t.Fatalf("import --on-error stop, local error: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	wantWeather(t, s, good[3], 401, "NOT_FOUND")

	// The file's structure is checked before anything is sent.
	wantFail(t, s, root, 2, "no account_id column", "import", writeFile(t, "nocol.csv", "hash,name\n"+hashes[3]+",x\n"))
	wantFail(t, s, root, 2, "no header row", "import", writeFile(t, "nohead.csv", hashes[3]+","+acct+"\n"))
	wantFail(t, s, root, 2, "--format csv or --format jsonl", "import", writeFile(t, "keys.txt", "x"))
	wantFail(t, s, root, 2, "--batch", "import", csvPath, "--batch", "20000")
	wantFail(t, s, root, 2, "--on-error", "import", csvPath, "--on-error", "ignore")
	wantFail(t, s, root, 2, "no such file", "import", filepath.Join(t.TempDir(), "missing.csv"))

	// JSONL errors carry line numbers too.
	jbad := `{"hash":"` + hashes[3] + `","account_id":"` + acct + `"}` + "\n" +
		"\n" +
		`{"hash":"` + hashes[3] + `"}` + "\n" +
		"[1,2]\n" +
		`{"hash":"` + hashes[3] + `","account_id":"` + acct + `","scopes":5}` + "\n" +
		`{"hash": 12` + "\n"
	out, stderr, code = cli(t, s, root, "import", writeFile(t, "bad.jsonl", jbad))
	if code != 0 || !strings.HasPrefix(out, "1 imported, 0 already present, 4 invalid") {
		t.Fatalf("import bad JSONL: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	for _, want := range []string{"line 3: has no account_id", "line 4: not a JSON object", "line 5: scopes must be", "line 6: not valid JSON"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	wantWeather(t, s, good[3], 200, "")

	// The audit log has the imports, and no key.
	var audit struct{ Data []struct{ Action string } }
	cliJSON(t, s, root, &audit, "audit", "--action", "keys.imported")
	if len(audit.Data) == 0 {
		t.Fatal("no keys.imported audit event")
	}
	all, _, _ := cli(t, s, root, "audit", "--json", "--limit", "1000")
	for _, raw := range append(append(csvRaw, jsonlRaw...), good...) {
		if strings.Contains(all, raw) {
			t.Fatal("the audit log holds an imported plaintext key")
		}
	}
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	json.Compact(&b, raw)
	return b.String()
}

// regexpKey finds a plaintext API key in CLI output.
var regexpKey = regexp.MustCompile(`kg_live_[0-9A-Za-z]{20,}`)

func TestKeysCreateWithOverrides(t *testing.T) {
	s := startServer(t, "--db", filepath.Join(t.TempDir(), "keygate.db"))
	root := rootKeyRE.FindString(s.stdout.String())
	var acct struct{ ID string }
	cliJSON(t, s, root, &acct, "accounts", "create", "--name", "O", "--email", "o@example.com")
	var k struct {
		QuotaPerDay   *int64   `json:"quota_per_day"`
		RatePerSecond *float64 `json:"rate_per_second"`
		Burst         *int64   `json:"burst"`
		Key           string   `json:"key"`
	}
	cliJSON(t, s, root, &k, "keys", "create", "--account", acct.ID, "--quota", "2", "--rate", "0.5", "--burst", "3")
	if k.QuotaPerDay == nil || *k.QuotaPerDay != 2 || k.RatePerSecond == nil || *k.RatePerSecond != 0.5 || k.Burst == nil || *k.Burst != 3 {
		t.Fatalf("overrides: got %+v", k)
	}
	wantWeather(t, s, k.Key, 200, "")
	wantWeather(t, s, k.Key, 200, "")
	wantWeather(t, s, k.Key, 429, "QUOTA_EXCEEDED")
	if _, stderr, code := cli(t, s, root, "keys", "create", "--account", acct.ID, "--quota", "0"); code != 1 || !strings.Contains(stderr, "quota_per_day must be between") {
		t.Fatalf("--quota 0: exit %d, %q", code, stderr)
	}
}
