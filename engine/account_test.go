package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/manage"
)

// TestDisabledAccount checks that disabling an account refuses all its
// keys at once, that enabling it again lets them through, and that both
// changes are audited.
func TestDisabledAccount(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	_, plaintext := f.key(t, nil)
	if got := f.verify(plaintext).Outcome; got != keygate.OutcomeValid {
		t.Fatalf("before disabling: got %s, want VALID", got)
	}
	f.clock.Add(time.Second) // audit events sort by time
	a, err := f.admin.SetAccountDisabled(ctx, manage.ActorSystem, f.account.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if a.DisabledAt == nil || !a.DisabledAt.Equal(f.clock.Now()) {
		t.Errorf("SetAccountDisabled: got disabled_at %v, want %v", a.DisabledAt, f.clock.Now())
	}
	if got := f.verify(plaintext).Outcome; got != keygate.OutcomeDisabled {
		t.Errorf("disabled account: got %s, want DISABLED", got)
	}
	f.clock.Add(time.Second)
	if _, err := f.admin.SetAccountDisabled(ctx, manage.ActorSystem, f.account.ID, false); err != nil {
		t.Fatal(err)
	}
	if got := f.verify(plaintext).Outcome; got != keygate.OutcomeValid {
		t.Errorf("enabled again: got %s, want VALID", got)
	}
	evs, err := f.store.AuditEvents(ctx, keygate.AuditFilter{TargetID: f.account.ID})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
	}
	want := []string{keygate.ActionAccountEnabled, keygate.ActionAccountDisabled, keygate.ActionAccountCreated}
	if len(actions) != len(want) {
		t.Fatalf("audit actions: got %v, want %v", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] {
			t.Errorf("audit actions: got %v, want %v", actions, want)
			break
		}
	}
}
