package main

import (
	"encoding/csv"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testclock"
)

// TestUsageCLI runs the server and the CLI in-process on a test clock:
// its hourly and daily buckets and the key's quota day must not split
// when the test runs across an hour or midnight.
func TestUsageCLI(t *testing.T) {
	clock := testclock.New(time.Date(2026, 11, 28, 12, 30, 0, 0, time.UTC))
	s := startInProcess(t, clock.Now, "--db", filepath.Join(t.TempDir(), "keygate.db"))
	root := rootKeyRE.FindString(s.stdout.String())
	var acct struct{ ID string }
	cliJSON(t, s, root, &acct, "accounts", "create", "--name", "U", "--email", "u@example.com")
	var key struct {
		ID  string
		Key string `json:"key"`
	}
	cliJSON(t, s, root, &key, "keys", "create", "--account", acct.ID, "--quota", "3")
	for range 5 {
		weather(t, s, key.Key) // 3 valid, then 2 over quota
	}

	if err := s.main.server.usage.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	out, _, _ := cli(t, s, root, "usage", "--key", key.ID, "--granularity", "hour")
	for _, want := range []string{"Usage of key " + key.ID + " by hour", "START", "VALID", "REFUSED", "███", "░", "quota_exceeded=2", "5 requests, 3 valid, 2 refused"} {
		if !strings.Contains(out, want) {
			t.Fatalf("keygate usage lacks %q:\n%s", want, out)
		}
	}

	var u struct {
		Granularity string
		Data        []struct {
			Start string
			Total int64
		}
	}
	cliJSON(t, s, root, &u, "usage", "--account", acct.ID, "--from", "7d")
	if u.Granularity != "day" || len(u.Data) != 1 || u.Data[0].Total != 5 || u.Data[0].Start != "2026-11-28T00:00:00Z" {
		t.Fatalf("usage --json: got %+v", u)
	}

	csvOut, stderr, code := cli(t, s, root, "usage", "--key", key.ID, "--csv")
	rows, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if code != 0 || err != nil || len(rows) != 2 || rows[0][0] != "start" || rows[1][1] != "5" {
		t.Fatalf("usage --csv: exit %d %q %v: %q", code, stderr, err, csvOut)
	}

	out, _, code = cli(t, s, root, "usage", "--by", "route", "--granularity", "hour")
	for _, want := range []string{"by hour and route", "ROUTE", "P50 MS", "P99 MS", "/demo/weather"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("keygate usage --by route: exit %d, lacks %q:\n%s", code, want, out)
		}
	}
	var byStatus struct {
		GroupBy string `json:"group_by"`
		Data    []struct {
			Groups []struct {
				Value string
				Total int64
			}
		}
	}
	cliJSON(t, s, root, &byStatus, "usage", "--by", "status", "--key", key.ID)
	statuses := map[string]int64{}
	for _, b := range byStatus.Data {
		for _, g := range b.Groups {
			statuses[g.Value] += g.Total
		}
	}
	if byStatus.GroupBy != "status" || statuses["200"] != 3 || statuses["429"] != 2 {
		t.Errorf("usage --by status --json: got %+v, want 3×200 and 2×429", byStatus)
	}
	out, _, code = cli(t, s, root, "usage", "--top", "key")
	for _, want := range []string{"Busiest keys, 2026-", "KEY", "ACCOUNT", key.ID, acct.ID} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("keygate usage --top key: exit %d, lacks %q:\n%s", code, want, out)
		}
	}

	for _, args := range [][]string{{"usage", "--granularity", "week"}, {"usage", "--by", "path"}, {"usage", "--top", "route"}, {"usage", "--top", "key", "--by", "route"}, {"usage", "--from", "yesterday-ish"}, {"usage", "--key", key.Key}} {
		if _, stderr, code := cli(t, s, root, args...); code != 2 || strings.Contains(stderr, key.Key) {
			t.Errorf("keygate %v: exit %d, %q; want exit 2 without echoing a key", args, code, stderr)
		}
	}
}
