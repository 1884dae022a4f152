package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// The 0004 migration links keys rotated before it existed: each key of a
// rotation chain gets the first key's ID as its lineage.
func TestQuotaScopeMigrationLinksRotationChains(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	s := open(t, path)
	a := &keygate.Account{ID: keygate.NewID(keygate.PrefixAccount, time.Now()), Name: "A", Email: "a@example.com", Tier: keygate.TierFree}
	if err := s.CreateAccount(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	mk := func(replaces string) string {
		k := &keygate.Key{AccountID: a.ID, Env: keygate.EnvLive, Start: "kg_live_abcd", Last4: "wxyz", Hash: hash(),
			HashAlg: keygate.HashKeygate, Enabled: true, Replaces: replaces}
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		return k.ID
	}
	k1 := mk("")
	k2 := mk(k1)
	k3 := mk(k2)
	lone := mk("")

	body, err := os.ReadFile("migrations/0004_quota_scope.sql")
	if err != nil {
		t.Fatal(err)
	}
	backfill := string(body[strings.Index(string(body), "WITH RECURSIVE"):])
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`UPDATE keys SET lineage_id = ''`, backfill} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want := map[string]string{k1: "", k2: k1, k3: k1, lone: ""}
	for id, lineage := range want {
		var got string
		if err := db.QueryRowContext(ctx, `SELECT lineage_id FROM keys WHERE id = ?`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != lineage {
			t.Errorf("key %s: lineage_id %q, want %q", id, got, lineage)
		}
	}
}
