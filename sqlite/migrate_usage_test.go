package sqlite_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/sqlite"
)

// A database whose rollups predate routes, statuses and latencies keeps
// its counts through the 0006 migration: they show under route "" and
// status 0, without latencies, and new usage adds to them.
func TestUsageAnalyticsMigrationKeepsRollups(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Put the file back as it was before 0006, with a rollup in it.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`DROP TABLE usage_rollups`,
		`DROP TABLE usage_route_names`,
		`CREATE TABLE usage_rollups (granularity TEXT NOT NULL, key_id TEXT NOT NULL, bucket INTEGER NOT NULL,
			outcome TEXT NOT NULL, account_id TEXT NOT NULL, count INTEGER NOT NULL,
			PRIMARY KEY (granularity, key_id, bucket, outcome)) STRICT, WITHOUT ROWID`,
		`DELETE FROM schema_migrations WHERE version = '0006_usage_analytics'`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO usage_rollups VALUES ('hour', 'key_old', ?, 'valid', 'acc_old', 7), ('day', 'key_old', ?, 'valid', 'acc_old', 7)`,
		hour.UnixMilli(), keygate.UsageDay(hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	if err := s.RecordUsage(ctx, []keygate.UsageEvent{{Time: hour.Add(time.Minute), KeyID: "key_old", AccountID: "acc_old",
		Outcome: keygate.OutcomeValid, Route: "/weather", Status: 200, Latency: 2 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Usage(ctx, keygate.UsageQuery{KeyID: "key_old", From: hour, To: hour.Add(time.Hour), Granularity: keygate.GranularityHour, GroupBy: keygate.GroupByRoute})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Total != 8 || len(got[0].Groups) != 2 || got[0].Groups[0].Value != "" || got[0].Groups[0].Total != 7 ||
		got[0].Groups[0].Latency != nil || got[0].Groups[1].Value != "/weather" || got[0].Groups[1].Latency == nil {
		t.Fatalf("usage after the migration: got %+v, want the old 7 under route \"\" without latency and the new one under /weather", got)
	}
}
