package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/manage"
)

func TestRegistrationClosedSaysSo(t *testing.T) {
	ts := newServer(t)
	ts.api.Registration = manage.RegistrationClosed
	var p problemBody
	resp := ts.call(t, "POST", "/v1/register", nil, `{"name":"x","email":"x@example.com"}`, &p)
	if resp.StatusCode != 403 || p.Code != keygate.EFORBIDDEN || !strings.Contains(p.Detail, "Registration is closed") {
		t.Fatalf("closed registration: got %d %+v", resp.StatusCode, p)
	}
	if as, _ := ts.store.Accounts(context.Background(), keygate.AccountFilter{Email: "x@example.com"}); len(as) != 0 {
		t.Fatalf("closed registration created an account: %+v", as)
	}
}

func TestRegistrationByInvitation(t *testing.T) {
	ts := newServer(t)
	ts.api.Registration = manage.RegistrationInvite
	register := func(body string) (*http.Response, problemBody, api.RegisterResponse) {
		t.Helper()
		var raw json.RawMessage
		resp := ts.call(t, "POST", "/v1/register", nil, body, &raw)
		var p problemBody
		var reg api.RegisterResponse
		_ = json.Unmarshal(raw, &p)
		_ = json.Unmarshal(raw, &reg)
		return resp, p, reg
	}
	if resp, p, _ := register(`{"name":"A","email":"a@example.com"}`); resp.StatusCode != 403 || !strings.Contains(p.Detail, "by invitation") {
		t.Fatalf("no code: got %d %+v", resp.StatusCode, p)
	}
	if resp, p, _ := register(`{"name":"A","email":"a@example.com","invite":"kginv_made_up"}`); resp.StatusCode != 403 || !strings.Contains(p.Detail, "not valid") {
		t.Fatalf("made-up code: got %d %+v", resp.StatusCode, p)
	}

	var inv api.InviteView
	if resp := ts.call(t, "POST", "/v1/invites", ts.root(), `{"note":"for Ada","expires_in":"48h"}`, &inv); resp.StatusCode != 201 {
		t.Fatalf("create invite: %d %+v", resp.StatusCode, inv)
	}
	if !strings.HasPrefix(inv.Code, keygate.InviteCodePrefix) || !strings.HasPrefix(inv.Code, inv.Start) || inv.Status != keygate.InviteActive || inv.Note != "for Ada" {
		t.Fatalf("created invite: %+v", inv)
	}
	if !inv.ExpiresAt.Equal(inv.CreatedAt.Add(48 * time.Hour)) {
		t.Errorf("expires_at %s, want 48h after created_at %s", inv.ExpiresAt, inv.CreatedAt)
	}
	// Only the hash is stored, and the code is never shown again.
	stored, err := ts.store.Invite(context.Background(), inv.ID)
	if err != nil || stored.Hash == inv.Code || strings.Contains(stored.Hash, inv.Code) {
		t.Fatalf("stored invite: %+v, %v", stored, err)
	}
	var again api.InviteView
	ts.call(t, "GET", "/v1/invites/"+inv.ID, ts.root(), "", &again)
	if again.Code != "" || again.ID != inv.ID {
		t.Fatalf("GET invite: %+v; want no code", again)
	}

	// A bad account is refused before the code is spent.
	if resp, _, _ := register(`{"name":"","email":"a@example.com","invite":"` + inv.Code + `"}`); resp.StatusCode != 400 {
		t.Fatalf("invalid account with a good code: got %d", resp.StatusCode)
	}
	resp, _, reg := register(`{"name":"Ada","email":"ada@example.com","invite":"` + inv.Code + `"}`)
	if resp.StatusCode != 201 || reg.Key.Plaintext == "" {
		t.Fatalf("register with the code: got %d %+v", resp.StatusCode, reg)
	}
	if code, outcome, _ := ts.weather(t, reg.Key.Plaintext); code != 200 {
		t.Fatalf("the invited account's key: got %d %s", code, outcome)
	}
	// Single use.
	if resp, p, _ := register(`{"name":"Eve","email":"eve@example.com","invite":"` + inv.Code + `"}`); resp.StatusCode != 403 || !strings.Contains(p.Detail, "not valid") {
		t.Fatalf("second use of a code: got %d %+v", resp.StatusCode, p)
	}
	ts.call(t, "GET", "/v1/invites/"+inv.ID, ts.root(), "", &again)
	if again.Status != keygate.InviteUsed || again.UsedBy != "ada@example.com" || again.UsedAt == nil {
		t.Fatalf("used invite: %+v", again)
	}
	var pb problemBody
	if resp := ts.call(t, "POST", "/v1/invites/"+inv.ID+"/revoke", ts.root(), "", &pb); resp.StatusCode != 409 {
		t.Fatalf("revoke a used invite: got %d %+v, want 409", resp.StatusCode, pb)
	}

	// Revoked and expired codes are refused alike.
	var revoked, expiring api.InviteView
	ts.call(t, "POST", "/v1/invites", ts.root(), `{}`, &revoked)
	ts.call(t, "POST", "/v1/invites", ts.root(), `{"expires_in":"1h"}`, &expiring)
	if !revoked.ExpiresAt.Equal(revoked.CreatedAt.Add(keygate.DefaultInviteTTL)) {
		t.Errorf("default lifetime: expires_at %s, created_at %s", revoked.ExpiresAt, revoked.CreatedAt)
	}
	if resp := ts.call(t, "POST", "/v1/invites/"+revoked.ID+"/revoke", ts.root(), "", &again); resp.StatusCode != 200 || again.Status != keygate.InviteRevoked {
		t.Fatalf("revoke: got %d %+v", resp.StatusCode, again)
	}
	ts.clock.Add(2 * time.Hour)
	for name, code := range map[string]string{"revoked": revoked.Code, "expired": expiring.Code} {
		if resp, p, _ := register(`{"name":"Bo","email":"bo@example.com","invite":"` + code + `"}`); resp.StatusCode != 403 || !strings.Contains(p.Detail, "not valid") {
			t.Errorf("%s code: got %d %+v", name, resp.StatusCode, p)
		}
	}

	var list api.List[api.InviteView]
	ts.call(t, "GET", "/v1/invites", ts.root(), "", &list)
	var statuses []string
	for _, v := range list.Data {
		statuses = append(statuses, v.Status)
		if v.Code != "" {
			t.Errorf("listed invite shows its code: %+v", v)
		}
	}
	if want := []string{keygate.InviteExpired, keygate.InviteRevoked, keygate.InviteUsed}; !slices.Equal(statuses, want) {
		t.Errorf("invite statuses newest first: got %v, want %v", statuses, want)
	}
	evs, err := ts.store.AuditEvents(context.Background(), keygate.AuditFilter{TargetType: keygate.TargetInvite, TargetID: inv.ID})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
		if strings.Contains(string(ev.Details), inv.Code) {
			t.Errorf("audit event %s holds the code", ev.Action)
		}
	}
	if want := []string{keygate.ActionInviteRedeemed, keygate.ActionInviteCreated}; !slices.Equal(actions, want) {
		t.Errorf("audit of the invite: got %v, want %v", actions, want)
	}

	for _, body := range []string{`{"expires_in":"soon"}`, `{"expires_in":"2161h"}`, `{"expires_in":"30s"}`, `{"note":"a\u001bb"}`, `{"code":"x"}`} {
		if resp := ts.call(t, "POST", "/v1/invites", ts.root(), body, &pb); resp.StatusCode != 400 {
			t.Errorf("POST /v1/invites %s: got %d, want 400", body, resp.StatusCode)
		}
	}
	if resp := ts.call(t, "POST", "/v1/invites/inv_nope/revoke", ts.root(), "", &pb); resp.StatusCode != 404 {
		t.Errorf("revoke an unknown invite: got %d, want 404", resp.StatusCode)
	}
	if resp := ts.call(t, "POST", "/v1/invites", nil, `{}`, &pb); resp.StatusCode != 401 {
		t.Errorf("create an invite without a root key: got %d, want 401", resp.StatusCode)
	}
}

func TestRegistrationThrottlePerIP(t *testing.T) {
	ts := newServer(t)
	ts.api.RegistrationLimit = engine.NewIPThrottle(3, time.Hour)
	// Bad attempts count too.
	ts.call(t, "POST", "/v1/register", nil, `{"name":`, nil)
	for i := range 2 {
		body := `{"name":"Dev","email":"dev` + strconv.Itoa(i) + `@example.com"}`
		if resp := ts.call(t, "POST", "/v1/register", nil, body, nil); resp.StatusCode != 201 {
			t.Fatalf("registration %d: got %d", i, resp.StatusCode)
		}
	}
	var p problemBody
	resp := ts.call(t, "POST", "/v1/register", nil, `{"name":"Dev","email":"dev9@example.com"}`, &p)
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 429 || p.Code != keygate.ETOOMANY || ra < 1 || ra > 3600 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("fourth registration from one IP in an hour: got %d %+v, Retry-After %q", resp.StatusCode, p, resp.Header.Get("Retry-After"))
	}
	ts.clock.Add(time.Hour)
	if resp := ts.call(t, "POST", "/v1/register", nil, `{"name":"Dev","email":"dev9@example.com"}`, nil); resp.StatusCode != 201 {
		t.Fatalf("an hour later: got %d, want 201", resp.StatusCode)
	}
}

// shape returns the sorted member names of a JSON object and of each
// object inside it, as "path.name" strings.
func shape(t *testing.T, prefix string, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	for k, e := range m {
		out = append(out, prefix+k)
		out = append(out, shape(t, prefix+k+".", e)...)
	}
	slices.Sort(out)
	return out
}

func TestRegistrationWithATakenEmailLooksNew(t *testing.T) {
	ts := newServer(t)
	ctx := context.Background()
	var first, second map[string]any
	resp1 := ts.call(t, "POST", "/v1/register", nil, `{"name":"Bo","email":"bo@example.com"}`, &first)
	resp2 := ts.call(t, "POST", "/v1/register", nil, `{"name":"Mallory","email":"BO@example.com"}`, &second)
	if resp1.StatusCode != 201 || resp2.StatusCode != resp1.StatusCode {
		t.Fatalf("statuses: new %d, taken %d; want both 201", resp1.StatusCode, resp2.StatusCode)
	}
	if a, b := shape(t, "", first), shape(t, "", second); !slices.Equal(a, b) {
		t.Fatalf("the answers differ in shape:\nnew   %v\ntaken %v", a, b)
	}
	for _, h := range []string{"Content-Type", "Cache-Control"} {
		if resp1.Header.Get(h) != resp2.Header.Get(h) {
			t.Errorf("header %s: new %q, taken %q", h, resp1.Header.Get(h), resp2.Header.Get(h))
		}
	}
	var reg1, reg2 api.RegisterResponse
	b1, _ := json.Marshal(first)
	b2, _ := json.Marshal(second)
	_ = json.Unmarshal(b1, &reg1)
	_ = json.Unmarshal(b2, &reg2)
	if reg2.Account.ID == reg1.Account.ID || reg2.Key.ID == reg1.Key.ID || reg2.Key.Plaintext == "" || !strings.HasPrefix(reg2.Key.Plaintext, "kg_live_") {
		t.Fatalf("the answer to a taken email: %+v", reg2)
	}

	// Nothing was created: the key does not work, the account does not
	// exist, and the real account still has its one key.
	if code, outcome, _ := ts.weather(t, reg2.Key.Plaintext); code != 401 || outcome != "NOT_FOUND" {
		t.Fatalf("the key answered to a taken email: got %d %s, want 401 NOT_FOUND", code, outcome)
	}
	if _, err := ts.store.Account(ctx, reg2.Account.ID); keygate.ErrorCode(err) != keygate.ENOTFOUND {
		t.Fatalf("the account answered to a taken email exists: %v", err)
	}
	if n, err := ts.store.CountKeys(ctx, reg1.Account.ID); err != nil || n != 1 {
		t.Fatalf("the existing account's keys: %d, %v; want its 1", n, err)
	}
	a, err := ts.store.Account(ctx, reg1.Account.ID)
	if err != nil || a.Name != "Bo" {
		t.Fatalf("the existing account changed: %+v, %v", a, err)
	}
	// The operator sees the attempt in the audit log.
	evs, err := ts.store.AuditEvents(ctx, keygate.AuditFilter{Action: keygate.ActionRegistrationRepeated})
	if err != nil || len(evs) != 1 || evs[0].TargetID != reg1.Account.ID {
		t.Fatalf("audit of the repeated registration: %+v, %v", evs, err)
	}
	if strings.Contains(string(evs[0].Details), reg2.Key.Plaintext) {
		t.Fatal("the audit event holds the plaintext key")
	}
}

func TestMaxKeysPerAccount(t *testing.T) {
	ts := newServer(t)
	ts.api.Manage.MaxKeysPerAccount = 2
	acct := ts.account(t, "")
	k := ts.newKey(t, `{"account_id":"`+acct+`"}`)
	ts.newKey(t, `{"account_id":"`+acct+`"}`)
	var p problemBody
	if resp := ts.call(t, "POST", "/v1/keys", ts.root(), `{"account_id":"`+acct+`"}`, &p); resp.StatusCode != 409 || !strings.Contains(p.Detail, "--max-keys-per-account") {
		t.Fatalf("third key with a limit of 2: got %d %+v", resp.StatusCode, p)
	}
	// Rotation is not refused, and a revoked key frees its place.
	var rot api.KeyView
	if resp := ts.call(t, "POST", "/v1/keys/"+k.ID+"/rotate", ts.root(), `{"grace":"1h"}`, &rot); resp.StatusCode != 201 {
		t.Fatalf("rotate at the limit: got %d", resp.StatusCode)
	}
	ts.call(t, "POST", "/v1/keys/"+rot.ID+"/revoke", ts.root(), "", nil)
	if resp := ts.call(t, "POST", "/v1/keys", ts.root(), `{"account_id":"`+acct+`"}`, nil); resp.StatusCode != 201 {
		t.Fatalf("a key after revoking one: got %d", resp.StatusCode)
	}
}

func TestFailedRootKeysAreThrottled(t *testing.T) {
	ts := newServer(t)
	bad, err := apikey.Generate(apikey.RootPrefix, keygate.EnvLive) // well-formed, unknown
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		if resp := ts.call(t, "GET", "/v1/accounts", map[string]string{"Authorization": "Bearer " + bad}, "", nil); resp.StatusCode != 401 {
			t.Fatalf("a wrong root key: got %d, want 401", resp.StatusCode)
		}
	}
	if n := ts.api.Engine.RootKeyFailures(); n != 30 {
		t.Errorf("RootKeyFailures: got %d, want 30", n)
	}
	// Now even the right root key is refused from this address: the
	// answer must not tell a guess that is right from one that is wrong.
	var p problemBody
	resp := ts.call(t, "GET", "/v1/accounts", ts.root(), "", &p)
	if resp.StatusCode != 429 || p.Code != string(keygate.OutcomeTooManyFailures) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 30 wrong root keys: got %d %+v, Retry-After %q", resp.StatusCode, p, resp.Header.Get("Retry-After"))
	}
	ts.clock.Add(time.Minute)
	if resp := ts.call(t, "GET", "/v1/accounts", ts.root(), "", nil); resp.StatusCode != 200 {
		t.Fatalf("a minute later: got %d, want 200", resp.StatusCode)
	}
}
