package manage_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/sqlite"
)

// t0 is the tests' clock: it never moves unless a test moves it.
var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

type fixture struct {
	svc   *manage.Service
	store *sqlite.Store
	now   time.Time
	seen  map[string]bool // audit event IDs events has returned
}

// newService returns a Service on a fresh SQLite file, with a clock the
// test sets through f.now.
func newService(t *testing.T) *fixture {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{store: store, now: t0, seen: map[string]bool{}}
	store.Now = func() time.Time { return f.now }
	f.svc = &manage.Service{Store: store, Hasher: apikey.NewHasher(nil), Now: func() time.Time { return f.now }}
	return f
}

// audit is an audit event as the tests compare it: what happened, to
// what, by whom, with which details.
type audit struct {
	Actor, Action, TargetType, TargetID string
	Details                             map[string]any
}

// events returns the audit events recorded since the last call, sorted
// by action, target and actor: events written in the same millisecond of
// the test's frozen clock have no order of their own.
func (f *fixture) events(t *testing.T) []audit {
	t.Helper()
	evs, err := f.store.AuditEvents(t.Context(), keygate.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit
	for _, ev := range evs {
		if f.seen[ev.ID] {
			continue
		}
		f.seen[ev.ID] = true
		a := audit{Actor: ev.Actor, Action: ev.Action, TargetType: ev.TargetType, TargetID: ev.TargetID}
		if len(ev.Details) > 0 {
			if err := json.Unmarshal(ev.Details, &a.Details); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b audit) int {
		return strings.Compare(a.Action+" "+a.TargetID+" "+a.Actor, b.Action+" "+b.TargetID+" "+b.Actor)
	})
	return out
}

func (f *fixture) account(t *testing.T) *keygate.Account {
	t.Helper()
	a := &keygate.Account{Name: "Ada", Email: "ada@example.com"}
	if err := f.svc.CreateAccount(t.Context(), "root_key:rk_1", a); err != nil {
		t.Fatal(err)
	}
	return a
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := keygate.ErrorCode(err); got != code {
		t.Fatalf("got %v (code %q), want code %q", err, got, code)
	}
}

func TestCreateAccountAndKey(t *testing.T) {
	f := newService(t)
	a := f.account(t)
	if a.Tier != keygate.TierFree || !strings.HasPrefix(a.ID, keygate.PrefixAccount) || !a.CreatedAt.Equal(t0) {
		t.Errorf("account: %+v", a)
	}
	k := &keygate.Key{AccountID: a.ID, Name: " ci ", Scopes: []string{"b:read", "a:read", "a:read"}, IPAllow: []string{"10.0.0.1"}}
	plain, err := f.svc.CreateKey(t.Context(), "root_key:rk_1", k)
	if err != nil {
		t.Fatal(err)
	}
	p, err := apikey.Parse(plain)
	if err != nil || p.Env != keygate.EnvLive {
		t.Fatalf("plaintext %q: %v", plain, err)
	}
	stored, err := f.store.Key(t.Context(), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := &keygate.Key{
		ID: k.ID, AccountID: a.ID, Name: "ci", Env: keygate.EnvLive, Start: apikey.Start(plain), Last4: apikey.Last4(plain),
		Hash: f.svc.Hasher.Hex(plain), HashAlg: keygate.HashKeygate, Scopes: []string{"a:read", "b:read"},
		IPAllow: []string{"10.0.0.1/32"}, Enabled: true, CreatedAt: t0, UpdatedAt: t0,
	}
	if diff := cmp.Diff(want, stored, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("stored key (-want +got):\n%s", diff)
	}
	got := f.events(t)
	wantEvents := []audit{
		{"root_key:rk_1", keygate.ActionAccountCreated, keygate.TargetAccount, a.ID, map[string]any{"name": "Ada", "email": "ada@example.com", "tier": "free"}},
		{"root_key:rk_1", keygate.ActionKeyCreated, keygate.TargetKey, k.ID, map[string]any{
			"account_id": a.ID, "name": "ci", "env": "live", "start": k.Start, "tier": "", "scopes": []any{"a:read", "b:read"}}},
	}
	if diff := cmp.Diff(wantEvents, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	for _, ev := range got {
		if b, _ := json.Marshal(ev.Details); strings.Contains(string(b), plain) {
			t.Errorf("the audit event %s holds the plaintext key", ev.Action)
		}
	}

	// Refused before anything is written.
	for name, k := range map[string]*keygate.Key{
		"no account":      {Name: "x"},
		"bad scope":       {AccountID: a.ID, Scopes: []string{"no spaces"}},
		"bad cidr":        {AccountID: a.ID, IPAllow: []string{"10.0.0.0/99"}},
		"past expiry":     {AccountID: a.ID, ExpiresAt: new(t0.Add(-time.Second))},
		"meta not JSON":   {AccountID: a.ID, Meta: json.RawMessage(`[1]`)},
		"unknown env":     {AccountID: a.ID, Env: "prod"},
		"control in name": {AccountID: a.ID, Name: "a\nb"},
	} {
		if _, err := f.svc.CreateKey(t.Context(), "root_key:rk_1", k); keygate.ErrorCode(err) != keygate.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", name, err)
		}
	}
	_, err = f.svc.CreateKey(t.Context(), "root_key:rk_1", &keygate.Key{AccountID: "acc_missing"})
	wantCode(t, err, keygate.ENOTFOUND)
	if evs := f.events(t); len(evs) != 0 {
		t.Errorf("refused writes recorded audit events: %+v", evs)
	}
}

func TestRegister(t *testing.T) {
	f := newService(t)
	f.svc.DefaultScopes = []string{"weather:read"}
	k, plain, err := f.svc.Register(t.Context(), &keygate.Account{Name: "Bo", Email: "bo@example.com", Tier: "pro"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.store.Account(t.Context(), k.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Tier != keygate.TierFree {
		t.Errorf("self-registration chose tier %q; want the default, free", a.Tier)
	}
	if k.Hash != f.svc.Hasher.Hex(plain) || !slices.Equal(k.Scopes, []string{"weather:read"}) {
		t.Errorf("first key: %+v", k)
	}
	var actions []string
	for _, ev := range f.events(t) {
		if ev.Actor != manage.ActorRegistration {
			t.Errorf("%s by %q, want %q", ev.Action, ev.Actor, manage.ActorRegistration)
		}
		actions = append(actions, ev.Action)
	}
	if diff := cmp.Diff([]string{keygate.ActionAccountRegister, keygate.ActionKeyCreated}, actions); diff != "" {
		t.Errorf("audit actions (-want +got):\n%s", diff)
	}
}

func TestUpdateKey(t *testing.T) {
	f := newService(t)
	a := f.account(t)
	k := &keygate.Key{AccountID: a.ID, Name: "ci"}
	if _, err := f.svc.CreateKey(t.Context(), "root_key:rk_1", k); err != nil {
		t.Fatal(err)
	}
	f.events(t)
	f.now = t0.Add(time.Minute)

	got, err := f.svc.UpdateKey(t.Context(), "root_key:rk_2", k.ID, func(k *keygate.Key) {
		k.Name = "deploy"
		k.Scopes = []string{"x:read"}
		k.ID, k.Hash = "key_stolen", "0000" // ignored: not the caller's to change
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || got.Hash != k.Hash || got.Name != "deploy" || !got.UpdatedAt.Equal(f.now) {
		t.Errorf("updated key: %+v", got)
	}
	want := []audit{{"root_key:rk_2", keygate.ActionKeyUpdated, keygate.TargetKey, k.ID, map[string]any{
		"start": k.Start, "changed": []any{"name", "scopes"}, "new": map[string]any{"name": "deploy", "scopes": []any{"x:read"}}}}}
	if diff := cmp.Diff(want, f.events(t)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}

	// Disabling alone is its own action; a change to nothing records none.
	if _, err := f.svc.UpdateKey(t.Context(), "root_key:rk_2", k.ID, func(k *keygate.Key) { k.Enabled = false }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UpdateKey(t.Context(), "root_key:rk_2", k.ID, func(k *keygate.Key) { k.Enabled = false }); err != nil {
		t.Fatal(err)
	}
	if evs := f.events(t); len(evs) != 1 || evs[0].Action != keygate.ActionKeyDisabled {
		t.Errorf("audit after disabling twice: %+v; want one key.disabled", evs)
	}

	_, err = f.svc.UpdateKey(t.Context(), "root_key:rk_2", k.ID, func(k *keygate.Key) { k.IPAllow = []string{"nope"} })
	wantCode(t, err, keygate.EINVALID)

	// A revoked key is final.
	if _, err := f.svc.RevokeKey(t.Context(), "root_key:rk_2", k.ID, "leaked"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.UpdateKey(t.Context(), "root_key:rk_2", k.ID, func(k *keygate.Key) { k.Enabled = true })
	wantCode(t, err, keygate.ECONFLICT)
}

func TestRevokeKey(t *testing.T) {
	f := newService(t)
	a := f.account(t)
	k := &keygate.Key{AccountID: a.ID}
	if _, err := f.svc.CreateKey(t.Context(), "root_key:rk_1", k); err != nil {
		t.Fatal(err)
	}
	f.events(t)
	f.now = t0.Add(time.Hour)
	got, err := f.svc.RevokeKey(t.Context(), "root_key:rk_2", k.ID, "leaked")
	if err != nil {
		t.Fatal(err)
	}
	if got.RevokedAt == nil || !got.RevokedAt.Equal(f.now) || got.RevokedBy != "root_key:rk_2" || got.RevokedReason != "leaked" || got.Status(f.now) != keygate.StatusRevoked {
		t.Errorf("revoked key: %+v", got)
	}
	// Again: nothing changes, nothing is recorded.
	f.now = t0.Add(2 * time.Hour)
	again, err := f.svc.RevokeKey(t.Context(), "root_key:rk_3", k.ID, "twice")
	if err != nil || !again.RevokedAt.Equal(t0.Add(time.Hour)) || again.RevokedBy != "root_key:rk_2" {
		t.Errorf("second revocation: %+v, %v", again, err)
	}
	want := []audit{{"root_key:rk_2", keygate.ActionKeyRevoked, keygate.TargetKey, k.ID, map[string]any{"start": k.Start, "reason": "leaked"}}}
	if diff := cmp.Diff(want, f.events(t)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	_, err = f.svc.RevokeKey(t.Context(), "root_key:rk_2", k.ID, strings.Repeat("x", 501))
	wantCode(t, err, keygate.EINVALID)
	_, err = f.svc.RevokeKey(t.Context(), "root_key:rk_2", "key_missing", "")
	wantCode(t, err, keygate.ENOTFOUND)
}

func TestRotateKey(t *testing.T) {
	f := newService(t)
	a := f.account(t)
	old := &keygate.Key{AccountID: a.ID, Name: "ci", Scopes: []string{"a:read"}, Meta: json.RawMessage(`{"team":"x"}`)}
	if _, err := f.svc.CreateKey(t.Context(), "root_key:rk_1", old); err != nil {
		t.Fatal(err)
	}
	f.events(t)
	f.now = t0.Add(time.Minute)

	_, _, err := f.svc.RotateKey(t.Context(), "root_key:rk_1", old.ID, manage.MaxGrace+time.Second)
	wantCode(t, err, keygate.EINVALID)

	nk, plain, err := f.svc.RotateKey(t.Context(), "root_key:rk_1", old.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if nk.Hash != f.svc.Hasher.Hex(plain) || nk.Replaces != old.ID || nk.ID == old.ID || nk.Name != "ci" ||
		!slices.Equal(nk.Scopes, old.Scopes) || string(nk.Meta) != `{"team":"x"}` || nk.Lineage() != old.ID {
		t.Errorf("replacement: %+v", nk)
	}
	prev, err := f.store.Key(t.Context(), old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if prev.ReplacedBy != nk.ID || prev.RevokedAt == nil || !prev.RevokedAt.Equal(f.now.Add(time.Hour)) || prev.Status(f.now) != keygate.StatusActive {
		t.Errorf("old key after rotation with 1h grace: %+v", prev)
	}
	var got []string
	for _, ev := range f.events(t) {
		got = append(got, ev.Action+" "+ev.TargetID)
	}
	if diff := cmp.Diff([]string{"key.created " + nk.ID, "key.rotated " + old.ID}, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	_, _, err = f.svc.RotateKey(t.Context(), "root_key:rk_1", old.ID, 0)
	wantCode(t, err, keygate.ECONFLICT) // already rotated
}

func TestTiers(t *testing.T) {
	f := newService(t)
	gold := &keygate.Tier{Name: "gold", QuotaPerDay: 5000, RatePerSecond: 10, Burst: 20}
	if err := f.svc.CreateTier(t.Context(), "root_key:rk_1", gold); err != nil {
		t.Fatal(err)
	}
	err := f.svc.CreateTier(t.Context(), "root_key:rk_1", &keygate.Tier{Name: "Bad Name", QuotaPerDay: 1, RatePerSecond: 1, Burst: 1})
	wantCode(t, err, keygate.EINVALID)
	up, err := f.svc.UpdateTier(t.Context(), "root_key:rk_1", "gold", func(t *keygate.Tier) { t.QuotaPerDay = 6000; t.Name = "renamed" })
	if err != nil || up.Name != "gold" || up.QuotaPerDay != 6000 {
		t.Fatalf("update: %+v, %v", up, err)
	}
	if _, err := f.svc.UpdateTier(t.Context(), "root_key:rk_1", "gold", func(t *keygate.Tier) {}); err != nil {
		t.Fatal(err)
	}
	a := &keygate.Account{Name: "G", Email: "g@example.com", Tier: "gold"}
	if err := f.svc.CreateAccount(t.Context(), "root_key:rk_1", a); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.svc.DeleteTier(t.Context(), "root_key:rk_1", "gold"), keygate.ECONFLICT) // in use
	wantCode(t, f.svc.DeleteTier(t.Context(), "root_key:rk_1", keygate.TierFree), keygate.ECONFLICT)
	if _, err := f.svc.UpdateAccount(t.Context(), "root_key:rk_1", a.ID, func(a *keygate.Account) { a.Tier = keygate.TierFree }); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteTier(t.Context(), "root_key:rk_1", "gold"); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range f.events(t) {
		actions = append(actions, ev.Action+" "+ev.TargetID)
	}
	want := []string{"account.created " + a.ID, "account.updated " + a.ID, "tier.created gold", "tier.deleted gold", "tier.updated gold"}
	if diff := cmp.Diff(want, actions); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestRootKeys(t *testing.T) {
	f := newService(t)
	ctx := context.Background()
	if need, err := f.svc.NeedsBootstrap(ctx); err != nil || !need {
		t.Fatalf("empty store: NeedsBootstrap %v, %v", need, err)
	}
	boot, plain, err := f.svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, apikey.RootPrefix+"_") || boot.Hash != f.svc.Hasher.Hex(plain) || !boot.Can(keygate.PermAdminWrite) {
		t.Errorf("bootstrap key: %+v", boot)
	}
	if need, _ := f.svc.NeedsBootstrap(ctx); need {
		t.Error("NeedsBootstrap after Bootstrap")
	}
	_, err = f.svc.RevokeRootKey(ctx, "root_key:"+boot.ID, boot.ID)
	wantCode(t, err, keygate.ECONFLICT) // the last admin:write key
	_, _, err = f.svc.CreateRootKey(ctx, "root_key:"+boot.ID, "ci", []string{"admin:everything"})
	wantCode(t, err, keygate.EINVALID)
	reader, _, err := f.svc.CreateRootKey(ctx, "root_key:"+boot.ID, "ci", []string{keygate.PermAdminRead})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.RevokeRootKey(ctx, "root_key:"+boot.ID, boot.ID)
	wantCode(t, err, keygate.ECONFLICT) // a reader cannot administer
	second, _, err := f.svc.CreateRootKey(ctx, "root_key:"+boot.ID, "ops", []string{keygate.PermAdminWrite})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := f.svc.RevokeRootKey(ctx, "root_key:"+second.ID, boot.ID); err != nil || r.RevokedAt == nil {
		t.Fatalf("revoking the bootstrap key beside another writer: %+v, %v", r, err)
	}
	var got []string
	for _, ev := range f.events(t) {
		got = append(got, ev.Actor+" "+ev.Action+" "+ev.TargetID)
	}
	want := []string{
		"system root_key.created " + boot.ID,
		"root_key:" + boot.ID + " root_key.created " + reader.ID,
		"root_key:" + boot.ID + " root_key.created " + second.ID,
		"root_key:" + second.ID + " root_key.revoked " + boot.ID,
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestImportKeys(t *testing.T) {
	f := newService(t)
	a := f.account(t)
	f.events(t)
	h := func(c string) string { return strings.Repeat(c, 64) }
	rows := []*keygate.Key{
		{Hash: strings.ToUpper(h("a")), AccountID: a.ID, Name: "one"}, // upper case is stored lower
		{Hash: "doda_plaintext", AccountID: a.ID},                     // a key, not its hash
		{Hash: h("b"), AccountID: "acc_missing"},
		{Hash: h("c"), AccountID: a.ID, Tier: "gold"},
		{Hash: h("a"), AccountID: a.ID}, // repeats row 0
		{Hash: h("d"), AccountID: a.ID, Scopes: []string{"x:read"}, Start: "doda_ab"},
	}
	res, err := f.svc.ImportKeys(t.Context(), "root_key:rk_1", rows, false)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, e := range res.Invalid {
		wantCode(t, e.Err, keygate.EINVALID)
		bad = append(bad, keygate.ErrorMessage(e.Err))
		if strings.Contains(keygate.ErrorMessage(e.Err), "doda_plaintext") {
			t.Errorf("row %d: the error quotes the hash column", e.Index)
		}
	}
	wantBad := []string{
		"hash is not 64 hex characters (it has 14 characters); give hex(sha256(key)), never the key itself.",
		`account "acc_missing" does not exist; create it first.`,
		`tier "gold" does not exist.`,
		"hash repeats an earlier row of this batch.",
	}
	if diff := cmp.Diff(wantBad, bad); diff != "" {
		t.Errorf("invalid rows (-want +got):\n%s", diff)
	}
	if res.Inserted != 2 || res.Skipped != 0 {
		t.Errorf("result: %+v", res)
	}
	var imported []*keygate.Key
	f.store.ForEachKey(t.Context(), func(k *keygate.Key) error {
		if k.HashAlg == keygate.HashSHA256 {
			imported = append(imported, k)
		}
		return nil
	})
	slices.SortFunc(imported, func(x, y *keygate.Key) int { return strings.Compare(x.Hash, y.Hash) })
	if len(imported) != 2 || imported[0].Hash != h("a") || imported[0].Env != keygate.EnvLive || !imported[0].Enabled ||
		imported[1].Start != "doda_ab" || imported[0].ID >= imported[1].ID {
		t.Errorf("imported keys, in hash order with IDs in that order: %+v", imported)
	}
	evs := f.events(t)
	want := []audit{{"root_key:rk_1", keygate.ActionKeysImported, keygate.TargetKey, "", map[string]any{"rows": 6.0, "valid": 2.0}}}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}

	// Again: stored hashes are skipped. Atomic with a bad row: nothing.
	res, err = f.svc.ImportKeys(t.Context(), "root_key:rk_1", []*keygate.Key{{Hash: h("a"), AccountID: a.ID}, {Hash: h("e"), AccountID: a.ID}}, false)
	if err != nil || res.Inserted != 1 || res.Skipped != 1 {
		t.Errorf("re-import: %+v, %v", res, err)
	}
	res, err = f.svc.ImportKeys(t.Context(), "root_key:rk_1", []*keygate.Key{{Hash: h("f"), AccountID: a.ID}, {Hash: "x", AccountID: a.ID}}, true)
	if err != nil || res.Inserted != 0 || len(res.Invalid) != 1 {
		t.Errorf("atomic import with a bad row: %+v, %v", res, err)
	}
	_, err = f.svc.ImportKeys(t.Context(), "root_key:rk_1", nil, false)
	wantCode(t, err, keygate.EINVALID)
	_, err = f.svc.ImportKeys(t.Context(), "root_key:rk_1", make([]*keygate.Key, manage.MaxImportBatch+1), false)
	wantCode(t, err, keygate.EINVALID)
}
