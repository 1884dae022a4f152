package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/webhook"
)

// delivered is one request a hookReceiver took.
type delivered struct {
	ID, Type string
	Data     map[string]any
	Body     string
	Status   int
	Header   http.Header
}

// hookReceiver is a webhook endpoint that checks each request's
// signature with secret at the time now gives, and answers with the
// statuses given in turn (200 once they run out).
type hookReceiver struct {
	t   *testing.T
	now func() time.Time

	mu       sync.Mutex
	secret   string
	statuses []int
	got      []delivered
}

func (rc *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := webhook.Verify(rc.secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"),
		r.Header.Get("webhook-signature"), body, rc.now()); err != nil {
		rc.t.Errorf("receiver: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		rc.t.Errorf("receiver: %v in %s", err, body)
	}
	status := http.StatusOK
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	rc.got = append(rc.got, delivered{r.Header.Get("webhook-id"), p.Type, p.Data, string(body), status, r.Header.Clone()})
	w.WriteHeader(status)
}

func (rc *hookReceiver) received() []delivered {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

func (rc *hookReceiver) setSecret(s string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret = s
}

// waitFor waits until the receiver has got n requests, which a server
// sends in the background, and returns what it got.
func (rc *hookReceiver) waitFor(t *testing.T, n int) []delivered {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := rc.received()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver got %d requests, want %d", len(got), n)
		}
	}
}

func types(ds []delivered) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Type
	}
	return out
}

// newHookReceiver starts a hookReceiver and returns it with its URL.
func newHookReceiver(t *testing.T, now func() time.Time, statuses ...int) (*hookReceiver, string) {
	rc := &hookReceiver{t: t, now: now, statuses: statuses}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv.URL + "/hooks/keygate"
}

var secretRE = regexp.MustCompile(`whsec_[A-Za-z0-9+/=]+`)

func TestWebhooksCLI(t *testing.T) {
	rc, hookURL := newHookReceiver(t, time.Now)
	s := startServer(t, "--db", filepath.Join(t.TempDir(), "keygate.db"), "--webhooks-allow-private")
	root := rootKeyRE.FindString(s.stdout.String())

	out, stderr, code := cli(t, s, root, "webhooks", "create", hookURL,
		"--event", "account.created,key.created", "--event", "key.revoked", "--description", "ops")
	secret := secretRE.FindString(out)
	if code != 0 || secret == "" || !strings.Contains(out, "shown only this once") || !strings.Contains(out, "account.created,key.created,key.revoked") {
		t.Fatalf("webhooks create: exit %d %s\n%s", code, stderr, out)
	}
	rc.setSecret(secret)
	id := regexp.MustCompile(`wh_[0-9A-Za-z]+`).FindString(out)

	// The secret shows nowhere else.
	for _, args := range [][]string{{"webhooks", "list"}, {"webhooks", "get", id}, {"webhooks", "list", "--json"}} {
		out, stderr, code := cli(t, s, root, args...)
		if code != 0 || !strings.Contains(out, id) || strings.Contains(out, "whsec_") {
			t.Errorf("keygate %v: exit %d %s\n%s; want the endpoint without its secret", args, code, stderr, out)
		}
	}

	var acct struct{ ID string }
	cliJSON(t, s, root, &acct, "accounts", "create", "--name", "W", "--email", "w@example.com")
	var key struct{ ID string }
	cliJSON(t, s, root, &key, "keys", "create", "--account", acct.ID)
	if got := types(rc.waitFor(t, 2)); !slices.Contains(got, "account.created") || !slices.Contains(got, "key.created") {
		t.Errorf("received %v, want account.created and key.created", got)
	}

	out, _, code = cli(t, s, root, "webhooks", "test", id)
	if code != 0 || !strings.Contains(out, "webhook.test") {
		t.Fatalf("webhooks test: exit %d\n%s", code, out)
	}
	if got := types(rc.waitFor(t, 3)); got[2] != "webhook.test" {
		t.Errorf("received %v, want webhook.test third", got)
	}

	var log struct {
		Data []struct {
			ID       string `json:"id"`
			EventID  string `json:"event_id"`
			Attempts int    `json:"attempts"`
		}
	}
	// The dispatcher records each attempt after sending it.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		cliJSON(t, s, root, &log, "webhooks", "deliveries", id, "--status", "succeeded")
		if len(log.Data) == 3 {
			break
		}
	}
	if len(log.Data) != 3 || log.Data[0].Attempts != 1 {
		t.Fatalf("deliveries --status succeeded: got %+v, want 3 after 1 attempt each", log.Data)
	}
	out, _, _ = cli(t, s, root, "webhooks", "deliveries", id)
	for _, want := range []string{"EVENT", "STATUS", "ATTEMPTS", "succeeded", "key.created", log.Data[0].ID} {
		if !strings.Contains(out, want) {
			t.Errorf("webhooks deliveries lacks %q:\n%s", want, out)
		}
	}
	if out, _, code := cli(t, s, root, "webhooks", "redeliver", id, log.Data[0].ID); code != 0 || !strings.Contains(out, "pending again") {
		t.Errorf("webhooks redeliver: exit %d\n%s", code, out)
	}
	if got := rc.waitFor(t, 4); got[3].ID != log.Data[0].EventID {
		t.Errorf("redelivery came with webhook-id %s, want %s", got[3].ID, log.Data[0].EventID)
	}

	// A rotated secret signs what follows.
	out, _, code = cli(t, s, root, "webhooks", "rotate-secret", id)
	rotated := secretRE.FindString(out)
	if code != 0 || rotated == "" || rotated == secret {
		t.Fatalf("webhooks rotate-secret: exit %d\n%s", code, out)
	}
	rc.setSecret(rotated)
	cli(t, s, root, "keys", "revoke", key.ID)
	if got := types(rc.waitFor(t, 5)); got[4] != "key.revoked" {
		t.Errorf("received %v, want key.revoked last", got)
	}

	var upd struct {
		Enabled bool
		Events  []string
	}
	cliJSON(t, s, root, &upd, "webhooks", "update", id, "--disable", "--event", "key.rotated")
	if upd.Enabled || !slices.Equal(upd.Events, []string{"key.rotated"}) {
		t.Errorf("webhooks update: got %+v, want disabled with key.rotated", upd)
	}
	if out, _, code := cli(t, s, root, "webhooks", "delete", id); code != 0 || !strings.Contains(out, "Deleted webhook "+id) {
		t.Errorf("webhooks delete: exit %d\n%s", code, out)
	}
	if _, stderr, code := cli(t, s, root, "webhooks", "get", id); code != 1 || !strings.Contains(stderr, id) {
		t.Errorf("webhooks get after delete: exit %d %q, want 1 naming the ID", code, stderr)
	}

	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"webhooks", "create", "--endpoint", hookURL}, 2, "--event"},
		{[]string{"webhooks", "create", "--endpoint", "ftp://example.com/x", "--event", "key.created"}, 1, "http://"},
		{[]string{"webhooks", "create", "https://example.com/x", "--event", "key.exploded"}, 1, "key.exploded"},
		{[]string{"webhooks", "get", "key_123"}, 2, "wh_"},
		{[]string{"webhooks", "update", "wh_x"}, 2, "at least one"},
		{[]string{"webhooks", "update", "wh_x", "--enable", "--disable"}, 2, "not both"},
		{[]string{"webhooks", "redeliver", "wh_x"}, 2, "delivery ID"},
		{[]string{"webhooks", "deliveries", "wh_x", "--status", "lost"}, 1, "status"},
		{[]string{"webhooks", "frob"}, 2, "unknown subcommand"},
	} {
		_, stderr, code := cli(t, s, root, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("keygate %v: exit %d %q, want %d mentioning %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}
