package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func TestCreateKey(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("ada@example.com")
	a := e.account("ada@example.com")

	wantStatus(t, b.get("/portal/keys"), http.StatusOK, "keys page")
	for _, sc := range e.portal.Scopes {
		wantBody(t, b.last, `value="`+sc+`"`, "offered scope")
	}
	resp := b.post("/portal/keys", url.Values{"name": {"weather app"}, "env": {"test"}, "scopes": {"weather:read"}})
	wantStatus(t, resp, http.StatusCreated, "create")
	key := b.shownKey()
	if !strings.HasPrefix(key, "kg_test_") {
		t.Errorf("test key: got %q, want kg_test_…", key)
	}
	wantBody(t, b.last, "You will not see this key again", "new key page")
	v := e.engine.Verify(context.Background(), keygate.VerifyRequest{Key: key, Scopes: []string{"weather:read"}})
	if v.Outcome != keygate.OutcomeValid || v.Key.AccountID != a.ID {
		t.Fatalf("the new key: got %s for %+v", v.Outcome, v.Key)
	}
	evs, _ := e.store.AuditEvents(context.Background(), keygate.AuditFilter{Action: keygate.ActionKeyCreated, Actor: "account:" + a.ID})
	if len(evs) != 1 {
		t.Errorf("audit: got %d key.created events by the account, want 1", len(evs))
	}

	b.get("/portal/keys")
	for _, tt := range []struct {
		name  string
		form  url.Values
		field string
	}{
		{"no name", url.Values{"name": {""}, "env": {"live"}}, "Give the key a name"},
		{"bad env", url.Values{"name": {"x"}, "env": {"staging"}}, "Choose live or test"},
		{"scope not offered", url.Values{"name": {"x"}, "env": {"live"}, "scopes": {"admin:*"}}, "Choose scopes from the list"},
		{"name too long", url.Values{"name": {strings.Repeat("x", 201)}, "env": {"live"}}, "at most 200"},
	} {
		wantStatus(t, b.post("/portal/keys", tt.form), http.StatusBadRequest, tt.name)
		wantBody(t, b.last, tt.field, tt.name)
		b.get("/portal/keys")
	}
	keys, _ := e.store.Keys(context.Background(), keygate.KeyFilter{AccountID: a.ID})
	if len(keys) != 2 {
		t.Errorf("refused forms created keys: got %d, want 2", len(keys))
	}
}

func TestRotateAndRevoke(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	first := b.signup("ada@example.com")
	a := e.account("ada@example.com")
	keys, _ := e.store.Keys(context.Background(), keygate.KeyFilter{AccountID: a.ID})
	old := keys[0]

	b.get("/portal/keys")
	wantStatus(t, b.post("/portal/keys/"+old.ID+"/rotate", url.Values{"grace": {"5m"}}), http.StatusBadRequest, "grace not offered")
	wantBody(t, b.last, "Choose a grace period", "grace not offered")

	b.get("/portal/keys")
	wantStatus(t, b.post("/portal/keys/"+old.ID+"/rotate", url.Values{"grace": {"1h"}}), http.StatusCreated, "rotate")
	second := b.shownKey()
	wantBody(t, b.last, "keeps working until", "rotate")
	if e.verify(first) != keygate.OutcomeValid || e.verify(second) != keygate.OutcomeValid {
		t.Fatalf("during the grace period both keys must work")
	}
	wantStatus(t, b.get("/portal/keys"), http.StatusOK, "keys page")
	wantBody(t, b.last, "until "+e.clock.Peek().Add(time.Hour).Format("2006-01-02 15:04"), "old key's grace")
	// A rotated key cannot be rotated again.
	if strings.Contains(b.last, `action="/portal/keys/`+old.ID+`/rotate"`) {
		t.Errorf("the keys page offers to rotate a key already rotated")
	}
	e.clock.Add(time.Hour)
	if got := e.verify(first); got != keygate.OutcomeRevoked {
		t.Errorf("old key after the grace period: got %s, want REVOKED", got)
	}

	// Revoking asks first.
	nk, _ := e.store.Keys(context.Background(), keygate.KeyFilter{AccountID: a.ID, Status: keygate.StatusActive, Now: e.clock.Now()})
	id := nk[0].ID
	wantStatus(t, b.get("/portal/keys/"+id+"/revoke"), http.StatusOK, "confirmation page")
	wantBody(t, b.last, "cannot be undone", "confirmation page")
	wantStatus(t, b.post("/portal/keys/"+id+"/revoke", url.Values{"reason": {"lost laptop"}}), http.StatusBadRequest, "unconfirmed")
	wantBody(t, b.last, "Tick the box", "unconfirmed")
	if e.verify(second) != keygate.OutcomeValid {
		t.Fatalf("an unconfirmed revocation revoked the key")
	}
	resp := b.post("/portal/keys/"+id+"/revoke", url.Values{"reason": {"lost laptop"}, "confirm": {"yes"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/keys?notice=revoked" {
		t.Fatalf("revoke: got %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := e.verify(second); got != keygate.OutcomeRevoked {
		t.Errorf("revoked key: got %s, want REVOKED", got)
	}
	wantStatus(t, b.get("/portal/keys?notice=revoked"), http.StatusOK, "after revoke")
	wantBody(t, b.last, "The key was revoked", "after revoke")
	evs, _ := e.store.AuditEvents(context.Background(), keygate.AuditFilter{TargetID: id, Action: keygate.ActionKeyRevoked})
	if len(evs) != 1 || evs[0].Actor != "account:"+a.ID || !strings.Contains(string(evs[0].Details), "lost laptop") {
		t.Errorf("audit: got %+v, want the account's revocation with its reason", evs)
	}
	// A page never echoes text from its URL.
	b.get("/portal/keys?notice=<script>")
	if strings.Contains(b.last, "<script>") {
		t.Errorf("the notice parameter was echoed")
	}
}

func TestOtherAccountsKeysAreNotFound(t *testing.T) {
	e := newEnv(t)
	e.browser().signup("ada@example.com")
	keys, _ := e.store.Keys(context.Background(), keygate.KeyFilter{AccountID: e.account("ada@example.com").ID})
	adas := keys[0].ID

	mallory := e.browser()
	mallory.signup("mallory@example.com")
	mallory.get("/portal/keys")
	wantStatus(t, mallory.get("/portal/keys/"+adas+"/revoke"), http.StatusNotFound, "another account's key")
	mallory.get("/portal/keys")
	wantStatus(t, mallory.post("/portal/keys/"+adas+"/revoke", url.Values{"confirm": {"yes"}}), http.StatusNotFound, "revoke another's key")
	mallory.get("/portal/keys")
	wantStatus(t, mallory.post("/portal/keys/"+adas+"/rotate", url.Values{"grace": {"0s"}}), http.StatusNotFound, "rotate another's key")
	wantStatus(t, mallory.get("/portal/usage?key="+adas), http.StatusNotFound, "another's usage")
	k, _ := e.store.Key(context.Background(), adas)
	if k.Status(e.clock.Now()) != keygate.StatusActive {
		t.Errorf("another account changed Ada's key: %s", k.Status(e.clock.Now()))
	}
}

func TestSignedOutIsSentToSignIn(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, path := range []string{"/portal/keys", "/portal/usage", "/portal/password", "/portal"} {
		resp := b.get(path)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/login" {
			t.Errorf("GET %s: got %d to %q, want 303 to /portal/login", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp := b.get("/portal/admin/accounts"); resp.Header.Get("Location") != "/portal/admin/login" {
		t.Errorf("admin page: got %d to %q, want the operator sign-in", resp.StatusCode, resp.Header.Get("Location"))
	}
	wantStatus(t, b.post("/portal/keys", url.Values{"name": {"x"}}), http.StatusUnauthorized, "POST signed out")
}

func TestOversizedForm(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	resp := b.post("/portal/login", url.Values{"email": {strings.Repeat("a", maxFormBytes)}})
	wantStatus(t, resp, http.StatusRequestEntityTooLarge, "oversized form")
}
