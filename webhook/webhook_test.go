package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/sqlite"
	"github.com/keygate/keygate/webhook"
)

func openStore(t *testing.T, path string, c *testclock.Clock) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = c.Now
	t.Cleanup(func() { s.Close() })
	return s
}

// receiver is a local webhook endpoint that checks every request's
// signature and answers with the statuses given in turn (200 once they
// run out).
type receiver struct {
	t      *testing.T
	secret string
	now    func() time.Time

	mu       sync.Mutex
	statuses []int
	got      []received
}

type received struct {
	ID, Type string
	Status   int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(rc.secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"),
		r.Header.Get("webhook-signature"), body, rc.now()); err != nil {
		rc.t.Errorf("receiver: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p struct{ Type string }
	if err := json.Unmarshal(body, &p); err != nil {
		rc.t.Errorf("receiver: body %q: %v", body, err)
	}
	rc.mu.Lock()
	status := http.StatusOK
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	rc.got = append(rc.got, received{r.Header.Get("webhook-id"), p.Type, status})
	rc.mu.Unlock()
	w.WriteHeader(status)
}

func (rc *receiver) received() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

type env struct {
	t     *testing.T
	path  string
	clock *testclock.Clock
	store *sqlite.Store
	rc    *receiver
	srv   *httptest.Server
	hook  *keygate.Webhook
}

func newEnv(t *testing.T, statuses ...int) *env {
	c := testclock.Fixed(time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC))
	e := &env{t: t, path: filepath.Join(t.TempDir(), "keygate.db"), clock: c}
	e.store = openStore(t, e.path, c)
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	e.rc = &receiver{t: t, secret: secret, now: c.Now, statuses: statuses}
	e.srv = httptest.NewServer(e.rc)
	t.Cleanup(e.srv.Close)
	e.hook = &keygate.Webhook{ID: keygate.NewID(keygate.PrefixWebhook, c.Now()), URL: e.srv.URL + "/hook",
		Events: []string{keygate.EventQuotaThreshold}, Enabled: true, Secret: secret, CreatedAt: c.Now(), UpdatedAt: c.Now()}
	if err := e.store.CreateWebhook(t.Context(), e.hook); err != nil {
		t.Fatal(err)
	}
	return e
}

// dispatcher returns a dispatcher on the env's store and clock that may
// reach the local receiver, with no jitter.
func (e *env) dispatcher() *webhook.Dispatcher {
	return &webhook.Dispatcher{Store: e.store, AllowPrivate: true, Now: e.clock.Now,
		Jitter: func(d time.Duration) time.Duration { return d }}
}

func (e *env) enqueue(typ string) keygate.WebhookEvent {
	e.t.Helper()
	ev, err := keygate.NewWebhookEvent(typ, e.clock.Now(), map[string]any{"key_id": "key_x"})
	if err != nil {
		e.t.Fatal(err)
	}
	if n, err := e.store.EnqueueWebhookEvents(e.t.Context(), []keygate.WebhookEvent{ev}); err != nil || n != 1 {
		e.t.Fatalf("EnqueueWebhookEvents: stored %d, %v; want 1", n, err)
	}
	return ev
}

func (e *env) deliveries() []*keygate.WebhookDelivery {
	e.t.Helper()
	ds, err := e.store.WebhookDeliveries(e.t.Context(), keygate.DeliveryFilter{WebhookID: e.hook.ID})
	if err != nil {
		e.t.Fatal(err)
	}
	return ds
}

func deliverDue(t *testing.T, d *webhook.Dispatcher, want int) {
	t.Helper()
	n, err := d.DeliverDue(t.Context())
	if err != nil || n != want {
		t.Fatalf("DeliverDue: got %d, %v; want %d deliveries", n, err, want)
	}
}

// The Standard Webhooks specification's example: a receiver using any of
// its libraries accepts what Sign produces.
func TestSignStandardWebhooksVector(t *testing.T) {
	sig, err := webhook.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; sig != want {
		t.Errorf("Sign: got %s, want %s", sig, want)
	}
}

func TestVerify(t *testing.T) {
	secret, _ := webhook.NewSecret()
	if !strings.HasPrefix(secret, "whsec_") || len(secret) != len("whsec_")+44 {
		t.Fatalf("NewSecret: got %q, want whsec_ and 44 base64 characters", secret)
	}
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"type":"key.created"}`)
	sig, err := webhook.Sign(secret, "msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := webhook.NewSecret()
	otherSig, _ := webhook.Sign(other, "msg_1", now, body)
	ts := "1700000000"
	tests := []struct {
		name             string
		id, ts, sig      string
		body             string
		now              time.Time
		wantErr          bool
		secretOverride   string
		signatureOptions string
	}{
		{name: "valid", id: "msg_1", ts: ts, sig: sig, body: string(body), now: now},
		{name: "one of several signatures", id: "msg_1", ts: ts, sig: otherSig + " " + sig, body: string(body), now: now},
		{name: "tampered body", id: "msg_1", ts: ts, sig: sig, body: `{"type":"key.revoked"}`, now: now, wantErr: true},
		{name: "other id", id: "msg_2", ts: ts, sig: sig, body: string(body), now: now, wantErr: true},
		{name: "other secret", id: "msg_1", ts: ts, sig: otherSig, body: string(body), now: now, wantErr: true},
		{name: "too old", id: "msg_1", ts: ts, sig: sig, body: string(body), now: now.Add(6 * time.Minute), wantErr: true},
		{name: "from the future", id: "msg_1", ts: ts, sig: sig, body: string(body), now: now.Add(-6 * time.Minute), wantErr: true},
		{name: "timestamp not a number", id: "msg_1", ts: "soon", sig: sig, body: string(body), now: now, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify(secret, tt.id, tt.ts, tt.sig, []byte(tt.body), tt.now)
			if (err != nil) != tt.wantErr {
				t.Errorf("Verify: got %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestDeliverySigned(t *testing.T) {
	e := newEnv(t)
	ev := e.enqueue(keygate.EventQuotaThreshold)
	deliverDue(t, e.dispatcher(), 1)
	want := []received{{ev.ID, keygate.EventQuotaThreshold, 200}}
	if diff := cmp.Diff(want, e.rc.received()); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
	ds := e.deliveries()
	if len(ds) != 1 || ds[0].Status != keygate.DeliverySucceeded || ds[0].Attempts != 1 || ds[0].LastStatus != 200 {
		t.Errorf("deliveries: got %+v, want one succeeded after 1 attempt", ds)
	}
	// Nothing is due any more.
	deliverDue(t, e.dispatcher(), 0)
}

// A receiver that fails three times and then succeeds: four attempts at
// the backoff's times, and exactly one success recorded.
func TestRetryUntilSuccess(t *testing.T) {
	e := newEnv(t, 500, 503, 400)
	ev := e.enqueue(keygate.EventQuotaThreshold)
	d := e.dispatcher()
	start := e.clock.Now()
	at := start
	for n := 1; n <= 3; n++ {
		deliverDue(t, d, 1)
		next := at.Add(webhook.Backoff(n))
		// Not due a moment before the backoff has passed.
		e.clock.Set(next.Add(-time.Millisecond))
		deliverDue(t, d, 0)
		e.clock.Set(next)
		at = next
	}
	deliverDue(t, d, 1)
	e.clock.Set(at.Add(48 * time.Hour))
	deliverDue(t, d, 0)

	want := []received{
		{ev.ID, keygate.EventQuotaThreshold, 500},
		{ev.ID, keygate.EventQuotaThreshold, 503},
		{ev.ID, keygate.EventQuotaThreshold, 400},
		{ev.ID, keygate.EventQuotaThreshold, 200},
	}
	if diff := cmp.Diff(want, e.rc.received()); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
	ds := e.deliveries()
	if len(ds) != 1 {
		t.Fatalf("deliveries: got %d, want 1", len(ds))
	}
	got := ds[0]
	if got.Status != keygate.DeliverySucceeded || got.Attempts != 4 || got.LastStatus != 200 || got.LastError != "" ||
		got.DeliveredAt == nil || !got.DeliveredAt.Equal(at) {
		t.Errorf("delivery: got %s after %d attempts, last %d %q, delivered at %v; want succeeded after 4 at %s",
			got.Status, got.Attempts, got.LastStatus, got.LastError, got.DeliveredAt, at)
	}
	if ok, retried, gaveUp := d.Counts(); ok != 1 || retried != 3 || gaveUp != 0 {
		t.Errorf("Counts: got %d succeeded, %d retried, %d given up; want 1, 3, 0", ok, retried, gaveUp)
	}
	if want := 5*time.Second + 10*time.Second + 20*time.Second; at.Sub(start) != want {
		t.Errorf("success came %s after the first attempt, want %s", at.Sub(start), want)
	}
}

// A receiver that never succeeds: retried with growing waits until 24
// hours have passed, then failed.
func TestGiveUpAfter24Hours(t *testing.T) {
	statuses := make([]int, 100)
	for i := range statuses {
		statuses[i] = 502
	}
	e := newEnv(t, statuses...)
	e.enqueue(keygate.EventQuotaThreshold)
	d := e.dispatcher()
	start := e.clock.Now()
	attempts := 0
	for range 100 {
		n, err := d.DeliverDue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		attempts += n
		ds := e.deliveries()
		if ds[0].Status != keygate.DeliveryPending {
			break
		}
		e.clock.Set(*ds[0].NextAttemptAt)
	}
	ds := e.deliveries()
	if ds[0].Status != keygate.DeliveryFailed || ds[0].NextAttemptAt != nil {
		t.Fatalf("delivery: got %s, want failed", ds[0].Status)
	}
	last := *ds[0].LastAttemptAt
	if last.Sub(start) >= keygate.WebhookRetention || last.Add(webhook.MaxRetry).Sub(start) < keygate.WebhookRetention-webhook.MaxRetry {
		t.Errorf("last attempt %s after the first, want within the last hours of %s", last.Sub(start), keygate.WebhookRetention)
	}
	// 5s doubling to an hour takes 10 attempts and about 1.4 hours; the
	// rest of the 24 hours goes in hourly attempts.
	if attempts != ds[0].Attempts || attempts < 30 || attempts > 35 {
		t.Errorf("got %d attempts (%d recorded), want 30 to 35", attempts, ds[0].Attempts)
	}
	if ok, retried, gaveUp := d.Counts(); ok != 0 || retried != uint64(attempts-1) || gaveUp != 1 {
		t.Errorf("Counts: got %d succeeded, %d retried, %d given up; want 0, %d, 1", ok, retried, gaveUp, attempts-1)
	}
	if len(e.rc.received()) != attempts {
		t.Errorf("receiver got %d requests, want %d", len(e.rc.received()), attempts)
	}
}

// At least once across a restart: the first attempt fails, the server
// stops, and a new one on the same file delivers when the retry is due.
// A server that dies after claiming but before recording (so mid-attempt)
// leaves the delivery to be sent again when its lease runs out.
func TestDeliveryAcrossRestart(t *testing.T) {
	e := newEnv(t, 503)
	ev := e.enqueue(keygate.EventQuotaThreshold)
	deliverDue(t, e.dispatcher(), 1)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}

	e.clock.Set(e.clock.Now().Add(webhook.Backoff(1)))
	e.store = openStore(t, e.path, e.clock)
	// This instance claims the retry and dies before it records anything.
	claimed, err := e.store.ClaimDeliveries(t.Context(), e.clock.Now(), time.Minute, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("ClaimDeliveries: got %d, %v; want 1", len(claimed), err)
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}

	e.store = openStore(t, e.path, e.clock)
	d := e.dispatcher()
	deliverDue(t, d, 0) // still leased
	e.clock.Set(e.clock.Now().Add(time.Minute))
	deliverDue(t, d, 1)
	want := []received{{ev.ID, keygate.EventQuotaThreshold, 503}, {ev.ID, keygate.EventQuotaThreshold, 200}}
	if diff := cmp.Diff(want, e.rc.received()); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
	ds := e.deliveries()
	if len(ds) != 1 || ds[0].Status != keygate.DeliverySucceeded || ds[0].Attempts != 2 {
		t.Errorf("delivery: got %+v, want succeeded after 2 attempts", ds[0])
	}
}

// Run delivers what is enqueued while it runs, and stops with ctx.
func TestRun(t *testing.T) {
	e := newEnv(t)
	d := e.dispatcher()
	d.PollInterval = time.Hour // only Wake makes it look
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	ev := e.enqueue(keygate.EventQuotaThreshold)
	d.Wake()
	for range 500 {
		if len(e.rc.received()) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := e.rc.received(); len(got) != 1 || got[0].ID != ev.ID {
		t.Errorf("received %v, want %s once", got, ev.ID)
	}
}

// Without --webhooks-allow-private, the dialer refuses the loopback
// receiver, whatever name leads there, and the attempt is recorded as a
// failure to retry.
func TestSSRFRefused(t *testing.T) {
	e := newEnv(t)
	e.enqueue(keygate.EventQuotaThreshold)
	d := e.dispatcher()
	d.AllowPrivate = false
	deliverDue(t, d, 1)
	if got := e.rc.received(); len(got) != 0 {
		t.Errorf("receiver got %v, want nothing", got)
	}
	ds := e.deliveries()
	if ds[0].Status != keygate.DeliveryPending || ds[0].LastStatus != 0 || !strings.Contains(ds[0].LastError, "not public") {
		t.Errorf("delivery: got %s, last %d %q; want pending with the refusal as error", ds[0].Status, ds[0].LastStatus, ds[0].LastError)
	}

	// The client refuses by the address dialed, so a name that resolves
	// to loopback is refused too.
	port := e.srv.URL[strings.LastIndex(e.srv.URL, ":"):]
	for _, u := range []string{e.srv.URL, "http://localhost" + port, "http://[::1]" + port} {
		resp, err := webhook.NewClient(false).Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			t.Errorf("POST %s: got %d, want a refused dial", u, resp.StatusCode)
		} else if !errors.Is(err, webhook.ErrForbiddenAddress) {
			t.Errorf("POST %s: got %v, want ErrForbiddenAddress", u, err)
		}
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	resp, err := webhook.NewClient(true).Post(plain.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("allowed client: %v", err)
	}
	resp.Body.Close()
}

func TestPublic(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"93.184.216.34", true},
		{"2606:2800:220:1:248:1893:25c8:1946", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false},
		{"fe80::1", false},
		{"fd00::1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"100.64.0.1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"64:ff9b::a00:1", false},
	} {
		if got := webhook.Public(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Public(%s): got %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, tt := range []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://hooks.example.com/keygate", false, true},
		{"http://93.184.216.34:8080/x", false, true},
		{"http://127.0.0.1:9000/hook", false, false},
		{"http://127.0.0.1:9000/hook", true, true},
		{"http://[::1]/hook", false, false},
		{"http://localhost:9000/", false, false},
		{"http://api.localhost/", false, false},
		{"http://169.254.169.254/latest/meta-data", false, false},
		{"ftp://example.com/", true, false},
		{"example.com/hook", true, false},
		{"https://user:pw@example.com/", true, false},
		{"https://example.com/#frag", true, false},
		{"", true, false},
	} {
		err := webhook.CheckURL(tt.url, tt.allowPrivate)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q, %v): got %v, want ok %v", tt.url, tt.allowPrivate, err, tt.ok)
		}
		if err != nil && keygate.ErrorCode(err) != keygate.EINVALID {
			t.Errorf("CheckURL(%q): got code %s, want EINVALID", tt.url, keygate.ErrorCode(err))
		}
	}
}
