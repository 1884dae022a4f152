package sqlite_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/sqlite"
)

// A table scanned in parts, as ForEachKey reads large ones, yields every
// key once and whole, lets fn call the store, and stops at fn's error.
func TestForEachKeyInParts(t *testing.T) {
	defer sqlite.ScanInParts(100, 3)()
	ctx := t.Context()
	s := open(t, tempPath(t))
	a := &keygate.Account{Name: "Parts", Email: "parts@example.com", Tier: keygate.TierFree}
	if err := s.CreateAccount(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	keys := make([]*keygate.Key, 1000)
	for i := range keys {
		keys[i] = newKey(a.ID, now)
	}
	if n, err := s.ImportKeys(ctx, keys); err != nil || n != len(keys) {
		t.Fatalf("ImportKeys: %d, %v", n, err)
	}
	want := map[string]*keygate.Key{}
	for _, k := range keys {
		stored, err := s.Key(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		want[k.ID] = stored
	}

	seen := map[string]int{}
	err := s.ForEachKey(ctx, func(k *keygate.Key) error {
		seen[k.ID]++
		if len(seen) <= 10 { // fn may use the store while the parts are read
			if _, err := s.Key(ctx, k.ID); err != nil {
				return err
			}
		}
		if diff := cmp.Diff(want[k.ID], k); diff != "" {
			t.Errorf("key %s (-stored +scanned):\n%s", k.ID, diff)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ForEachKey: %v", err)
	}
	if len(seen) != len(keys) {
		t.Errorf("ForEachKey saw %d keys, want %d", len(seen), len(keys))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("key %s seen %d times", id, n)
		}
	}

	stop := errors.New("stop")
	calls := 0
	err = s.ForEachKey(ctx, func(*keygate.Key) error {
		if calls++; calls == 300 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 300 {
		t.Errorf("ForEachKey stopped with %v after %d calls, want the fn's error after 300", err, calls)
	}
}
