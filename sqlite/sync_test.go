package sqlite

import (
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// TestImportRestoresFullSync checks that the write connection goes back to
// synchronous=FULL after an import, whether the import succeeded or not,
// so that no other write commits without fsync.
func TestImportRestoresFullSync(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := &keygate.Account{Name: "a", Email: "a@example.com", Tier: keygate.TierFree}
	if err := s.CreateAccount(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	key := func(accountID string) *keygate.Key {
		var b [32]byte
		rand.Read(b[:])
		return &keygate.Key{AccountID: accountID, Env: keygate.EnvLive, Hash: hex.EncodeToString(b[:]),
			HashAlg: keygate.HashSHA256, Enabled: true, CreatedAt: time.Now()}
	}
	for _, tt := range []struct {
		name string
		keys []*keygate.Key
		ok   bool
	}{
		{"import", []*keygate.Key{key(a.ID), key(a.ID)}, true},
		{"failed import", []*keygate.Key{key(a.ID), key("acc_missing")}, false},
	} {
		if _, err := s.ImportKeys(ctx, tt.keys); (err == nil) != tt.ok {
			t.Fatalf("%s: got error %v", tt.name, err)
		}
		var mode int
		if err := s.wdb.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != 2 {
			t.Errorf("after %s: got synchronous=%d, want 2 (FULL)", tt.name, mode)
		}
	}
}
