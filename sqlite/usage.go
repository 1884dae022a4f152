package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

var _ keygate.UsageStore = (*Store)(nil)

type routeKey struct {
	bucket         int64
	route, outcome string
}

type rollupKey struct {
	granularity string
	keyID       string
	bucket      int64
	outcome     string
}

// truncate returns the start of t's hour or UTC day.
func truncate(t time.Time, granularity string) time.Time {
	t = t.UTC()
	if granularity == keygate.GranularityDay {
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	return t.Truncate(time.Hour)
}

// RecordUsage stores events, adds them to the hourly and daily rollups and
// moves last_used_at forward, in one transaction. The rollups are summed in
// memory first, so a batch costs one upsert per key, bucket and outcome
// rather than one per event.
func (s *Store) RecordUsage(ctx context.Context, events []keygate.UsageEvent) error {
	if len(events) == 0 {
		return s.read()
	}
	if err := s.checkUsageReserve(); err != nil {
		return err
	}
	rollups := map[rollupKey]int64{}
	routes := map[routeKey]int64{}
	accounts := map[string]string{}
	lastUsed := map[string]int64{}
	raw := events
	for i, ev := range events {
		outcome := keygate.OutcomeKey(ev.Outcome)
		n := ev.N()
		for _, g := range []string{keygate.GranularityHour, keygate.GranularityDay} {
			rollups[rollupKey{g, ev.KeyID, millis(truncate(ev.Time, g)), outcome}] += n
		}
		routes[routeKey{millis(truncate(ev.Time, keygate.GranularityHour)), ev.Route, outcome}] += n
		accounts[ev.KeyID] = ev.AccountID
		if ev.Count > 0 {
			if len(raw) == len(events) {
				raw = slices.Clone(events[:i])
			}
			continue
		}
		if len(raw) != len(events) {
			raw = append(raw, ev)
		}
		if ev.KeyID != "" {
			lastUsed[ev.KeyID] = max(lastUsed[ev.KeyID], millis(ev.Time))
		}
	}
	return s.write(ctx, "record usage", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		if err := insertUsageEvents(ctx, tx, raw); err != nil {
			return nil, err
		}
		rt, err := tx.PrepareContext(ctx, `INSERT INTO usage_routes (bucket, route, outcome, count) VALUES (?, ?, ?, ?)
			ON CONFLICT (bucket, route, outcome) DO UPDATE SET count = count + excluded.count`)
		if err != nil {
			return nil, err
		}
		defer rt.Close()
		for k, n := range routes {
			if _, err := rt.ExecContext(ctx, k.bucket, k.route, k.outcome, n); err != nil {
				return nil, err
			}
		}
		up, err := tx.PrepareContext(ctx, `INSERT INTO usage_rollups (granularity, key_id, bucket, outcome, account_id, count)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (granularity, key_id, bucket, outcome) DO UPDATE SET count = count + excluded.count`)
		if err != nil {
			return nil, err
		}
		defer up.Close()
		for k, n := range rollups {
			if _, err := up.ExecContext(ctx, k.granularity, k.keyID, k.bucket, k.outcome, accounts[k.keyID], n); err != nil {
				return nil, err
			}
		}
		touch, err := tx.PrepareContext(ctx, `UPDATE keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?`)
		if err != nil {
			return nil, err
		}
		defer touch.Close()
		for id, ms := range lastUsed {
			if _, err := touch.ExecContext(ctx, ms, id); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
}

// usageRowsPerInsert is how many events one INSERT statement carries:
// statements, not rows, are what a batch of small rows mostly costs.
const usageRowsPerInsert = 100

func insertUsageEvents(ctx context.Context, tx *sql.Tx, events []keygate.UsageEvent) error {
	const cols = 9
	var full *sql.Stmt
	args := make([]any, 0, usageRowsPerInsert*cols)
	for len(events) > 0 {
		n := min(len(events), usageRowsPerInsert)
		args = args[:0]
		for _, ev := range events[:n] {
			ip := ""
			if ev.IP.IsValid() {
				ip = ev.IP.String()
			}
			args = append(args, millis(ev.Time), ev.KeyID, ev.AccountID, string(ev.Outcome),
				ev.Method, ev.Route, ev.Status, ev.Latency.Microseconds(), ip)
		}
		var err error
		if n == usageRowsPerInsert {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, usageInsertSQL(n)); err != nil {
					return err
				}
				defer full.Close()
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, usageInsertSQL(n), args...)
		}
		if err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

func usageInsertSQL(rows int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO usage_events (time, key_id, account_id, outcome, method, route, status, latency_us, ip) VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	return b.String()
}

// Usage sums the rollups for q per bucket and outcome, oldest bucket first.
func (s *Store) Usage(ctx context.Context, q keygate.UsageQuery) ([]keygate.UsageBucket, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	g := q.Granularity
	if g != keygate.GranularityHour && g != keygate.GranularityDay {
		return nil, keygate.Errorf(keygate.EINVALID, "granularity must be \"hour\" or \"day\".")
	}
	var w where
	w.add("granularity = ?", g)
	w.add("bucket >= ?", millis(truncate(q.From, g)))
	w.add("bucket < ?", millis(q.To))
	if q.KeyID != "" {
		w.add("key_id = ?", q.KeyID)
	}
	if q.AccountID != "" {
		w.add("account_id = ?", q.AccountID)
	}
	type count struct {
		bucket, n int64
		outcome   string
	}
	out := []keygate.UsageBucket{}
	err := queryEach(ctx, s, "query usage", `SELECT bucket, outcome, sum(count) FROM usage_rollups`+
		w.String()+` GROUP BY bucket, outcome ORDER BY bucket, outcome`, w.args,
		func(sc scanner) (c count, err error) {
			err = sc.Scan(&c.bucket, &c.outcome, &c.n)
			return c, err
		},
		func(c count) error {
			start := fromMillis(c.bucket)
			if len(out) == 0 || !out[len(out)-1].Start.Equal(start) {
				out = append(out, keygate.UsageBucket{Start: start, Counts: map[string]int64{}})
			}
			b := &out[len(out)-1]
			b.Counts[c.outcome] += c.n
			b.Total += c.n
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UsageEvents returns raw events for q, oldest first, at most limit.
func (s *Store) UsageEvents(ctx context.Context, q keygate.UsageQuery, limit int) ([]keygate.UsageEvent, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	var w where
	if !q.From.IsZero() {
		w.add("time >= ?", millis(q.From))
	}
	if !q.To.IsZero() {
		w.add("time < ?", millis(q.To))
	}
	if q.KeyID != "" {
		w.add("key_id = ?", q.KeyID)
	}
	if q.AccountID != "" {
		w.add("account_id = ?", q.AccountID)
	}
	return queryAll(ctx, s, "list usage events", `SELECT time, key_id, account_id, outcome, method, route, status, latency_us, ip
		FROM usage_events`+w.String()+` ORDER BY time, id LIMIT ?`, append(w.args, max(limit, 1)), scanUsageEvent)
}

func scanUsageEvent(sc scanner) (keygate.UsageEvent, error) {
	var ev keygate.UsageEvent
	var ms, latency int64
	var outcome, ip string
	if err := sc.Scan(&ms, &ev.KeyID, &ev.AccountID, &outcome, &ev.Method, &ev.Route, &ev.Status, &latency, &ip); err != nil {
		return ev, err
	}
	ev.Time, ev.Outcome, ev.Latency = fromMillis(ms), keygate.Outcome(outcome), time.Duration(latency)*time.Microsecond
	if ip != "" {
		ev.IP, _ = netip.ParseAddr(ip) // written from a netip.Addr; always parses
	}
	return ev, nil
}

// PruneUsage deletes raw events older than before; rollups stay.
func (s *Store) PruneUsage(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "prune usage", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM usage_events WHERE time < ?`, millis(before))
		if err != nil {
			return nil, err
		}
		n, err = res.RowsAffected()
		return nil, err
	})
	return n, err
}

// RouteUsage returns the hourly route counts with Start in [from, to).
func (s *Store) RouteUsage(ctx context.Context, from, to time.Time) ([]keygate.RouteCount, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, s, "query route usage", `SELECT bucket, route, outcome, count FROM usage_routes
		WHERE bucket >= ? AND bucket < ? ORDER BY bucket, route, outcome`, []any{millis(truncate(from, keygate.GranularityHour)), millis(to)},
		func(sc scanner) (c keygate.RouteCount, err error) {
			var ms int64
			err = sc.Scan(&ms, &c.Route, &c.Outcome, &c.Count)
			c.Start = fromMillis(ms)
			return c, err
		})
	return out, err
}

// DefaultUsageReserve is the free disk space below which RecordUsage
// refuses to write, when Store.UsageReserve is 0.
const DefaultUsageReserve = 64 << 20

// checkUsageReserve refuses a usage write while the file system holding
// the database has less free space than the reserve: usage is what grows,
// and the space left must go to the writes that cannot wait (a
// revocation). Usage waits in the buffer meanwhile, and is dropped and
// counted past its capacity.
func (s *Store) checkUsageReserve() error {
	reserve := s.UsageReserve
	if reserve == 0 {
		reserve = DefaultUsageReserve
	}
	if reserve < 0 {
		return nil
	}
	free, ok := freeSpace(filepath.Dir(s.path))
	if ok && free < uint64(reserve) {
		return keygate.Unavailable(fmt.Errorf("sqlite: record usage: %d bytes free on the disk of %s, under the %d reserved for other writes", free, s.path, reserve))
	}
	return nil
}
