package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func testCreateAccount(t *testing.T, f *fixture) {
	a := f.newAccount(keygate.TierPro)
	mustOK(t, f.s.CreateAccount(f.ctx, a, nil), "CreateAccount")

	got, err := f.s.Account(f.ctx, a.ID)
	mustOK(t, err, "Account")
	checkSame(t, "Account", got, a)

	// Emails are compared without regard to case.
	for _, email := range []string{a.Email, strings.ToUpper(a.Email)} {
		got, err := f.s.AccountByEmail(f.ctx, email)
		if err != nil {
			t.Errorf("AccountByEmail(%q): %v", email, err)
			continue
		}
		checkSame(t, "AccountByEmail("+email+")", got, a)
	}

	// An address given in mixed case is stored in lower case.
	b := f.newAccount(keygate.TierFree)
	b.Email = "Mixed." + b.Email
	mustOK(t, f.s.CreateAccount(f.ctx, b, nil), "CreateAccount")
	got, err = f.s.Account(f.ctx, b.ID)
	mustOK(t, err, "Account")
	if want := strings.ToLower(b.Email); got.Email != want {
		t.Errorf("Account: got email %q, want %q", got.Email, want)
	}
}

func testCreateAccountWithFirstKey(t *testing.T, f *fixture) {
	a := f.newAccount(keygate.TierFree)
	k := f.newKey(a.ID)
	k.Scopes = []string{"weather:read"}
	mustOK(t, f.s.CreateAccount(f.ctx, a, k), "CreateAccount with a first key")

	gotA, err := f.s.Account(f.ctx, a.ID)
	mustOK(t, err, "Account")
	checkSame(t, "Account", gotA, a)
	gotK, err := f.s.Key(f.ctx, k.ID)
	mustOK(t, err, "Key")
	checkSame(t, "first Key", gotK, k)
	keys, err := f.s.Keys(f.ctx, keygate.KeyFilter{AccountID: a.ID})
	mustOK(t, err, "Keys")
	wantIDs(t, "Keys of the new account", keyIDs(keys), []string{k.ID})
}

func testCreateAccountAtomic(t *testing.T, f *fixture) {
	taken := f.key(t, f.account(t, keygate.TierFree).ID)

	tests := []struct {
		name  string
		setup func(k *keygate.Key)
		code  string
	}{
		{"first key's hash is taken", func(k *keygate.Key) { k.Hash = taken.Hash }, keygate.ECONFLICT},
		{"first key's tier does not exist", func(k *keygate.Key) { k.Tier = f.name("missing") }, keygate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.newAccount(keygate.TierFree)
			k := f.newKey(a.ID)
			tt.setup(k)
			wantCode(t, f.s.CreateAccount(f.ctx, a, k), tt.code, "CreateAccount")
			_, err := f.s.Account(f.ctx, a.ID)
			wantCode(t, err, keygate.ENOTFOUND, "Account after a failed CreateAccount")
			_, err = f.s.AccountByEmail(f.ctx, a.Email)
			wantCode(t, err, keygate.ENOTFOUND, "AccountByEmail after a failed CreateAccount")
			_, err = f.s.Key(f.ctx, k.ID)
			wantCode(t, err, keygate.ENOTFOUND, "Key after a failed CreateAccount")

			// The email is still free.
			mustOK(t, f.s.CreateAccount(f.ctx, a, nil), "CreateAccount again without the key")
		})
	}
}

func testCreateAccountErrors(t *testing.T, f *fixture) {
	existing := f.account(t, keygate.TierFree)

	tests := []struct {
		name  string
		setup func(a *keygate.Account)
		code  string
	}{
		{"duplicate email", func(a *keygate.Account) { a.Email = existing.Email }, keygate.ECONFLICT},
		{"duplicate email in another case", func(a *keygate.Account) { a.Email = strings.ToUpper(existing.Email) }, keygate.ECONFLICT},
		{"duplicate id", func(a *keygate.Account) { a.ID = existing.ID }, keygate.ECONFLICT},
		{"unknown tier", func(a *keygate.Account) { a.Tier = f.name("missing") }, keygate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.newAccount(keygate.TierFree)
			tt.setup(a)
			wantCode(t, f.s.CreateAccount(f.ctx, a, nil), tt.code, "CreateAccount")
		})
	}
	got, err := f.s.Account(f.ctx, existing.ID)
	mustOK(t, err, "Account")
	checkSame(t, "Account after refused duplicates", got, existing)

	for _, tt := range []struct {
		name string
		get  func() error
	}{
		{"Account", func() error { _, err := f.s.Account(f.ctx, f.id(keygate.PrefixAccount)); return err }},
		{"AccountByEmail", func() error { _, err := f.s.AccountByEmail(f.ctx, f.email()); return err }},
	} {
		wantCode(t, tt.get(), keygate.ENOTFOUND, tt.name+" of a missing account")
	}
}

func testUpdateAccount(t *testing.T, f *fixture) {
	tier := f.tier(t)
	a := f.account(t, keygate.TierFree)
	other := f.account(t, keygate.TierFree)
	oldEmail := a.Email

	upd := *a
	upd.Name = "Renamed " + f.tag
	upd.Email = f.email()
	upd.Tier = tier.Name
	upd.PasswordHash = "$2a$10$abcdefghijklmnopqrstuv"
	upd.DisabledAt = ptr(f.now.Add(2 * time.Hour))
	upd.Operator = true
	upd.UpdatedAt = f.now.Add(time.Hour)
	mustOK(t, f.replaceAccount(&upd), "UpdateAccount")

	got, err := f.s.Account(f.ctx, a.ID)
	mustOK(t, err, "Account")
	checkSame(t, "Account after UpdateAccount", got, &upd)
	got, err = f.s.AccountByEmail(f.ctx, upd.Email)
	mustOK(t, err, "AccountByEmail(new email)")
	checkSame(t, "AccountByEmail after UpdateAccount", got, &upd)
	_, err = f.s.AccountByEmail(f.ctx, oldEmail)
	wantCode(t, err, keygate.ENOTFOUND, "AccountByEmail(old email)")

	tests := []struct {
		name  string
		setup func(a *keygate.Account)
		code  string
	}{
		{"missing", func(a *keygate.Account) { a.ID = f.id(keygate.PrefixAccount); a.Email = f.email() }, keygate.ENOTFOUND},
		{"email taken", func(a *keygate.Account) { a.Email = other.Email }, keygate.ECONFLICT},
		{"unknown tier", func(a *keygate.Account) { a.Tier = f.name("missing") }, keygate.EINVALID},
	}
	for _, tt := range tests {
		bad := upd
		tt.setup(&bad)
		wantCode(t, f.replaceAccount(&bad), tt.code, "UpdateAccount "+tt.name)
	}
	got, err = f.s.Account(f.ctx, a.ID)
	mustOK(t, err, "Account")
	checkSame(t, "Account after refused updates", got, &upd)

	// Enabling again clears the disabled time.
	upd.DisabledAt, upd.Operator = nil, false
	mustOK(t, f.replaceAccount(&upd), "UpdateAccount (enable)")
	got, err = f.s.Account(f.ctx, a.ID)
	mustOK(t, err, "Account")
	checkSame(t, "Account after enabling", got, &upd)
}

func testAccounts(t *testing.T, f *fixture) {
	tier, otherTier := f.tier(t), f.tier(t)
	var as []*keygate.Account
	for range 5 {
		as = append(as, f.account(t, tier.Name))
	}
	elsewhere := f.account(t, otherTier.Name)
	ids := accountIDs(as)

	tests := []struct {
		name   string
		filter keygate.AccountFilter
		want   []string
	}{
		{"tier", keygate.AccountFilter{Tier: tier.Name}, ids},
		{"other tier", keygate.AccountFilter{Tier: otherTier.Name}, []string{elsewhere.ID}},
		{"limit", keygate.AccountFilter{Tier: tier.Name, Limit: 2}, ids[:2]},
		{"after", keygate.AccountFilter{Tier: tier.Name, After: ids[1], Limit: 2}, ids[2:4]},
		{"after the last", keygate.AccountFilter{Tier: tier.Name, After: ids[4]}, nil},
		{"email", keygate.AccountFilter{Email: as[3].Email}, ids[3:4]},
		{"email in upper case", keygate.AccountFilter{Email: strings.ToUpper(as[3].Email)}, ids[3:4]},
		{"email and tier", keygate.AccountFilter{Email: as[3].Email, Tier: tier.Name}, ids[3:4]},
		{"email and another tier", keygate.AccountFilter{Email: as[3].Email, Tier: otherTier.Name}, nil},
		{"unknown email", keygate.AccountFilter{Email: f.email()}, nil},
	}
	for _, tt := range tests {
		got, err := f.s.Accounts(f.ctx, tt.filter)
		if err != nil {
			t.Errorf("Accounts(%s): %v", tt.name, err)
			continue
		}
		wantIDs(t, "Accounts("+tt.name+")", accountIDs(got), tt.want)
	}

	got, err := f.s.Accounts(f.ctx, keygate.AccountFilter{Email: as[2].Email})
	mustOK(t, err, "Accounts")
	if len(got) == 1 {
		checkSame(t, "Accounts(email)[0]", got[0], as[2])
	}

	// Paging with the cursor visits every account once, in creation order.
	var seen []string
	after := ""
	for page := 0; page < 10; page++ {
		got, err := f.s.Accounts(f.ctx, keygate.AccountFilter{Tier: tier.Name, After: after, Limit: 2})
		mustOK(t, err, "Accounts")
		if len(got) == 0 {
			break
		}
		seen = append(seen, accountIDs(got)...)
		after = got[len(got)-1].ID
	}
	wantIDs(t, "Accounts paged 2 at a time", seen, ids)
}

func testAccountsDefaultPageSize(t *testing.T, f *fixture) {
	tier := f.tier(t)
	var ids []string
	for range keygate.DefaultPageSize + 1 {
		ids = append(ids, f.account(t, tier.Name).ID)
	}
	got, err := f.s.Accounts(f.ctx, keygate.AccountFilter{Tier: tier.Name})
	mustOK(t, err, "Accounts")
	wantIDs(t, "Accounts with Limit 0", accountIDs(got), ids[:keygate.DefaultPageSize])
	got, err = f.s.Accounts(f.ctx, keygate.AccountFilter{Tier: tier.Name, After: ids[keygate.DefaultPageSize-1]})
	mustOK(t, err, "Accounts")
	wantIDs(t, "Accounts, second page", accountIDs(got), ids[keygate.DefaultPageSize:])
}
