package postgres

import (
	"cmp"
	"context"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

var _ keygate.UsageStore = (*Store)(nil)

var usageColumns = []string{"time", "key_id", "account_id", "outcome", "method", "route", "status", "latency_us", "ip"}

// RecordUsage stores events (by COPY), adds them to the hourly and daily
// rollups and the hourly route counts, and moves last_used_at forward,
// in one transaction. Aggregated events (Count > 0) add their count to
// the rollups with no latency (none was kept), and store no raw event. The rollups
// are summed in memory first, so a batch costs one upsert row per key,
// bucket, outcome, route and status rather than one per event; rows are
// written in a fixed order so that instances recording at once do not
// deadlock, and a deadlock PostgreSQL detects all the same is retried.
func (s *Store) RecordUsage(ctx context.Context, events []keygate.UsageEvent) error {
	if len(events) == 0 {
		return s.read()
	}
	routes := map[int64]map[string]bool{} // per day, the routes of the batch
	lastUsed := map[string]time.Time{}
	raw := make([]*keygate.UsageEvent, 0, len(events))
	for i := range events {
		ev := &events[i]
		day := keygate.UsageDay(ev.Time).UnixMilli()
		if routes[day] == nil {
			routes[day] = map[string]bool{}
		}
		routes[day][ev.Route] = true
		if ev.Count > 0 {
			continue
		}
		raw = append(raw, ev)
		if ev.KeyID != "" {
			if t := ms(ev.Time); t.After(lastUsed[ev.KeyID]) {
				lastUsed[ev.KeyID] = t
			}
		}
	}
	ids := make([]string, 0, len(lastUsed))
	for id := range lastUsed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	times := make([]time.Time, len(ids))
	for i, id := range ids {
		times[i] = lastUsed[id]
	}
	var admitted map[int64]map[string]bool
	err := s.write(ctx, "record usage", true, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		var err error
		if admitted, err = s.admitRoutes(ctx, tx, routes); err != nil {
			return nil, err
		}
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(raw) {
				return nil, nil
			}
			ev := raw[i]
			i++
			ip := ""
			if ev.IP.IsValid() {
				ip = ev.IP.String()
			}
			return []any{ms(ev.Time), ev.KeyID, ev.AccountID, string(ev.Outcome), ev.Method, ev.Route,
				int32(ev.Status), ev.Latency.Microseconds(), ip}, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"usage_events"}, usageColumns, src); err != nil {
			return nil, err
		}
		r := rollupRows(events, admitted)
		if _, err := tx.Exec(ctx, `INSERT INTO usage_rollups (granularity, key_id, bucket, outcome, route, status, account_id, count, latency)
			SELECT g, k, b, o, r, s, a, c, l::bigint[]
			FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::int[], $7::text[], $8::bigint[], $9::text[]) AS t(g, k, b, o, r, s, a, c, l)
			ON CONFLICT (granularity, key_id, bucket, outcome, route, status)
			DO UPDATE SET count = usage_rollups.count + excluded.count, latency = keygate_hist_add(usage_rollups.latency, excluded.latency)`,
			r.gs, r.kids, r.buckets, r.outs, r.routes, r.statuses, r.accs, r.counts, r.latencies); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO usage_routes (bucket, route, outcome, count)
			SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::bigint[])
			ON CONFLICT (bucket, route, outcome) DO UPDATE SET count = usage_routes.count + excluded.count`,
			r.rBuckets, r.rRoutes, r.rOutcomes, r.rCounts); err != nil {
			return nil, err
		}
		if len(ids) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE keys k SET last_used_at = v.t
				FROM unnest($1::text[], $2::timestamptz[]) AS v(id, t)
				WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.t)`, ids, times); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if err != nil {
		return err
	}
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	if s.routes == nil {
		s.routes = map[int64]map[string]bool{}
	}
	maps.Copy(s.routes, admitted)
	sqlstore.TrimRouteDays(s.routes)
	return nil
}

// rollupColumns are the rollup rows and the route counts of a batch,
// column by column for unnest, sorted by key.
type rollupColumns struct {
	gs, kids, outs, routes, accs, latencies []string
	buckets                                 []time.Time
	statuses                                []int32
	counts                                  []int64

	rBuckets           []time.Time
	rRoutes, rOutcomes []string
	rCounts            []int64
}

func rollupRows(events []keygate.UsageEvent, admitted map[int64]map[string]bool) rollupColumns {
	rollups, routes := sqlstore.SumUsage(events, admitted)
	rk := slices.SortedFunc(maps.Keys(rollups), func(a, b sqlstore.RollupKey) int {
		return cmp.Or(cmp.Compare(a.Granularity, b.Granularity), cmp.Compare(a.KeyID, b.KeyID),
			a.Bucket.Compare(b.Bucket), cmp.Compare(a.Outcome, b.Outcome), cmp.Compare(a.Route, b.Route), cmp.Compare(a.Status, b.Status))
	})
	n := len(rk)
	c := rollupColumns{
		gs: make([]string, n), kids: make([]string, n), outs: make([]string, n), routes: make([]string, n),
		accs: make([]string, n), latencies: make([]string, n), buckets: make([]time.Time, n),
		statuses: make([]int32, n), counts: make([]int64, n),
	}
	for i, k := range rk {
		r := rollups[k]
		c.gs[i], c.kids[i], c.buckets[i], c.outs[i], c.routes[i], c.statuses[i] = k.Granularity, k.KeyID, k.Bucket, k.Outcome, k.Route, int32(k.Status)
		c.accs[i], c.counts[i], c.latencies[i] = r.AccountID, r.Count, arrayLiteral(r.Latency)
	}
	for _, k := range slices.SortedFunc(maps.Keys(routes), func(a, b sqlstore.RouteKey) int {
		return cmp.Or(a.Bucket.Compare(b.Bucket), cmp.Compare(a.Route, b.Route), cmp.Compare(a.Outcome, b.Outcome))
	}) {
		c.rBuckets, c.rRoutes = append(c.rBuckets, k.Bucket), append(c.rRoutes, k.Route)
		c.rOutcomes, c.rCounts = append(c.rOutcomes, k.Outcome), append(c.rCounts, routes[k])
	}
	return c
}

// arrayLiteral returns h as a PostgreSQL array literal such as {0,3,5}.
func arrayLiteral(h keygate.LatencyHistogram) string {
	b := []byte{'{'}
	for i, n := range h.Trim() {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return string(append(b, '}'))
}

// routesLockSQL serializes the admission of new routes across instances,
// so that no day admits more than keygate.MaxUsageRoutesPerDay.
const routesLockSQL = `SELECT pg_advisory_xact_lock(hashtext('keygate.usage_route_names'), hashtext(coalesce(current_schema(), '')))`

// admitRoutes returns, for each day of want, the routes that day has
// admitted, admitting new ones of want while there is room
// (keygate.AdmitRoutes). It reads the cache and leaves it alone: the
// caller stores the answer once the transaction has committed.
func (s *Store) admitRoutes(ctx context.Context, tx pgx.Tx, want map[int64]map[string]bool) (map[int64]map[string]bool, error) {
	out := make(map[int64]map[string]bool, len(want))
	locked := false
	for day, routes := range want {
		s.routesMu.Lock()
		known := maps.Clone(s.routes[day])
		s.routesMu.Unlock()
		var err error
		if known == nil {
			if known, err = dayRoutes(ctx, tx, day); err != nil {
				return nil, err
			}
		}
		if len(keygate.AdmitRoutes(known, routes)) > 0 {
			// Routes to admit, and room: read the day again under the
			// lock, since another instance may have admitted some.
			if !locked {
				if _, err := tx.Exec(ctx, routesLockSQL); err != nil {
					return nil, err
				}
				locked = true
			}
			if known, err = dayRoutes(ctx, tx, day); err != nil {
				return nil, err
			}
			add := keygate.AdmitRoutes(known, routes)
			if _, err := tx.Exec(ctx, `INSERT INTO usage_route_names (day, route) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
				time.UnixMilli(day).UTC(), add); err != nil {
				return nil, err
			}
			for _, r := range add {
				known[r] = true
			}
		}
		out[day] = known
	}
	return out, nil
}

// dayRoutes reads the routes a day has admitted.
func dayRoutes(ctx context.Context, tx pgx.Tx, day int64) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `SELECT route FROM usage_route_names WHERE day = $1`, time.UnixMilli(day).UTC())
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	var r string
	_, err = pgx.ForEachRow(rows, []any{&r}, func() error {
		known[r] = true
		return nil
	})
	return known, err
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
	rows, err := queryAll(ctx, s.pool, scanUsageRow, `SELECT bucket, `+col+`, max(account_id), outcome, sum(count)::bigint, keygate_hist_sum(latency)
		FROM usage_rollups`+w.String()+` GROUP BY `+groupBy, w.Args()...)
	if err != nil {
		return nil, s.fail(ctx, "query usage", err)
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
	cond := w.String()
	limit := w.Next(max(q.Limit, 1))
	rows, err := queryAll(ctx, s.pool, scanUsageRow, `WITH top AS (
			SELECT `+col+` AS v FROM usage_rollups`+cond+` GROUP BY `+col+` ORDER BY sum(count) DESC, `+col+` LIMIT `+limit+`)
		SELECT 'epoch'::timestamptz, `+col+`, max(account_id), outcome, sum(count)::bigint, keygate_hist_sum(latency)
		FROM usage_rollups`+cond+` AND `+col+` IN (SELECT v FROM top) GROUP BY `+col+`, outcome`, w.Args()...)
	if err != nil {
		return nil, s.fail(ctx, "query top usage", err)
	}
	return keygate.UsageTop(rows, q.By, q.Limit), nil
}

func scanUsageRow(row pgx.Row) (keygate.UsageRow, error) {
	var r keygate.UsageRow
	var hist []int64
	if err := row.Scan(&r.Bucket, &r.Group, &r.AccountID, &r.Outcome, &r.Count, &hist); err != nil {
		return r, err
	}
	r.Bucket, r.Latency = r.Bucket.UTC(), hist
	return r, nil
}

// UsageEvents returns raw events for q, oldest first, at most limit.
func (s *Store) UsageEvents(ctx context.Context, q keygate.UsageQuery, limit int) ([]keygate.UsageEvent, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	w := sqlstore.UsageEventFilter(dialect, q)
	out, err := queryAll(ctx, s.pool, scanUsageEvent, `SELECT time, key_id, account_id, outcome, method, route, status, latency_us, ip
		FROM usage_events`+w.String()+` ORDER BY time, id LIMIT `+w.Next(max(limit, 1)), w.Args()...)
	if err != nil {
		return nil, s.fail(ctx, "list usage events", err)
	}
	return out, nil
}

func scanUsageEvent(row pgx.Row) (keygate.UsageEvent, error) {
	var ev keygate.UsageEvent
	var latency int64
	var status int32
	var outcome, ip string
	if err := row.Scan(&ev.Time, &ev.KeyID, &ev.AccountID, &outcome, &ev.Method, &ev.Route, &status, &latency, &ip); err != nil {
		return ev, err
	}
	ev.Time, ev.Outcome, ev.Status, ev.Latency = ev.Time.UTC(), keygate.Outcome(outcome), int(status), time.Duration(latency)*time.Microsecond
	if ip != "" {
		ev.IP, _ = netip.ParseAddr(ip) // written from a netip.Addr; always parses
	}
	return ev, nil
}

// PruneUsage deletes raw events older than before, and the admitted
// routes of days that ended a day before it; rollups stay.
func (s *Store) PruneUsage(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "prune usage", true, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		if _, err := tx.Exec(ctx, `DELETE FROM usage_route_names WHERE day < $1`, keygate.UsageDay(before).Add(-24*time.Hour)); err != nil {
			return nil, err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM usage_events WHERE time < $1`, ms(before))
		n = tag.RowsAffected()
		return nil, err
	})
	return n, err
}

// RouteUsage returns the hourly route counts with Start in [from, to).
func (s *Store) RouteUsage(ctx context.Context, from, to time.Time) ([]keygate.RouteCount, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT bucket, route, outcome, count FROM usage_routes
		WHERE bucket >= $1 AND bucket < $2 ORDER BY bucket, route, outcome`, sqlstore.Truncate(from, keygate.GranularityHour), ms(to))
	if err != nil {
		return nil, s.fail(ctx, "query route usage", err)
	}
	defer rows.Close()
	out := []keygate.RouteCount{}
	for rows.Next() {
		var c keygate.RouteCount
		if err := rows.Scan(&c.Start, &c.Route, &c.Outcome, &c.Count); err != nil {
			return nil, s.fail(ctx, "query route usage", err)
		}
		c.Start = c.Start.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "query route usage", err)
	}
	return out, nil
}
