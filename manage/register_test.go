package manage_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/sqlite"
)

func TestRedeemIsSingleUseUnderRaces(t *testing.T) {
	f := newService(t)
	ctx := t.Context()
	inv, code, err := f.svc.CreateInvite(ctx, "root_key:rk_x", "race", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Hash != f.svc.Hasher.Hex(code) || inv.Hash == code {
		t.Fatalf("stored hash %q for code %q", inv.Hash, code)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = f.svc.Redeem(ctx, code, fmt.Sprintf("dev%d@example.com", i)) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch keygate.ErrorCode(err) {
		case "":
			ok++
		case keygate.EFORBIDDEN:
		default:
			t.Errorf("a racing redemption failed with %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 8 racing redemptions of one code succeeded, want 1", ok)
	}
}

func TestRedeemRefusesEveryUnusableCodeAlike(t *testing.T) {
	f := newService(t)
	ctx := t.Context()
	_, expiring, _ := f.svc.CreateInvite(ctx, "system", "", time.Minute)
	revokedInv, revoked, _ := f.svc.CreateInvite(ctx, "system", "", time.Hour)
	if _, err := f.svc.RevokeInvite(ctx, "system", revokedInv.ID); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(2 * time.Minute)
	var msgs []string
	for _, code := range []string{expiring, revoked, "kginv_unknown", "not-a-code", ""} {
		err := f.svc.Redeem(ctx, code, "dev@example.com")
		if keygate.ErrorCode(err) != keygate.EFORBIDDEN {
			t.Fatalf("Redeem(%q): got %v, want EFORBIDDEN", code, err)
		}
		msgs = append(msgs, keygate.ErrorMessage(err))
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Fatalf("unusable codes are told apart: %q vs %q", msgs[0], m)
		}
	}
}

func TestRegisterAnonymouslyWithATakenEmail(t *testing.T) {
	f := newService(t)
	ctx := t.Context()
	real, _, err := f.svc.RegisterAnonymously(ctx, &keygate.Account{Name: "Bo", Email: "bo@example.com"}, "")
	if err != nil {
		t.Fatal(err)
	}
	f.events(t)
	a := &keygate.Account{Name: "Mallory", Email: "bo@example.com"}
	decoy, plain, err := f.svc.RegisterAnonymously(ctx, a, "")
	if err != nil || plain == "" || decoy.AccountID != a.ID || a.ID == real.AccountID {
		t.Fatalf("taken email: %+v, %q, %v", decoy, plain, err)
	}
	if _, err := f.store.Key(ctx, decoy.ID); keygate.ErrorCode(err) != keygate.ENOTFOUND {
		t.Fatalf("the decoy key was stored: %v", err)
	}
	evs := f.events(t)
	if len(evs) != 1 || evs[0].Action != keygate.ActionRegistrationRepeated || evs[0].TargetID != real.AccountID {
		t.Fatalf("audit: %+v", evs)
	}
	// A bad address is still a 400, not a decoy.
	_, _, err = f.svc.RegisterAnonymously(ctx, &keygate.Account{Name: "X", Email: "nope"}, "")
	if keygate.ErrorCode(err) != keygate.EINVALID {
		t.Fatalf("bad email: %v", err)
	}
}

// BenchmarkRegisterNewVsTakenEmail measures both answers of anonymous
// registration on SQLite with synchronous=FULL (docs/SECURITY.md): a new
// account (one committed transaction) and a taken email (a failed insert,
// a lookup, and one committed audit event). Their ns/op should be about
// the same.
func BenchmarkRegisterNewVsTakenEmail(b *testing.B) {
	store, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "keygate.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	svc := &manage.Service{Store: store, Hasher: apikey.NewHasher([]byte("a pepper of at least 32 bytes, for the bench"))}
	if _, _, err := svc.RegisterAnonymously(b.Context(), &keygate.Account{Name: "Bo", Email: "bo@example.com"}, ""); err != nil {
		b.Fatal(err)
	}
	n := 0 // across runs (-count), so that every "new" email is new
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n++
			if _, _, err := svc.RegisterAnonymously(b.Context(), &keygate.Account{Name: "Dev", Email: fmt.Sprintf("dev%d@example.com", n)}, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("taken", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := svc.RegisterAnonymously(b.Context(), &keygate.Account{Name: "Dev", Email: "bo@example.com"}, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// failingAccounts is a store whose CreateAccount fails as an unreachable
// store does.
type failingAccounts struct{ keygate.Store }

func (failingAccounts) CreateAccount(context.Context, *keygate.Account, *keygate.Key, ...*keygate.AuditEvent) error {
	return keygate.Unavailable(errors.New("connection refused"))
}

func TestInviteIsGivenBackWhenTheRegistrationFails(t *testing.T) {
	f := newService(t)
	ctx := t.Context()
	inv, code, err := f.svc.CreateInvite(ctx, "system", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	broken := &manage.Service{Store: failingAccounts{f.store}, Hasher: f.svc.Hasher, Now: f.svc.Now}
	_, _, err = broken.RegisterAnonymously(ctx, &keygate.Account{Name: "Ada", Email: "ada@example.com"}, code)
	if keygate.ErrorCode(err) != keygate.EUNAVAILABLE {
		t.Fatalf("registration on a failing store: %v, want EUNAVAILABLE", err)
	}
	got, err := f.store.Invite(ctx, inv.ID)
	if err != nil || got.Status(f.now) != keygate.InviteActive || got.UsedBy != "" {
		t.Fatalf("the invite after a failed registration: %+v, %v; want it active again", got, err)
	}
	if _, _, err := f.svc.RegisterAnonymously(ctx, &keygate.Account{Name: "Ada", Email: "ada@example.com"}, code); err != nil {
		t.Fatalf("registering again with the given-back code: %v", err)
	}
	var actions []string
	for _, ev := range f.events(t) {
		if ev.TargetID == inv.ID {
			actions = append(actions, ev.Action)
		}
	}
	slices.Sort(actions)
	want := []string{keygate.ActionInviteCreated, keygate.ActionInviteRedeemed, keygate.ActionInviteRedeemed, keygate.ActionInviteReleased}
	if !slices.Equal(actions, want) {
		t.Fatalf("the invite's audit: got %v, want %v", actions, want)
	}
}
