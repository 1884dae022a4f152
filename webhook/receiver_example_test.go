package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/webhook"
)

// This file keeps docs/WEBHOOKS.md true: the receiver code it shows is
// checked here against real deliveries from the Dispatcher.

// verifyWebhook checks a keygate webhook request: its timestamp within 5
// minutes of now, and its signature under secret ("whsec_…"). body is
// the request body exactly as received.
func verifyWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("the secret is not whsec_ followed by base64")
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not Unix seconds")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("webhook-timestamp is too far from now")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) == 1 {
			return nil
		}
	}
	return errors.New("no signature matches")
}

// docBlock returns the fenced code block that follows marker in
// docs/WEBHOOKS.md, skipping skip blocks after it.
func docBlock(t *testing.T, marker string, skip int) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "WEBHOOKS.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), marker)
	for i := 0; ok && i <= skip; i++ {
		_, rest, ok = strings.Cut(rest, "```")
		if ok && i < skip {
			_, rest, ok = strings.Cut(rest, "```")
		}
	}
	if !ok {
		t.Fatalf("docs/WEBHOOKS.md: no code block after %q", marker)
	}
	_, rest, _ = strings.Cut(rest, "\n") // the info string
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("docs/WEBHOOKS.md: unterminated code block after %q", marker)
	}
	return block
}

func TestDocsShowTheTestedVerifyWebhook(t *testing.T) {
	src, err := os.ReadFile("receiver_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, fn, _ := strings.Cut(string(src), "// verifyWebhook checks")
	fn, _, _ = strings.Cut(fn, "\n}\n")
	fn = "// verifyWebhook checks" + fn + "\n}\n"
	if got := docBlock(t, "<!-- verifyWebhook:", 0); got != fn {
		t.Errorf("docs/WEBHOOKS.md shows a verifyWebhook other than the tested one:\n%s\nwant:\n%s", got, fn)
	}
}

// captured is one request as a receiver got it.
type captured struct {
	header http.Header
	body   []byte
}

type captor struct {
	mu  sync.Mutex
	got []captured
}

func (c *captor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.got = append(c.got, captured{r.Header.Clone(), body})
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// realDelivery has a Dispatcher deliver one event to a local endpoint
// and returns the request as the endpoint got it, the endpoint's secret
// and the clock's time.
func realDelivery(t *testing.T) (captured, string, time.Time) {
	e := newEnv(t)
	c := &captor{}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	e.hook.URL = srv.URL + "/hooks/keygate"
	if err := e.store.UpdateWebhook(t.Context(), e.hook); err != nil {
		t.Fatal(err)
	}
	e.enqueue(keygate.EventQuotaThreshold)
	deliverDue(t, e.dispatcher(), 1)
	if len(c.got) != 1 {
		t.Fatalf("the endpoint got %d requests, want 1", len(c.got))
	}
	return c.got[0], e.hook.Secret, e.clock.Now()
}

func TestVerifyWebhookExampleOnARealDelivery(t *testing.T) {
	req, secret, now := realDelivery(t)
	if err := verifyWebhook(secret, req.header, req.body, now); err != nil {
		t.Fatalf("verifyWebhook of a real delivery: %v", err)
	}
	other, _ := webhook.NewSecret()
	tampered := bytes.Replace(req.body, []byte("quota"), []byte("QUOTA"), 1)
	for name, tt := range map[string]struct {
		secret string
		body   []byte
		now    time.Time
	}{
		"tampered body": {secret, tampered, now},
		"other secret":  {other, req.body, now},
		"replayed late": {secret, req.body, now.Add(6 * time.Minute)},
	} {
		if err := verifyWebhook(tt.secret, req.header, tt.body, tt.now); err == nil {
			t.Errorf("%s: verifyWebhook accepted it", name)
		}
	}
}

// The shell function the docs show computes the signature keygate sent,
// and the check they show tells a tampered body apart.
func TestOpenSSLExampleOnARealDelivery(t *testing.T) {
	for _, tool := range []string{"sh", "openssl", "base64", "od"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	req, secret, _ := realDelivery(t)
	fn, check := docBlock(t, "<!-- webhook_signature:", 0), docBlock(t, "<!-- webhook_signature:", 1)
	dir := t.TempDir()
	run := func(body []byte) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "body.json"), body, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", fn+check)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "KEYGATE_WEBHOOK_SECRET="+secret, "ID="+req.header.Get("webhook-id"),
			"TS="+req.header.Get("webhook-timestamp"), "SIG="+req.header.Get("webhook-signature"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the documented check: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run(req.body); got != "valid" {
		t.Errorf("the documented check of a real delivery: got %q, want valid", got)
	}
	if got := run(append(req.body, ' ')); got != "INVALID" {
		t.Errorf("the documented check of a tampered body: got %q, want INVALID", got)
	}
}

// The documented curl command sends a request that keygate's own
// verification accepts.
func TestCurlExampleSignsForAReceiver(t *testing.T) {
	for _, tool := range []string{"sh", "openssl", "base64", "od", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	verified := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verified <- verifyWebhook(secret, r.Header, body, time.Now())
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cmd := exec.Command("sh", "-c", docBlock(t, "<!-- webhook_signature:", 0)+docBlock(t, "<!-- curl:", 0))
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "KEYGATE_WEBHOOK_SECRET="+secret, "RECEIVER_URL="+srv.URL)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the documented curl command: %v\n%s", err, out)
	}
	select {
	case err := <-verified:
		if err != nil {
			t.Errorf("the receiver refused the documented curl request: %v", err)
		}
	default:
		t.Error("the documented curl command sent no request")
	}
}
