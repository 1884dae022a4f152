package main

import (
	"strings"
	"testing"
)

func TestTiersAndAccountsCLI(t *testing.T) {
	s, root, acct := setup(t)
	var tier struct {
		Name          string
		QuotaPerDay   int64   `json:"quota_per_day"`
		RatePerSecond float64 `json:"rate_per_second"`
		Burst         int64
		QuotaScope    string `json:"quota_scope"`
	}
	cliJSON(t, s, root, &tier, "tiers", "create", "--name", "gold", "--quota", "5000", "--rate", "10", "--burst", "20", "--quota-scope", "key")
	if tier.Name != "gold" || tier.QuotaPerDay != 5000 || tier.RatePerSecond != 10 || tier.Burst != 20 || tier.QuotaScope != "key" {
		t.Fatalf("tiers create: %+v", tier)
	}
	cliJSON(t, s, root, &tier, "tiers", "update", "gold", "--quota-scope", "account")
	if tier.QuotaScope != "account" || tier.QuotaPerDay != 5000 {
		t.Fatalf("tiers update --quota-scope: %+v", tier)
	}
	cliJSON(t, s, root, &tier, "tiers", "update", "gold", "--quota", "6000")
	if tier.QuotaPerDay != 6000 || tier.Burst != 20 {
		t.Fatalf("tiers update --quota: %+v", tier)
	}
	out, _, code := cli(t, s, root, "tiers", "show", "gold")
	if code != 0 || !strings.Contains(out, "QUOTA/DAY") || !strings.Contains(out, "6000") || !strings.Contains(out, "account") {
		t.Fatalf("tiers show: exit %d\n%s", code, out)
	}
	out, _, _ = cli(t, s, root, "tiers", "list")
	if !strings.Contains(out, "gold") || !strings.Contains(out, "free") {
		t.Fatalf("tiers list:\n%s", out)
	}

	// A tier in use cannot be deleted.
	var a struct{ ID, Name, Email, Tier string }
	cliJSON(t, s, root, &a, "accounts", "update", acct, "--tier", "gold", "--name", "Acme Inc")
	if a.Tier != "gold" || a.Name != "Acme Inc" || a.Email != "ops@acme.test" {
		t.Fatalf("accounts update: %+v", a)
	}
	wantFail(t, s, root, 1, `Tier "gold" is still used by 1 account`, "tiers", "delete", "gold")
	cliJSON(t, s, root, &a, "accounts", "update", acct, "--tier", "free")
	if out, stderr, code := cli(t, s, root, "tiers", "delete", "gold"); code != 0 || !strings.Contains(out, "Deleted tier gold") {
		t.Fatalf("tiers delete: exit %d: %s%s", code, out, stderr)
	}
	wantFail(t, s, root, 1, "gold", "tiers", "show", "gold")
	wantFail(t, s, root, 1, "free tier", "tiers", "delete", "free")

	wantFail(t, s, root, 2, "needs --rate, --burst", "tiers", "create", "--name", "x", "--quota", "1")
	wantFail(t, s, root, 2, "at least one of --quota", "tiers", "update", "pro")
	wantFail(t, s, root, 1, "quota_per_day", "tiers", "create", "--name", "silly", "--quota", "0", "--rate", "1", "--burst", "1")
	wantFail(t, s, root, 1, "already exists", "tiers", "create", "--name", "pro", "--quota", "1", "--rate", "1", "--burst", "1")
	wantFail(t, s, root, 2, "unknown subcommand", "tiers", "frob")
	wantFail(t, s, root, 2, "at least one of --name", "accounts", "update", acct)
	wantFail(t, s, root, 1, "not a valid address", "accounts", "update", acct, "--email", "nope")
}
