package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

var _ keygate.UsageStore = (*Store)(nil)

// RecordUsage stores events, adds them to the hourly and daily rollups and
// the hourly route counts, and moves last_used_at forward, in one
// transaction. The rollups are summed in memory first, so a batch costs
// one upsert per key, bucket, outcome, route and status rather than one
// per event. Aggregated events (Count > 0) add their count to the
// rollups with no latency (none was kept), and store no raw event.
func (s *Store) RecordUsage(ctx context.Context, events []keygate.UsageEvent) error {
	if len(events) == 0 {
		return s.read()
	}
	if err := s.checkUsageReserve(); err != nil {
		return err
	}
	routes := map[int64]map[string]bool{} // per day, the routes of the batch
	lastUsed := map[string]int64{}
	raw := events
	for i, ev := range events {
		day := millis(keygate.UsageDay(ev.Time))
		if routes[day] == nil {
			routes[day] = map[string]bool{}
		}
		routes[day][ev.Route] = true
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
	err := s.write(ctx, "record usage", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		admitted, err := s.admitRoutes(ctx, tx, routes)
		if err != nil {
			return nil, err
		}
		rollups, routeCounts := sqlstore.SumUsage(events, admitted)
		if err := insertUsageEvents(ctx, tx, raw); err != nil {
			return nil, err
		}
		rt, err := tx.PrepareContext(ctx, `INSERT INTO usage_routes (bucket, route, outcome, count) VALUES (?, ?, ?, ?)
			ON CONFLICT (bucket, route, outcome) DO UPDATE SET count = count + excluded.count`)
		if err != nil {
			return nil, err
		}
		defer rt.Close()
		for k, n := range routeCounts {
			if _, err := rt.ExecContext(ctx, millis(k.Bucket), k.Route, k.Outcome, n); err != nil {
				return nil, err
			}
		}
		up, err := tx.PrepareContext(ctx, `INSERT INTO usage_rollups (granularity, key_id, bucket, outcome, route, status, account_id, count, latency)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (granularity, key_id, bucket, outcome, route, status)
			DO UPDATE SET count = count + excluded.count, latency = keygate_hist_add(latency, excluded.latency)`)
		if err != nil {
			return nil, err
		}
		defer up.Close()
		buf := []byte{} // never nil: the column is NOT NULL
		for k, r := range rollups {
			buf = r.Latency.AppendBinary(buf[:0])
			if _, err := up.ExecContext(ctx, k.Granularity, k.KeyID, millis(k.Bucket), k.Outcome, k.Route, k.Status, r.AccountID, r.Count, buf); err != nil {
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
	if err != nil {
		s.routesMu.Lock()
		s.routes = nil // it may hold routes the failed transaction admitted
		s.routesMu.Unlock()
	}
	return err
}

// admitRoutes returns, for each day of want, the routes that day has
// admitted, admitting new ones of want while there is room
// (keygate.AdmitRoutes). RecordUsage runs it on the one write
// connection, so nothing else admits routes meanwhile.
func (s *Store) admitRoutes(ctx context.Context, tx *sql.Tx, want map[int64]map[string]bool) (map[int64]map[string]bool, error) {
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	if s.routes == nil {
		s.routes = map[int64]map[string]bool{}
	}
	for day, routes := range want {
		known := s.routes[day]
		if known == nil {
			known = map[string]bool{}
			rows, err := tx.QueryContext(ctx, `SELECT route FROM usage_route_names WHERE day = ?`, day)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var r string
				if err := rows.Scan(&r); err != nil {
					rows.Close()
					return nil, err
				}
				known[r] = true
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return nil, err
			}
			s.routes[day] = known
		}
		for _, r := range keygate.AdmitRoutes(known, routes) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO usage_route_names (day, route) VALUES (?, ?) ON CONFLICT DO NOTHING`, day, r); err != nil {
				return nil, err
			}
			known[r] = true
		}
	}
	sqlstore.TrimRouteDays(s.routes)
	return s.routes, nil
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

// Usage sums the rollups for q per bucket, group and outcome, and hands
// the rows to keygate.UsageBuckets.
func (s *Store) Usage(ctx context.Context, q keygate.UsageQuery) ([]keygate.UsageBucket, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	col, groupBy, w, err := sqlstore.UsageGroups(dialect, q)
	if err != nil {
		return nil, err
	}
	rows, err := s.usageRows(ctx, "query usage", `SELECT bucket, `+col+`, max(account_id), outcome, sum(count), keygate_hist_sum(latency)
		FROM usage_rollups`+w.String()+` GROUP BY `+groupBy, w.Args())
	if err != nil {
		return nil, err
	}
	return keygate.UsageBuckets(rows, q.GroupBy), nil
}

// UsageTop ranks the keys or accounts of q's period by their requests in
// SQL, and sums the outcomes and latencies of the first q.Limit.
func (s *Store) UsageTop(ctx context.Context, q keygate.UsageTopQuery) ([]keygate.UsageGroup, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	col, w, err := sqlstore.UsageTopGroups(dialect, q)
	if err != nil {
		return nil, err
	}
	args := append(append(slices.Clone(w.Args()), max(q.Limit, 1)), w.Args()...)
	rows, err := s.usageRows(ctx, "query top usage", `WITH top AS (
			SELECT `+col+` AS v FROM usage_rollups`+w.String()+` GROUP BY `+col+` ORDER BY sum(count) DESC, `+col+` LIMIT ?)
		SELECT 0, `+col+`, max(account_id), outcome, sum(count), keygate_hist_sum(latency)
		FROM usage_rollups`+w.String()+` AND `+col+` IN (SELECT v FROM top) GROUP BY `+col+`, outcome`, args)
	if err != nil {
		return nil, err
	}
	return keygate.UsageTop(rows, q.By, q.Limit), nil
}

func (s *Store) usageRows(ctx context.Context, op, query string, args []any) ([]keygate.UsageRow, error) {
	return queryAll(ctx, s, op, query, args, func(sc scanner) (keygate.UsageRow, error) {
		var r keygate.UsageRow
		var bucket int64
		var hist []byte
		if err := sc.Scan(&bucket, &r.Group, &r.AccountID, &r.Outcome, &r.Count, &hist); err != nil {
			return r, err
		}
		r.Bucket = fromMillis(bucket)
		var err error
		r.Latency, err = keygate.ParseLatencyHistogram(hist)
		return r, err
	})
}

// UsageEvents returns raw events for q, oldest first, at most limit.
func (s *Store) UsageEvents(ctx context.Context, q keygate.UsageQuery, limit int) ([]keygate.UsageEvent, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	w := sqlstore.UsageEventFilter(dialect, q)
	return queryAll(ctx, s, "list usage events", `SELECT time, key_id, account_id, outcome, method, route, status, latency_us, ip
		FROM usage_events`+w.String()+` ORDER BY time, id LIMIT `+w.Next(max(limit, 1)), w.Args(), scanUsageEvent)
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

// PruneUsage deletes raw events older than before, and the admitted
// routes of days that ended a day before it; rollups stay.
func (s *Store) PruneUsage(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "prune usage", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM usage_route_names WHERE day < ?`, millis(keygate.UsageDay(before).Add(-24*time.Hour))); err != nil {
			return nil, err
		}
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
		WHERE bucket >= ? AND bucket < ? ORDER BY bucket, route, outcome`, []any{millis(sqlstore.Truncate(from, keygate.GranularityHour)), millis(to)},
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
