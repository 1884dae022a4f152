package postgres_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/testenv"
)

// The 0003_quota_scope migration links keys rotated before it existed:
// each key of a rotation chain gets the first key's ID as its lineage.
func TestQuotaScopeMigrationLinksRotationChains(t *testing.T) {
	ctx := t.Context()
	url := testenv.PostgresSchema(t)
	s := open(t, url)
	a := &keygate.Account{ID: keygate.NewID(keygate.PrefixAccount, time.Now()), Name: "A", Email: "a@example.com", Tier: keygate.TierFree}
	if err := s.CreateAccount(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	mk := func(replaces string) string {
		var b [32]byte
		rand.Read(b[:])
		k := &keygate.Key{AccountID: a.ID, Env: keygate.EnvLive, Start: "kg_live_abcd", Last4: "wxyz", Hash: hex.EncodeToString(b[:]),
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

	body, err := os.ReadFile("migrations/0003_quota_scope.sql")
	if err != nil {
		t.Fatal(err)
	}
	backfill := string(body[strings.Index(string(body), "WITH RECURSIVE"):])
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{`UPDATE keys SET lineage_id = ''`, backfill} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want := map[string]string{k1: "", k2: k1, k3: k1, lone: ""}
	for id, lineage := range want {
		var got string
		if err := conn.QueryRow(ctx, `SELECT lineage_id FROM keys WHERE id = $1`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != lineage {
			t.Errorf("key %s: lineage_id %q, want %q", id, got, lineage)
		}
	}
}
