package storetest

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func (f *fixture) newWebhook(events ...string) *keygate.Webhook {
	return &keygate.Webhook{
		ID: f.id(keygate.PrefixWebhook), URL: "https://hooks.example.com/" + f.tag, Events: events,
		Description: "hook " + f.tag, Enabled: true, Secret: "whsec_" + f.tag, CreatedAt: f.now, UpdatedAt: f.now,
	}
}

func testWebhooks(t *testing.T, f *fixture) {
	ws := f.s
	actor := f.actor()
	w := f.newWebhook(keygate.EventKeyCreated, keygate.EventKeyRevoked)
	mustOK(t, ws.CreateWebhook(f.ctx, w, f.event(actor, keygate.ActionWebhookCreated, keygate.TargetWebhook, w.ID)), "CreateWebhook")
	wantCode(t, ws.CreateWebhook(f.ctx, w), keygate.ECONFLICT, "CreateWebhook with a stored ID")

	got, err := ws.Webhook(f.ctx, w.ID)
	mustOK(t, err, "Webhook")
	checkSame(t, "Webhook", got, w)
	if got.Secret != w.Secret {
		t.Errorf("Webhook: got secret %q, want %q: the store keeps it to sign with", got.Secret, w.Secret)
	}

	second := f.newWebhook(keygate.EventAccountCreated)
	mustOK(t, ws.CreateWebhook(f.ctx, second), "CreateWebhook")
	all, err := ws.Webhooks(f.ctx)
	mustOK(t, err, "Webhooks")
	var ids []string
	for _, h := range all {
		ids = append(ids, h.ID)
	}
	wantIDs(t, "Webhooks", only(ids, []string{w.ID, second.ID}), []string{w.ID, second.ID})

	w.URL, w.Events, w.Description, w.Enabled, w.Secret = "http://other.example.com/x", []string{keygate.EventKeyLeaked}, "", false, "whsec_new"
	w.UpdatedAt = f.now.Add(time.Minute)
	mustOK(t, ws.UpdateWebhook(f.ctx, w, f.event(actor, keygate.ActionWebhookUpdated, keygate.TargetWebhook, w.ID)), "UpdateWebhook")
	got, err = ws.Webhook(f.ctx, w.ID)
	mustOK(t, err, "Webhook after update")
	checkSame(t, "Webhook after update", got, w)
	if got.Secret != "whsec_new" {
		t.Errorf("Webhook after update: got secret %q, want whsec_new", got.Secret)
	}

	mustOK(t, ws.DeleteWebhook(f.ctx, w.ID, f.event(actor, keygate.ActionWebhookDeleted, keygate.TargetWebhook, w.ID)), "DeleteWebhook")
	_, err = ws.Webhook(f.ctx, w.ID)
	wantCode(t, err, keygate.ENOTFOUND, "Webhook after delete")
	wantCode(t, ws.DeleteWebhook(f.ctx, w.ID), keygate.ENOTFOUND, "DeleteWebhook twice")
	missing := f.newWebhook(keygate.EventKeyCreated)
	wantCode(t, ws.UpdateWebhook(f.ctx, missing), keygate.ENOTFOUND, "UpdateWebhook of an unknown endpoint")

	evs, err := f.s.AuditEvents(f.ctx, keygate.AuditFilter{Actor: actor})
	mustOK(t, err, "AuditEvents")
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
	}
	want := []string{keygate.ActionWebhookDeleted, keygate.ActionWebhookUpdated, keygate.ActionWebhookCreated}
	if !slices.Equal(actions, want) {
		t.Errorf("audit actions: got %v, want %v", actions, want)
	}
}

// testWebhookOutbox drives the outbox through a delivery's life. Its
// events are dated in a random hour of the year 2000, and it claims only
// what is due by then, so that other tests' deliveries (dated now) are
// never claimed here even in a shared database.
func testWebhookOutbox(t *testing.T, f *fixture) {
	ws := f.s
	base := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rand.IntN(360*24)) * time.Hour)
	keys := f.newWebhook(keygate.EventKeyCreated, keygate.EventKeyRevoked, keygate.EventKeyLeaked)
	accounts := f.newWebhook(keygate.EventAccountCreated)
	off := f.newWebhook(keygate.EventKeyCreated)
	off.Enabled = false
	for _, w := range []*keygate.Webhook{keys, accounts, off} {
		mustOK(t, ws.CreateWebhook(f.ctx, w), "CreateWebhook")
	}
	mine := []string{keys.ID, accounts.ID, off.ID}

	// A write's audit events raise webhook events in its transaction.
	a := f.newAccount(keygate.TierFree)
	k := f.newKey(a.ID)
	audit := func(action, typ, id, details string) *keygate.AuditEvent {
		return &keygate.AuditEvent{ID: f.id(keygate.PrefixAudit), Time: base, Actor: "test:" + f.tag,
			Action: action, TargetType: typ, TargetID: id, Details: json.RawMessage(details)}
	}
	mustOK(t, f.s.CreateAccount(f.ctx, a, k,
		audit(keygate.ActionAccountCreated, keygate.TargetAccount, a.ID, `{"name":"n"}`),
		audit(keygate.ActionKeyCreated, keygate.TargetKey, k.ID, `{"start":"kg_live_ab12"}`)), "CreateAccount")
	_, err := f.s.UpdateKey(f.ctx, k.ID, func(k *keygate.Key) ([]*keygate.AuditEvent, error) {
		k.RevokedAt, k.RevokedReason, k.UpdatedAt = &base, "leaked: test", base
		return []*keygate.AuditEvent{
			audit(keygate.ActionKeyLeaked, keygate.TargetKey, k.ID, `{"source":"test"}`),
			audit(keygate.ActionKeyRevoked, keygate.TargetKey, k.ID, `{"reason":"leaked: test"}`),
		}, nil
	})
	mustOK(t, err, "UpdateKey")
	// A failed write raises nothing.
	dup := f.newKey(a.ID)
	dup.Hash = k.Hash
	if err := f.s.CreateKey(f.ctx, dup, audit(keygate.ActionKeyCreated, keygate.TargetKey, dup.ID, `{}`)); err == nil {
		t.Fatal("CreateKey with a stored hash: got no error")
	}

	claimed, err := ws.ClaimDeliveries(f.ctx, base, time.Minute, 100)
	mustOK(t, err, "ClaimDeliveries")
	var got []string
	byType := map[string]*keygate.WebhookDelivery{}
	for _, d := range claimed {
		if !slices.Contains(mine, d.WebhookID) {
			continue
		}
		got = append(got, d.WebhookID+" "+d.EventType)
		byType[d.EventType] = d
		var body struct {
			Type      string          `json:"type"`
			Timestamp time.Time       `json:"timestamp"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(d.Payload, &body); err != nil || body.Type != d.EventType || !body.Timestamp.Equal(base) {
			t.Errorf("delivery %s: got payload %s (%v), want type %s at %s", d.ID, d.Payload, err, d.EventType, base)
		}
		if strings.Contains(string(d.Payload), k.Hash) {
			t.Errorf("delivery %s: payload %s holds the key's hash", d.ID, d.Payload)
		}
		if d.URL != "https://hooks.example.com/"+f.tag || d.Secret != "whsec_"+f.tag {
			t.Errorf("delivery %s: got URL %q and secret %q, want the endpoint's", d.ID, d.URL, d.Secret)
		}
		if d.Status != keygate.DeliveryPending || d.Attempts != 0 || !d.GiveUpAt.Equal(base.Add(keygate.WebhookRetention)) {
			t.Errorf("delivery %s: got status %s, %d attempts, give up at %s; want pending, 0, %s",
				d.ID, d.Status, d.Attempts, d.GiveUpAt, base.Add(keygate.WebhookRetention))
		}
	}
	slices.Sort(got)
	want := []string{
		accounts.ID + " " + keygate.EventAccountCreated,
		keys.ID + " " + keygate.EventKeyCreated,
		keys.ID + " " + keygate.EventKeyLeaked,
		keys.ID + " " + keygate.EventKeyRevoked,
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("claimed deliveries: got %v, want %v", got, want)
	}

	// Leased: not claimed again until the lease runs out.
	again, err := ws.ClaimDeliveries(f.ctx, base.Add(30*time.Second), time.Minute, 100)
	mustOK(t, err, "ClaimDeliveries during the lease")
	for _, d := range again {
		if slices.Contains(mine, d.WebhookID) {
			t.Errorf("ClaimDeliveries during the lease: got %s again", d.ID)
		}
	}

	// A failed attempt with a next time stays pending; one without fails
	// the delivery; a success ends it.
	created, leaked, revoked := byType[keygate.EventKeyCreated], byType[keygate.EventKeyLeaked], byType[keygate.EventKeyRevoked]
	at := base.Add(time.Second)
	mustOK(t, ws.RecordDeliveryAttempt(f.ctx, created.ID, keygate.DeliveryAttempt{At: at, Status: 503, Error: "busy", NextAttemptAt: base.Add(5 * time.Minute)}), "RecordDeliveryAttempt")
	mustOK(t, ws.RecordDeliveryAttempt(f.ctx, leaked.ID, keygate.DeliveryAttempt{At: at, Error: "refused"}), "RecordDeliveryAttempt")
	mustOK(t, ws.RecordDeliveryAttempt(f.ctx, revoked.ID, keygate.DeliveryAttempt{At: at, Succeeded: true, Status: 204}), "RecordDeliveryAttempt")
	wantCode(t, ws.RecordDeliveryAttempt(f.ctx, revoked.ID, keygate.DeliveryAttempt{At: at, Succeeded: true}), keygate.ENOTFOUND, "RecordDeliveryAttempt on a finished delivery")

	check := func(id, status string, attempts, lastStatus int, lastError string, next, delivered *time.Time) {
		t.Helper()
		d, err := ws.WebhookDelivery(f.ctx, id)
		mustOK(t, err, "WebhookDelivery")
		if d.Status != status || d.Attempts != attempts || d.LastStatus != lastStatus || d.LastError != lastError {
			t.Errorf("delivery %s: got %s, %d attempts, last %d %q; want %s, %d, %d %q",
				id, d.Status, d.Attempts, d.LastStatus, d.LastError, status, attempts, lastStatus, lastError)
		}
		if !sameTime(d.NextAttemptAt, next) || !sameTime(d.DeliveredAt, delivered) || !sameTime(d.LastAttemptAt, &at) {
			t.Errorf("delivery %s: got next %v, delivered %v, last %v; want %v, %v, %v",
				id, d.NextAttemptAt, d.DeliveredAt, d.LastAttemptAt, next, delivered, at)
		}
	}
	check(created.ID, keygate.DeliveryPending, 1, 503, "busy", ptr(base.Add(5*time.Minute)), nil)
	check(leaked.ID, keygate.DeliveryFailed, 1, 0, "refused", nil, nil)
	check(revoked.ID, keygate.DeliverySucceeded, 1, 204, "", nil, &at)

	// The retry is claimed when due, with the attempt count so far.
	retry, err := ws.ClaimDeliveries(f.ctx, base.Add(5*time.Minute), time.Minute, 100)
	mustOK(t, err, "ClaimDeliveries at the retry")
	var retried []string
	for _, d := range retry {
		if slices.Contains(mine, d.WebhookID) {
			retried = append(retried, d.ID)
			if d.ID == created.ID && d.Attempts != 1 {
				t.Errorf("retried delivery: got %d attempts, want 1", d.Attempts)
			}
		}
	}
	// The account.created delivery's lease (a minute from base) ran out
	// too, so it comes back with the retry.
	if want := []string{created.ID, byType[keygate.EventAccountCreated].ID}; !sameSet(retried, want) {
		t.Errorf("claimed at the retry: got %v, want %v", retried, want)
	}

	// Redelivery makes a finished delivery pending again.
	re, err := ws.Redeliver(f.ctx, leaked.ID, base.Add(time.Hour))
	mustOK(t, err, "Redeliver")
	if re.Status != keygate.DeliveryPending || !sameTime(re.NextAttemptAt, ptr(base.Add(time.Hour))) ||
		!re.GiveUpAt.Equal(base.Add(time.Hour+keygate.WebhookRetention)) {
		t.Errorf("Redeliver: got %s due %v giving up at %s, want pending due %s", re.Status, re.NextAttemptAt, re.GiveUpAt, base.Add(time.Hour))
	}
	_, err = ws.Redeliver(f.ctx, f.id(keygate.PrefixDelivery), base)
	wantCode(t, err, keygate.ENOTFOUND, "Redeliver of an unknown delivery")

	// The log lists an endpoint's deliveries newest first, page by page.
	log, err := ws.WebhookDeliveries(f.ctx, keygate.DeliveryFilter{WebhookID: keys.ID, Limit: 2})
	mustOK(t, err, "WebhookDeliveries")
	if len(log) != 2 {
		t.Fatalf("WebhookDeliveries: got %d, want 2", len(log))
	}
	rest, err := ws.WebhookDeliveries(f.ctx, keygate.DeliveryFilter{WebhookID: keys.ID, Before: log[1].ID})
	mustOK(t, err, "WebhookDeliveries, second page")
	var pages []string
	for _, d := range append(log, rest...) {
		pages = append(pages, d.ID)
	}
	if !sameSet(pages, []string{created.ID, leaked.ID, revoked.ID}) {
		t.Errorf("WebhookDeliveries: got %v, want the 3 key deliveries", pages)
	}
	ok, err := ws.WebhookDeliveries(f.ctx, keygate.DeliveryFilter{WebhookID: keys.ID, Status: keygate.DeliverySucceeded})
	mustOK(t, err, "WebhookDeliveries by status")
	if len(ok) != 1 || ok[0].ID != revoked.ID {
		t.Errorf("WebhookDeliveries by status: got %d, want only %s", len(ok), revoked.ID)
	}
	_, err = ws.WebhookDeliveries(f.ctx, keygate.DeliveryFilter{WebhookID: keys.ID, Before: "whd_nope"})
	wantCode(t, err, keygate.EINVALID, "WebhookDeliveries with an unknown cursor")

	// Deleting an endpoint deletes its deliveries.
	mustOK(t, ws.DeleteWebhook(f.ctx, accounts.ID), "DeleteWebhook")
	_, err = ws.WebhookDelivery(f.ctx, byType[keygate.EventAccountCreated].ID)
	wantCode(t, err, keygate.ENOTFOUND, "WebhookDelivery of a deleted endpoint")
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// testWebhookEnqueue checks events that no write raises: stored once per
// ID, for subscribed or targeted enabled endpoints only.
func testWebhookEnqueue(t *testing.T, f *fixture) {
	ws := f.s
	at := time.Date(2003, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rand.IntN(360*24)) * time.Hour)
	sub := f.newWebhook(keygate.EventQuotaThreshold)
	other := f.newWebhook(keygate.EventKeyCreated)
	for _, w := range []*keygate.Webhook{sub, other} {
		mustOK(t, ws.CreateWebhook(f.ctx, w), "CreateWebhook")
	}
	q, err := keygate.NewWebhookEventOnce(keygate.EventQuotaThreshold, at, map[string]any{"percent": 80}, f.tag)
	mustOK(t, err, "NewWebhookEventOnce")
	test, err := keygate.NewWebhookEvent(keygate.EventWebhookTest, at, map[string]any{})
	mustOK(t, err, "NewWebhookEvent")
	test.EndpointID = other.ID
	n, err := ws.EnqueueWebhookEvents(f.ctx, []keygate.WebhookEvent{q, test})
	mustOK(t, err, "EnqueueWebhookEvents")
	if n != 2 {
		t.Errorf("EnqueueWebhookEvents: stored %d, want 2", n)
	}
	n, err = ws.EnqueueWebhookEvents(f.ctx, []keygate.WebhookEvent{q})
	mustOK(t, err, "EnqueueWebhookEvents again")
	if n != 0 {
		t.Errorf("EnqueueWebhookEvents of a stored ID: stored %d, want 0", n)
	}
	for _, tt := range []struct {
		w    *keygate.Webhook
		want []string
	}{{sub, []string{q.ID}}, {other, []string{test.ID}}} {
		ds, err := ws.WebhookDeliveries(f.ctx, keygate.DeliveryFilter{WebhookID: tt.w.ID})
		mustOK(t, err, "WebhookDeliveries")
		var got []string
		for _, d := range ds {
			got = append(got, d.EventID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("deliveries of %s: got events %v, want %v", tt.w.ID, got, tt.want)
		}
	}
}

// testWebhookClaimConcurrent claims from several goroutines at once: no
// delivery may be claimed twice.
func testWebhookClaimConcurrent(t *testing.T, f *fixture) {
	ws := f.s
	at := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rand.IntN(360*24)) * time.Hour)
	w := f.newWebhook(keygate.EventQuotaThreshold)
	mustOK(t, ws.CreateWebhook(f.ctx, w), "CreateWebhook")
	var evs []keygate.WebhookEvent
	for i := range 40 {
		ev, err := keygate.NewWebhookEventOnce(keygate.EventQuotaThreshold, at, map[string]any{"i": i}, f.tag, string(rune('a'+i)))
		mustOK(t, err, "NewWebhookEventOnce")
		evs = append(evs, ev)
	}
	_, err := ws.EnqueueWebhookEvents(f.ctx, evs)
	mustOK(t, err, "EnqueueWebhookEvents")
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				ds, err := ws.ClaimDeliveries(f.ctx, at, time.Hour, 3)
				if err != nil {
					t.Errorf("ClaimDeliveries: %v", err)
					return
				}
				mu.Lock()
				for _, d := range ds {
					if d.WebhookID == w.ID {
						seen[d.ID]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != len(evs) {
		t.Errorf("claimed %d distinct deliveries, want %d", len(seen), len(evs))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %s claimed %d times, want once", id, n)
		}
	}
}

func testExpiringKeys(t *testing.T, f *fixture) {
	ws := f.s
	a := f.account(t, keygate.TierFree)
	base := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rand.IntN(360*24)) * time.Hour)
	mk := func(exp time.Duration, revoked bool) *keygate.Key {
		k := f.newKey(a.ID)
		k.ExpiresAt = ptr(base.Add(exp))
		if revoked {
			k.RevokedAt = ptr(f.now)
		}
		mustOK(t, f.s.CreateKey(f.ctx, k), "CreateKey")
		return k
	}
	soon := mk(time.Hour, false)
	later := mk(3*24*time.Hour, false)
	mk(8*24*time.Hour, false) // beyond the window
	mk(2*time.Hour, true)     // revoked
	mk(-time.Hour, false)     // already expired
	got, err := ws.ExpiringKeys(f.ctx, base, base.Add(7*24*time.Hour))
	mustOK(t, err, "ExpiringKeys")
	wantIDs(t, "ExpiringKeys", only(keyIDs(got), keyIDs([]*keygate.Key{soon, later})), []string{soon.ID, later.ID})
	if len(got) != 2 {
		t.Errorf("ExpiringKeys: got %d keys, want 2", len(got))
	}
}
