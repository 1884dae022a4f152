package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testclock"
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

// regexpKey finds a plaintext API key in CLI output.
var regexpKey = regexp.MustCompile(`kg_live_[0-9A-Za-z]{20,}`)

// TestKeysCreateWithOverrides runs in-process on a test clock: the third
// request must meet the quota of the same UTC day as the first two.
func TestKeysCreateWithOverrides(t *testing.T) {
	clock := testclock.New(time.Date(2026, 11, 28, 23, 30, 0, 0, time.UTC))
	s := startInProcess(t, clock.Now, "--db", filepath.Join(t.TempDir(), "keygate.db"))
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

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	json.Compact(&b, raw)
	return b.String()
}
