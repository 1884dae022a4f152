package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/internal/apicheck"
	"github.com/keygate/keygate/webhook"
)

// hookReceiver records the events it receives after checking each
// signature with the secret it is given.
type hookReceiver struct {
	t   *testing.T
	now func() time.Time

	mu     sync.Mutex
	secret string
	bodies []map[string]any
	ids    []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := webhook.Verify(h.secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"),
		r.Header.Get("webhook-signature"), body, h.now()); err != nil {
		h.t.Errorf("receiver: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		h.t.Errorf("receiver: %v", err)
	}
	if err := apicheck.WebhookPayload(m); err != nil {
		h.t.Errorf("receiver: the delivery does not match WebhookEvent.payload in api/openapi.json: %v\n%s", err, body)
	}
	h.bodies = append(h.bodies, m)
	h.ids = append(h.ids, r.Header.Get("webhook-id"))
}

func (h *hookReceiver) types() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, b := range h.bodies {
		out = append(out, b["type"].(string))
	}
	return out
}

func TestWebhooksEndToEnd(t *testing.T) {
	ts := newServer(t)
	ts.api.Manage.AllowPrivateWebhooks = true
	rc := &hookReceiver{t: t, now: ts.clock.Now}
	recv := httptest.NewServer(rc)
	t.Cleanup(recv.Close)
	d := &webhook.Dispatcher{Store: ts.store, AllowPrivate: true, Now: ts.clock.Now}
	deliver := func() {
		t.Helper()
		if _, err := d.DeliverDue(t.Context()); err != nil {
			t.Fatal(err)
		}
	}

	var created api.WebhookSecretView
	resp := ts.call(t, "POST", "/v1/webhooks", ts.root(), `{"url":"`+recv.URL+`/hook","events":["key.created","key.revoked","key.leaked","account.created"],"description":"ops"}`, &created)
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(created.Secret, "whsec_") || created.Webhook == nil || !created.Enabled {
		t.Fatalf("POST /v1/webhooks: got %d %+v", resp.StatusCode, created)
	}
	rc.secret = created.Secret
	id := created.ID

	// The secret is never shown again.
	var got map[string]any
	ts.call(t, "GET", "/v1/webhooks/"+id, ts.root(), "", &got)
	if _, ok := got["secret"]; ok || got["url"] != recv.URL+"/hook" {
		t.Errorf("GET /v1/webhooks/{id}: got %v, want the endpoint without its secret", got)
	}

	// Account, key, revocation as leaked: each reaches the receiver, signed.
	var acc keygate.Account
	ts.call(t, "POST", "/v1/accounts", ts.root(), `{"name":"Ada","email":"ada@example.com"}`, &acc)
	var key api.KeyView
	ts.call(t, "POST", "/v1/keys", ts.root(), `{"account_id":"`+acc.ID+`","name":"k"}`, &key)
	ts.call(t, "POST", "/v1/keys/"+key.ID+"/revoke", ts.root(), `{"reason":"leaked"}`, nil)
	deliver()
	want := []string{"account.created", "key.created", "key.revoked", "key.leaked"}
	if got := rc.types(); !sameElements(got, want) {
		t.Errorf("received %v, want %v", got, want)
	}
	rc.mu.Lock()
	for _, b := range rc.bodies {
		raw, _ := json.Marshal(b)
		if key.Plaintext == "" || strings.Contains(string(raw), key.Plaintext) {
			t.Errorf("payload %s holds the plaintext key", raw)
		}
		data := b["data"].(map[string]any)
		if b["type"] == "key.created" && (data["key_id"] != key.ID || data["account_id"] != acc.ID) {
			t.Errorf("key.created data: got %v, want key_id %s and account_id %s", data, key.ID, acc.ID)
		}
	}
	rc.mu.Unlock()

	// The delivery log shows them, succeeded; a redelivery sends one again
	// with the same webhook-id.
	var log api.List[*keygate.WebhookDelivery]
	ts.call(t, "GET", "/v1/webhooks/"+id+"/deliveries?limit=10", ts.root(), "", &log)
	if len(log.Data) != 4 {
		t.Fatalf("deliveries: got %d, want 4", len(log.Data))
	}
	for _, dl := range log.Data {
		if dl.Status != keygate.DeliverySucceeded || dl.Attempts != 1 || dl.LastStatus != 200 {
			t.Errorf("delivery %s: got %s after %d attempts (%d)", dl.ID, dl.Status, dl.Attempts, dl.LastStatus)
		}
	}
	var re keygate.WebhookDelivery
	if resp := ts.call(t, "POST", "/v1/webhooks/"+id+"/deliveries/"+log.Data[0].ID+"/redeliver", ts.root(), "", &re); resp.StatusCode != http.StatusAccepted || re.Status != keygate.DeliveryPending {
		t.Errorf("redeliver: got %d %s, want 202 pending", resp.StatusCode, re.Status)
	}
	deliver()
	rc.mu.Lock()
	if n := len(rc.ids); n != 5 || rc.ids[4] != log.Data[0].EventID {
		t.Errorf("after redelivery: got ids %v, want the 5th to be %s", rc.ids, log.Data[0].EventID)
	}
	rc.mu.Unlock()

	// A test event goes to this endpoint alone.
	var ev keygate.WebhookEvent
	if resp := ts.call(t, "POST", "/v1/webhooks/"+id+"/test", ts.root(), "", &ev); resp.StatusCode != http.StatusAccepted || ev.Type != keygate.EventWebhookTest {
		t.Errorf("test: got %d %+v", resp.StatusCode, ev)
	}
	deliver()
	if got := rc.types(); got[len(got)-1] != keygate.EventWebhookTest {
		t.Errorf("after test: got %v, want webhook.test last", got)
	}

	// Rotation: the next delivery is signed with the new secret.
	var rotated api.WebhookSecretView
	ts.call(t, "POST", "/v1/webhooks/"+id+"/rotate-secret", ts.root(), "", &rotated)
	if rotated.Secret == created.Secret || !strings.HasPrefix(rotated.Secret, "whsec_") {
		t.Fatalf("rotate-secret: got %q", rotated.Secret)
	}
	rc.mu.Lock()
	rc.secret = rotated.Secret
	rc.mu.Unlock()
	ts.call(t, "POST", "/v1/webhooks/"+id+"/test", ts.root(), "", nil)
	deliver()

	// Update: unsubscribed and disabled endpoints get nothing new.
	var upd keygate.Webhook
	ts.call(t, "PATCH", "/v1/webhooks/"+id, ts.root(), `{"events":["key.rotated"],"enabled":false}`, &upd)
	if upd.Enabled || !slices.Equal(upd.Events, []string{"key.rotated"}) {
		t.Errorf("PATCH: got %+v", upd)
	}
	before := len(rc.types())
	ts.call(t, "POST", "/v1/keys", ts.root(), `{"account_id":"`+acc.ID+`","name":"k2"}`, nil)
	deliver()
	if n := len(rc.types()); n != before {
		t.Errorf("after disabling: got %d deliveries, want %d", n, before)
	}

	var list api.List[*keygate.Webhook]
	ts.call(t, "GET", "/v1/webhooks", ts.root(), "", &list)
	if len(list.Data) != 1 || list.Data[0].ID != id {
		t.Errorf("GET /v1/webhooks: got %+v", list.Data)
	}
	if resp := ts.call(t, "DELETE", "/v1/webhooks/"+id, ts.root(), "", nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE: got %d, want 204", resp.StatusCode)
	}
	if resp := ts.call(t, "GET", "/v1/webhooks/"+id, ts.root(), "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET after DELETE: got %d, want 404", resp.StatusCode)
	}

	// The audit log has the endpoint's life.
	var audit api.List[*keygate.AuditEvent]
	ts.call(t, "GET", "/v1/audit?target_id="+id, ts.root(), "", &audit)
	var actions []string
	for _, a := range audit.Data {
		actions = append(actions, a.Action)
	}
	wantActions := []string{"webhook.deleted", "webhook.updated", "webhook.secret_rotated", "webhook.created"}
	if diff := cmp.Diff(wantActions, actions); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func sameElements(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestWebhookProblems(t *testing.T) {
	ts := newServer(t)
	for _, tt := range []struct {
		method, path, body string
		status             int
		detail             string
	}{
		{"POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/x","events":["key.created"]}`, 400, "--webhooks-allow-private"},
		{"POST", "/v1/webhooks", `{"url":"http://169.254.169.254/latest","events":["key.created"]}`, 400, "link-local"},
		{"POST", "/v1/webhooks", `{"url":"ftp://example.com/x","events":["key.created"]}`, 400, "http://"},
		{"POST", "/v1/webhooks", `{"url":"https://example.com/x","events":[]}`, 400, "at least one"},
		{"POST", "/v1/webhooks", `{"url":"https://example.com/x","events":["key.exploded"]}`, 400, "key.exploded"},
		{"POST", "/v1/webhooks", `{"url":"https://example.com/x","events":["key.created"],"secret":"x"}`, 400, "unknown field"},
		{"GET", "/v1/webhooks/wh_nope", ``, 404, "wh_nope"},
		{"PATCH", "/v1/webhooks/wh_nope", `{"enabled":false}`, 404, "wh_nope"},
		{"DELETE", "/v1/webhooks/wh_nope", ``, 404, "wh_nope"},
		{"POST", "/v1/webhooks/wh_nope/test", ``, 404, "wh_nope"},
		{"POST", "/v1/webhooks/wh_nope/rotate-secret", ``, 404, "wh_nope"},
		{"GET", "/v1/webhooks/wh_nope/deliveries", ``, 404, "wh_nope"},
		{"POST", "/v1/webhooks/wh_nope/deliveries/whd_nope/redeliver", ``, 404, "whd_nope"},
	} {
		var p problemBody
		resp := ts.call(t, tt.method, tt.path, ts.root(), tt.body, &p)
		if resp.StatusCode != tt.status || !strings.Contains(p.Detail, tt.detail) ||
			resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s %s: got %d %q (%s), want %d mentioning %q", tt.method, tt.path, tt.body,
				resp.StatusCode, p.Detail, resp.Header.Get("Content-Type"), tt.status, tt.detail)
		}
	}
	// A reader cannot write.
	var rk struct {
		Key string `json:"key"`
	}
	ts.call(t, "POST", "/v1/root-keys", ts.root(), `{"name":"ro","permissions":["admin:read"]}`, &rk)
	resp := ts.call(t, "POST", "/v1/webhooks", map[string]string{"Authorization": "Bearer " + rk.Key},
		`{"url":"https://example.com/x","events":["key.created"]}`, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /v1/webhooks with admin:read: got %d, want 403", resp.StatusCode)
	}
}
