package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/internal/testclock"
)

// deliverUntil has the server's dispatcher send what is due until the
// receiver has n requests. Quota thresholds reach the outbox from a
// goroutine of their own, so what is due may come a moment later.
func deliverUntil(t *testing.T, s *server, rc *hookReceiver, n int) []delivered {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := s.main.server.dispatcher.DeliverDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := rc.received(); len(got) >= n || time.Now().After(deadline) {
			return got
		}
	}
}

// subscribe registers url for events with the CLI and gives the receiver
// the secret shown.
func subscribe(t *testing.T, s *server, root string, rc *hookReceiver, url, events string) string {
	t.Helper()
	out, stderr, code := cli(t, s, root, "webhooks", "create", url, "--event", events)
	secret := secretRE.FindString(out)
	if code != 0 || secret == "" {
		t.Fatalf("webhooks create: exit %d %s\n%s", code, stderr, out)
	}
	rc.setSecret(secret)
	var list []struct{ ID string }
	var l struct{ Data []struct{ ID string } }
	cliJSON(t, s, root, &l, "webhooks", "list")
	list = l.Data
	return list[len(list)-1].ID
}

// Each event type reaches a registered receiver, signed, with the data
// docs/WEBHOOKS.md describes, and never with a plaintext key: through the
// server `keygate serve` runs, on a test clock.
func TestEveryWebhookEventArrivesSigned(t *testing.T) {
	clock := testclock.New(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC))
	gh, keysFile := githubKeysFile(t)
	s := startInProcess(t, clock.Now, "--db", filepath.Join(t.TempDir(), "keygate.db"), "--webhooks-allow-private", "--github-keys-file", keysFile)
	root := rootKeyRE.FindString(s.stdout.String())
	rc, url := newHookReceiver(t, clock.Peek)
	subscribe(t, s, root, rc, url, "key.created,key.rotated,key.revoked,key.expiring,key.leaked,quota.threshold,account.created")

	var small struct{ Name string }
	cliJSON(t, s, root, &small, "tiers", "create", "--name", "small", "--quota", "5", "--rate", "100", "--burst", "100")
	var acct, team struct{ ID string }
	cliJSON(t, s, root, &acct, "accounts", "create", "--name", "Ada", "--email", "ada@example.com")
	cliJSON(t, s, root, &team, "accounts", "create", "--name", "Team", "--email", "team@example.com", "--tier", "small")
	type keyOut struct {
		ID  string
		Key string `json:"key"`
	}
	var metered, expiring, leaked, teamA, teamB keyOut
	cliJSON(t, s, root, &metered, "keys", "create", "--account", acct.ID, "--quota", "5")
	cliJSON(t, s, root, &expiring, "keys", "create", "--account", acct.ID, "--expires", "156h") // 6.5 days
	cliJSON(t, s, root, &leaked, "keys", "create", "--account", acct.ID)
	cliJSON(t, s, root, &teamA, "keys", "create", "--account", team.ID)
	cliJSON(t, s, root, &teamB, "keys", "create", "--account", team.ID)
	plaintexts := []string{metered.Key, expiring.Key, leaked.Key, teamA.Key, teamB.Key}

	// A key's own quota of 5: the 4th request reaches 80%, the 5th 100%,
	// the 6th is refused and reports nothing; the next day counts afresh.
	for range 6 {
		weather(t, s, metered.Key)
	}
	// The team's account-wide quota of 5, reached by its two keys together.
	for _, k := range []string{teamA.Key, teamB.Key, teamA.Key, teamB.Key, teamA.Key} {
		weather(t, s, k)
	}
	deliverUntil(t, s, rc, 2+5+4) // before the clock jumps
	clock.Add(24 * time.Hour)
	for range 4 {
		weather(t, s, metered.Key)
	}

	var rotated keyOut
	cliJSON(t, s, root, &rotated, "keys", "rotate", metered.ID, "--grace", "1h")
	plaintexts = append(plaintexts, rotated.Key)

	// Expiry warnings: 7 days before, then 1 day before; each once.
	for range 2 {
		if _, err := s.main.server.expiry.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var exp struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	cliJSON(t, s, root, &exp, "keys", "show", expiring.ID)
	// Everything raised so far is delivered before the clock jumps, so
	// that no attempt is signed on one side of the jump and checked on
	// the other.
	deliverUntil(t, s, rc, 15)
	clock.Set(exp.ExpiresAt.Add(-20 * time.Hour))
	for range 2 {
		if _, err := s.main.server.expiry.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
	}

	// GitHub reports a key found in a public repository.
	report := `[{"token":"` + leaked.Key + `","type":"keygate_api_key","url":"https://github.com/octocat/hello/blob/main/.env","source":"content"}]`
	req, _ := http.NewRequest("POST", s.url+"/v1/leaks/github", strings.NewReader(report))
	req.Header.Set("Content-Type", "application/json") // as GitHub sends it
	for k, v := range gh.sign(t, report) {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /v1/leaks/github: %d", resp.StatusCode)
	}
	if _, stderr, code := cli(t, s, root, "keys", "revoke", expiring.ID); code != 0 {
		t.Fatalf("keys revoke: %s", stderr)
	}

	got := deliverUntil(t, s, rc, 19)
	var types []string
	ids := map[string]bool{}
	for _, d := range got {
		types = append(types, d.Type)
		if ids[d.ID] {
			t.Errorf("webhook-id %s delivered twice", d.ID)
		}
		ids[d.ID] = true
		for _, p := range plaintexts {
			if strings.Contains(d.Body, p) {
				t.Errorf("%s payload holds a plaintext key: %s", d.Type, d.Body)
			}
		}
		if !strings.HasPrefix(d.ID, "msg_") {
			t.Errorf("webhook-id %q: want msg_…", d.ID)
		}
	}
	slices.Sort(types)
	want := []string{
		"account.created", "account.created",
		"key.created", "key.created", "key.created", "key.created", "key.created", "key.created", // the 6th by rotation
		"key.expiring", "key.expiring",
		"key.leaked",
		"key.revoked", "key.revoked",
		"key.rotated",
		"quota.threshold", "quota.threshold", "quota.threshold", "quota.threshold", "quota.threshold",
	}
	if !slices.Equal(types, want) {
		t.Fatalf("received %v,\nwant %v", types, want)
	}

	checkAgainstOpenAPI(t, s, got)

	find := func(typ string, match func(map[string]any) bool) map[string]any {
		t.Helper()
		for _, d := range got {
			if d.Type == typ && match(d.Data) {
				return d.Data
			}
		}
		t.Errorf("no %s event matching", typ)
		return nil
	}
	type th struct {
		Scope, Key, Account, Day string
		Percent, Used, Limit     float64
	}
	var thresholds []th
	for _, d := range got {
		if d.Type == "quota.threshold" {
			thresholds = append(thresholds, th{d.Data["scope"].(string), d.Data["key_id"].(string), d.Data["account_id"].(string),
				d.Data["day"].(string), d.Data["percent"].(float64), d.Data["used"].(float64), d.Data["limit"].(float64)})
		}
	}
	slices.SortFunc(thresholds, func(a, b th) int {
		return strings.Compare(a.Day+a.Scope+a.Account, b.Day+b.Scope+b.Account)*1000 + int(a.Percent-b.Percent)
	})
	wantThresholds := []th{
		{"account", teamA.ID, team.ID, "2026-11-28", 80, 4, 5},
		{"account", teamA.ID, team.ID, "2026-11-28", 100, 5, 5},
		{"key", metered.ID, acct.ID, "2026-11-28", 80, 4, 5},
		{"key", metered.ID, acct.ID, "2026-11-28", 100, 5, 5},
		{"key", metered.ID, acct.ID, "2026-11-29", 80, 4, 5},
	}
	// The team's 4th request came from teamB.
	wantThresholds[0].Key = teamB.ID
	if !slices.Equal(thresholds, wantThresholds) {
		t.Errorf("quota.threshold events:\ngot  %+v\nwant %+v", thresholds, wantThresholds)
	}
	for _, days := range []float64{7, 1} {
		find("key.expiring", func(d map[string]any) bool { return d["key_id"] == expiring.ID && d["days_before"] == days })
	}
	find("key.leaked", func(d map[string]any) bool { return d["key_id"] == leaked.ID })
	find("key.revoked", func(d map[string]any) bool {
		r, _ := d["reason"].(string)
		return d["key_id"] == leaked.ID && strings.HasPrefix(r, "leaked")
	})
	find("key.revoked", func(d map[string]any) bool { return d["key_id"] == expiring.ID })
	find("key.rotated", func(d map[string]any) bool { return d["key_id"] == metered.ID })
	find("key.created", func(d map[string]any) bool { return d["key_id"] == rotated.ID })
	find("key.created", func(d map[string]any) bool { return d["key_id"] == teamB.ID && d["account_id"] == team.ID })
	find("account.created", func(d map[string]any) bool { return d["account_id"] == team.ID })
}

// At least once across a restart: the receiver fails the first attempt,
// the server stops with the retry pending, and the next server on the
// same database delivers it when it is due, with the same webhook-id.
func TestWebhookDeliveredAcrossServerRestart(t *testing.T) {
	clock := testclock.New(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC))
	db := filepath.Join(t.TempDir(), "keygate.db")
	s := startInProcess(t, clock.Now, "--db", db, "--webhooks-allow-private")
	root := rootKeyRE.FindString(s.stdout.String())
	rc, url := newHookReceiver(t, clock.Peek, http.StatusServiceUnavailable)
	id := subscribe(t, s, root, rc, url, "account.created")
	cliJSON(t, s, root, &struct{}{}, "accounts", "create", "--name", "Ada", "--email", "ada@example.com")
	first := deliverUntil(t, s, rc, 1)
	var log struct {
		Data []struct {
			Status        string     `json:"status"`
			Attempts      int        `json:"attempts"`
			LastStatus    int        `json:"last_status"`
			NextAttemptAt *time.Time `json:"next_attempt_at"`
		}
	}
	// The attempt is recorded once the answer is in.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		cliJSON(t, s, root, &log, "webhooks", "deliveries", id)
		if len(log.Data) == 1 && log.Data[0].Attempts == 1 {
			break
		}
	}
	if len(first) != 1 || first[0].Status != 503 || len(log.Data) != 1 || log.Data[0].Status != "pending" ||
		log.Data[0].Attempts != 1 || log.Data[0].LastStatus != 503 || log.Data[0].NextAttemptAt == nil {
		t.Fatalf("after the failed attempt: received %+v, log %+v; want one pending retry", first, log.Data)
	}
	s.stop(t)

	clock.Set(*log.Data[0].NextAttemptAt)
	s = startInProcess(t, clock.Now, "--db", db, "--webhooks-allow-private")
	got := deliverUntil(t, s, rc, 2)
	if len(got) != 2 || got[1].ID != first[0].ID || got[1].Type != "account.created" || got[1].Status != 200 {
		t.Fatalf("after the restart: received %+v, want the same event again, answered 200", got)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		cliJSON(t, s, root, &log, "webhooks", "deliveries", id)
		if len(log.Data) == 1 && log.Data[0].Status != "pending" {
			break
		}
	}
	if len(log.Data) != 1 || log.Data[0].Status != "succeeded" || log.Data[0].Attempts != 2 {
		t.Errorf("delivery log: got %+v, want succeeded after 2 attempts", log.Data)
	}
}

// ghKey signs leak reports as GitHub does.
type ghKey struct {
	id   string
	priv *ecdsa.PrivateKey
}

func (g *ghKey) sign(t *testing.T, body string) map[string]string {
	sum := sha256.Sum256([]byte(body))
	sig, err := ecdsa.SignASN1(rand.Reader, g.priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{api.HeaderGitHubKeyID: g.id, api.HeaderGitHubSignature: base64.StdEncoding.EncodeToString(sig)}
}

// githubKeysFile makes a signing key and writes its public half in the
// JSON GitHub serves, for --github-keys-file.
func githubKeysFile(t *testing.T) (*ghKey, string) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	g := &ghKey{id: "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c", priv: priv}
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(map[string]any{"public_keys": []map[string]any{{
		"key_identifier": g.id, "key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "is_current": true,
	}}})
	path := filepath.Join(t.TempDir(), "github-keys.json")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return g, path
}

// checkAgainstOpenAPI checks each delivery's body and headers against the
// webhooks section of the OpenAPI document the server serves.
func checkAgainstOpenAPI(t *testing.T, s *server, got []delivered) {
	t.Helper()
	resp, err := http.Get(s.url + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range got {
		item := doc.Webhooks[d.Type]
		if item == nil || item.Post == nil {
			t.Errorf("%s: not in the document's webhooks", d.Type)
			continue
		}
		var body any
		if err := json.Unmarshal([]byte(d.Body), &body); err != nil {
			t.Fatal(err)
		}
		schema := item.Post.RequestBody.Value.Content.Get("application/json").Schema.Value
		if err := schema.VisitJSON(body); err != nil {
			t.Errorf("%s payload %s does not match the document: %v", d.Type, d.Body, err)
		}
		for _, p := range item.Post.Parameters {
			if err := p.Value.Schema.Value.VisitJSON(d.Header.Get(p.Value.Name)); err != nil {
				t.Errorf("%s header %s %q does not match the document: %v", d.Type, p.Value.Name, d.Header.Get(p.Value.Name), err)
			}
		}
	}
}
