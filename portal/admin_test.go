package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/manage"
)

// adminBrowser signs in with the env's root key.
func (e *env) adminBrowser() *browser {
	e.t.Helper()
	b := e.browser()
	resp := b.post("/portal/admin/login", url.Values{"root_key": {e.rootKey}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/admin" {
		e.t.Fatalf("root key sign-in: got %d to %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), b.last)
	}
	return b
}

func TestAdminSignIn(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	wantStatus(t, b.post("/portal/admin/login", url.Values{"root_key": {""}}), http.StatusBadRequest, "no key")
	wantStatus(t, b.post("/portal/admin/login", url.Values{"root_key": {"kgr_live_notakey"}}), http.StatusUnauthorized, "wrong key")
	wantBody(t, b.last, "not a live root key", "wrong key")
	// A read-only root key may look but not change.
	_, ro, err := e.manage.CreateRootKey(context.Background(), manage.ActorSystem, "read-only", []string{keygate.PermAdminRead})
	if err != nil {
		t.Fatal(err)
	}
	r := e.browser()
	wantStatus(t, r.post("/portal/admin/login", url.Values{"root_key": {ro}}), http.StatusSeeOther, "read-only sign-in")
	wantStatus(t, r.get("/portal/admin/tiers"), http.StatusOK, "read-only tiers page")
	wantStatus(t, r.post("/portal/admin/tiers/free", url.Values{"quota_per_day": {"5"}, "rate_per_second": {"1"}, "burst": {"1"}}), http.StatusForbidden, "read-only write")
	// A root key session has no developer pages.
	if resp := r.get("/portal/keys"); resp.Header.Get("Location") != "/portal/admin" {
		t.Errorf("root key on the keys page: got %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A developer is no operator.
	d := e.browser()
	d.signup("dev@example.com")
	wantStatus(t, d.get("/portal/admin/accounts"), http.StatusForbidden, "developer on the admin pages")

	// Revoking the root key ends its sessions.
	a := e.adminBrowser()
	wantStatus(t, a.get("/portal/admin"), http.StatusOK, "overview")
	rks, _ := e.store.RootKeys(context.Background())
	for _, rk := range rks {
		if rk.Name == "read-only" {
			if _, err := e.manage.RevokeRootKey(context.Background(), manage.ActorSystem, rk.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if resp := r.get("/portal/admin/tiers"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session of a revoked root key: got %d, want a redirect to sign in", resp.StatusCode)
	}
}

func TestAdminFindAndRevokeKey(t *testing.T) {
	e := newEnv(t)
	key := e.browser().signup("dev@example.com")
	keys, _ := e.store.Keys(context.Background(), keygate.KeyFilter{AccountID: e.account("dev@example.com").ID})
	k := keys[0]

	a := e.adminBrowser()
	for _, q := range []string{k.ID, k.Start, k.Start + "…" + k.Last4} {
		wantStatus(t, a.get("/portal/admin/keys?q="+url.QueryEscape(q)), http.StatusOK, "find "+q)
		wantBody(t, a.last, k.ID, "find "+q)
	}
	wantStatus(t, a.get("/portal/admin/keys?q=kg_live_zzzz"), http.StatusNotFound, "unknown start")
	wantBody(t, a.last, "No key has this ID or start", "unknown start")

	wantStatus(t, a.get("/portal/admin/keys/"+k.ID+"/revoke"), http.StatusOK, "confirmation")
	wantBody(t, a.last, "dev@example.com", "confirmation names the account")
	wantStatus(t, a.post("/portal/admin/keys/"+k.ID+"/revoke", url.Values{"confirm": {"yes"}, "reason": {"abuse"}}), http.StatusSeeOther, "revoke")
	if got := e.verify(key); got != keygate.OutcomeRevoked {
		t.Errorf("revoked by an operator: got %s, want REVOKED", got)
	}
	rks, _ := e.store.RootKeys(context.Background())
	evs, _ := e.store.AuditEvents(context.Background(), keygate.AuditFilter{TargetID: k.ID, Action: keygate.ActionKeyRevoked})
	if len(evs) != 1 || evs[0].Actor != manage.ActorRootKey(rks[0].ID) {
		t.Errorf("audit: got %+v, want a revocation by the root key", evs)
	}
	wantStatus(t, a.get("/portal/admin/keys/key_nope/revoke"), http.StatusNotFound, "unknown key")
}

func TestAdminAccounts(t *testing.T) {
	e := newEnv(t)
	dev := e.browser()
	key := dev.signup("dev@example.com")
	acc := e.account("dev@example.com")

	a := e.adminBrowser()
	for _, q := range []string{"dev@example.com", "DEV@example.com", acc.ID} {
		wantStatus(t, a.get("/portal/admin/accounts?q="+url.QueryEscape(q)), http.StatusOK, "find "+q)
		wantBody(t, a.last, acc.ID, "find "+q)
	}
	wantStatus(t, a.get("/portal/admin/accounts?q=nobody@example.com"), http.StatusNotFound, "unknown email")
	wantStatus(t, a.get("/portal/admin/accounts?tier=BAD!"), http.StatusBadRequest, "bad tier filter")

	a.get("/portal/admin/accounts")
	resp := a.post("/portal/admin/accounts/"+acc.ID+"/tier", url.Values{"tier": {"pro"}, "back": {"/portal/admin/accounts?q=" + acc.ID}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/portal/admin/accounts?") {
		t.Fatalf("change tier: got %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := e.account("dev@example.com").Tier; got != "pro" {
		t.Errorf("tier: got %q, want pro", got)
	}
	a.get("/portal/admin/accounts")
	wantStatus(t, a.post("/portal/admin/accounts/"+acc.ID+"/tier", url.Values{"tier": {"gold"}}), http.StatusBadRequest, "unknown tier")
	a.get("/portal/admin/accounts")
	// A back address off the admin pages is not followed.
	resp = a.post("/portal/admin/accounts/"+acc.ID+"/tier", url.Values{"tier": {"free"}, "back": {"https://evil.example/"}})
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/portal/admin/accounts") {
		t.Errorf("back address: got a redirect to %q", loc)
	}

	// Disabling refuses the account's keys and signs it out.
	wantStatus(t, a.post("/portal/admin/accounts/"+acc.ID+"/disable", nil), http.StatusSeeOther, "disable")
	if got := e.verify(key); got != keygate.OutcomeDisabled {
		t.Errorf("key of a disabled account: got %s, want DISABLED", got)
	}
	if resp := dev.get("/portal/keys"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session of a disabled account: got %d, want signed out", resp.StatusCode)
	}
	wantStatus(t, e.browser().post("/portal/login", url.Values{"email": {"dev@example.com"}, "password": {goodPassword}}), http.StatusForbidden, "sign-in of a disabled account")
	a.get("/portal/admin/accounts")
	wantStatus(t, a.post("/portal/admin/accounts/"+acc.ID+"/enable", nil), http.StatusSeeOther, "enable")
	if got := e.verify(key); got != keygate.OutcomeValid {
		t.Errorf("key of an enabled account: got %s, want VALID", got)
	}

	// An operator account sees the admin pages and acts under its own name.
	a.get("/portal/admin/accounts")
	wantStatus(t, a.post("/portal/admin/accounts/"+acc.ID+"/operator", url.Values{"operator": {"yes"}}), http.StatusSeeOther, "make operator")
	op := e.browser()
	wantStatus(t, op.post("/portal/login", url.Values{"email": {"dev@example.com"}, "password": {goodPassword}}), http.StatusSeeOther, "operator sign-in")
	wantStatus(t, op.get("/portal/admin/tiers"), http.StatusOK, "operator on the tiers page")
	wantStatus(t, op.post("/portal/admin/accounts/"+acc.ID+"/disable", nil), http.StatusConflict, "disable oneself")
	op.get("/portal/admin/tiers")
	wantStatus(t, op.post("/portal/admin/tiers/free", url.Values{"quota_per_day": {"2000"}, "rate_per_second": {"5"}, "burst": {"10"}, "quota_scope": {"account"}}), http.StatusSeeOther, "operator edits a tier")
	evs, _ := e.store.AuditEvents(context.Background(), keygate.AuditFilter{Action: keygate.ActionTierUpdated})
	if len(evs) != 1 || evs[0].Actor != "account:"+acc.ID {
		t.Errorf("audit: got %+v, want the operator account's tier change", evs)
	}
}

func TestAdminTiers(t *testing.T) {
	e := newEnv(t)
	a := e.adminBrowser()
	wantStatus(t, a.get("/portal/admin/tiers"), http.StatusOK, "tiers page")
	wantBody(t, a.last, "Save free", "tiers page")
	for _, tt := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"name": {"team"}, "quota_per_day": {"lots"}, "rate_per_second": {"5"}, "burst": {"10"}}, "whole number of requests per day"},
		{url.Values{"name": {"team"}, "quota_per_day": {"0"}, "rate_per_second": {"5"}, "burst": {"10"}}, "quota_per_day must be between"},
		{url.Values{"name": {"Team!"}, "quota_per_day": {"10"}, "rate_per_second": {"5"}, "burst": {"10"}}, "is invalid"},
		{url.Values{"name": {"free"}, "quota_per_day": {"10"}, "rate_per_second": {"5"}, "burst": {"10"}}, "free"},
	} {
		resp := a.post("/portal/admin/tiers", tt.form)
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("create %v: got %d, want a 4xx", tt.form, resp.StatusCode)
		}
		wantBody(t, a.last, tt.want, "create tier")
		if !strings.Contains(a.last, "field-error") {
			t.Errorf("create %v: no error next to a field", tt.form)
		}
		a.get("/portal/admin/tiers")
	}
	wantStatus(t, a.post("/portal/admin/tiers", url.Values{"name": {"team"}, "quota_per_day": {"50000"}, "rate_per_second": {"20"}, "burst": {"40"}, "quota_scope": {"key"}}), http.StatusSeeOther, "create")
	tier, err := e.store.Tier(context.Background(), "team")
	if err != nil || tier.QuotaPerDay != 50000 || tier.QuotaScope != keygate.QuotaScopeKey {
		t.Fatalf("created tier: got %+v, %v", tier, err)
	}
	a.get("/portal/admin/tiers")
	wantStatus(t, a.post("/portal/admin/tiers/team", url.Values{"quota_per_day": {"60000"}, "rate_per_second": {"-1"}, "burst": {"40"}}), http.StatusBadRequest, "bad update")
	wantBody(t, a.last, "rate_per_second must be greater than 0", "bad update")
	a.get("/portal/admin/tiers")
	wantStatus(t, a.post("/portal/admin/tiers/nope", url.Values{"quota_per_day": {"1"}, "rate_per_second": {"1"}, "burst": {"1"}}), http.StatusNotFound, "unknown tier")
}

func TestAdminAudit(t *testing.T) {
	e := newEnv(t)
	e.browser().signup("dev@example.com")
	acc := e.account("dev@example.com")
	a := e.adminBrowser()
	wantStatus(t, a.get("/portal/admin/audit"), http.StatusOK, "audit log")
	wantBody(t, a.last, "account.registered", "audit log")
	wantStatus(t, a.get("/portal/admin/audit?action=key.created&target_type=key"), http.StatusOK, "filtered")
	if strings.Contains(a.last, "account.registered") || !strings.Contains(a.last, "key.created") {
		t.Errorf("filter by action: the page shows other actions or not this one")
	}
	wantStatus(t, a.get("/portal/admin/audit?target_id="+acc.ID), http.StatusOK, "by target")
	wantBody(t, a.last, "account.registered", "by target")
	wantStatus(t, a.get("/portal/admin/audit?since=2026-12-02"), http.StatusOK, "since tomorrow")
	wantBody(t, a.last, "No audit events match", "since tomorrow")
	wantStatus(t, a.get("/portal/admin/audit?since=yesterday"), http.StatusBadRequest, "bad date")
	wantBody(t, a.last, "Enter a date", "bad date")
}

func TestAdminDeleteTier(t *testing.T) {
	e := newEnv(t)
	a := e.adminBrowser()
	a.get("/portal/admin/tiers")
	wantStatus(t, a.post("/portal/admin/tiers", url.Values{"name": {"team"}, "quota_per_day": {"10"}, "rate_per_second": {"1"}, "burst": {"1"}}), http.StatusSeeOther, "create")
	a.get("/portal/admin/tiers")
	wantStatus(t, a.post("/portal/admin/tiers/team/delete", nil), http.StatusBadRequest, "unconfirmed")
	wantBody(t, a.last, "Tick the box", "unconfirmed")
	// In use: refused with the store's reason.
	e.browser().signup("dev@example.com")
	acc := e.account("dev@example.com")
	a.get("/portal/admin/accounts")
	a.post("/portal/admin/accounts/"+acc.ID+"/tier", url.Values{"tier": {"team"}})
	a.get("/portal/admin/tiers")
	wantStatus(t, a.post("/portal/admin/tiers/team/delete", url.Values{"confirm": {"yes"}}), http.StatusConflict, "in use")
	a.get("/portal/admin/accounts")
	a.post("/portal/admin/accounts/"+acc.ID+"/tier", url.Values{"tier": {"free"}})
	a.get("/portal/admin/tiers")
	wantStatus(t, a.post("/portal/admin/tiers/team/delete", url.Values{"confirm": {"yes"}}), http.StatusSeeOther, "delete")
	if _, err := e.store.Tier(context.Background(), "team"); keygate.ErrorCode(err) != keygate.ENOTFOUND {
		t.Errorf("deleted tier: got %v, want ENOTFOUND", err)
	}
	a.get("/portal/admin/tiers")
	wantStatus(t, a.post("/portal/admin/tiers/free/delete", url.Values{"confirm": {"yes"}}), http.StatusConflict, "free")
}
