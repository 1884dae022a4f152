package postgres

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
)

var _ keygate.UsageStore = (*Store)(nil)

type routeKey struct {
	bucket         time.Time
	route, outcome string
}

type rollupKey struct {
	granularity string
	keyID       string
	bucket      time.Time
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

var usageColumns = []string{"time", "key_id", "account_id", "outcome", "method", "route", "status", "latency_us", "ip"}

// RecordUsage stores events (by COPY), adds them to the hourly and daily
// rollups and moves last_used_at forward, in one transaction. The rollups
// are summed in memory first, so a batch costs one upsert row per key,
// bucket and outcome rather than one per event; rows are written in a
// fixed order so that instances recording at once do not deadlock, and a
// deadlock PostgreSQL detects all the same is retried.
func (s *Store) RecordUsage(ctx context.Context, events []keygate.UsageEvent) error {
	if len(events) == 0 {
		return s.read()
	}
	rollups := map[rollupKey]int64{}
	routes := map[routeKey]int64{}
	accounts := map[string]string{}
	lastUsed := map[string]time.Time{}
	raw := make([]*keygate.UsageEvent, 0, len(events))
	for i := range events {
		ev := &events[i]
		outcome := keygate.OutcomeKey(ev.Outcome)
		n := ev.N()
		for _, g := range []string{keygate.GranularityHour, keygate.GranularityDay} {
			rollups[rollupKey{g, ev.KeyID, truncate(ev.Time, g), outcome}] += n
		}
		routes[routeKey{truncate(ev.Time, keygate.GranularityHour), ev.Route, outcome}] += n
		accounts[ev.KeyID] = ev.AccountID
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
	rk := make([]rollupKey, 0, len(rollups))
	for k := range rollups {
		rk = append(rk, k)
	}
	slices.SortFunc(rk, func(a, b rollupKey) int {
		return cmp.Or(cmp.Compare(a.granularity, b.granularity), cmp.Compare(a.keyID, b.keyID),
			a.bucket.Compare(b.bucket), cmp.Compare(a.outcome, b.outcome))
	})
	var (
		gs, kids, outs, accs = make([]string, len(rk)), make([]string, len(rk)), make([]string, len(rk)), make([]string, len(rk))
		buckets              = make([]time.Time, len(rk))
		counts               = make([]int64, len(rk))
	)
	for i, k := range rk {
		gs[i], kids[i], buckets[i], outs[i], accs[i], counts[i] = k.granularity, k.keyID, k.bucket, k.outcome, accounts[k.keyID], rollups[k]
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
	rtk := make([]routeKey, 0, len(routes))
	for k := range routes {
		rtk = append(rtk, k)
	}
	slices.SortFunc(rtk, func(a, b routeKey) int {
		return cmp.Or(a.bucket.Compare(b.bucket), cmp.Compare(a.route, b.route), cmp.Compare(a.outcome, b.outcome))
	})
	var (
		rBuckets          = make([]time.Time, len(rtk))
		rRoutes, rOutcome = make([]string, len(rtk)), make([]string, len(rtk))
		rCounts           = make([]int64, len(rtk))
	)
	for i, k := range rtk {
		rBuckets[i], rRoutes[i], rOutcome[i], rCounts[i] = k.bucket, k.route, k.outcome, routes[k]
	}
	return s.write(ctx, "record usage", true, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
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
		if _, err := tx.Exec(ctx, `INSERT INTO usage_rollups (granularity, key_id, bucket, outcome, account_id, count)
			SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::bigint[])
			ON CONFLICT (granularity, key_id, bucket, outcome) DO UPDATE SET count = usage_rollups.count + excluded.count`,
			gs, kids, buckets, outs, accs, counts); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO usage_routes (bucket, route, outcome, count)
			SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::bigint[])
			ON CONFLICT (bucket, route, outcome) DO UPDATE SET count = usage_routes.count + excluded.count`,
			rBuckets, rRoutes, rOutcome, rCounts); err != nil {
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
	w.add("bucket >= ?", truncate(q.From, g))
	w.add("bucket < ?", ms(q.To))
	if q.KeyID != "" {
		w.add("key_id = ?", q.KeyID)
	}
	if q.AccountID != "" {
		w.add("account_id = ?", q.AccountID)
	}
	rows, err := s.pool.Query(ctx, `SELECT bucket, outcome, sum(count)::bigint FROM usage_rollups`+
		w.String()+` GROUP BY bucket, outcome ORDER BY bucket, outcome`, w.args...)
	if err != nil {
		return nil, s.fail(ctx, "query usage", err)
	}
	defer rows.Close()
	out := []keygate.UsageBucket{}
	for rows.Next() {
		var bucket time.Time
		var n int64
		var outcome string
		if err := rows.Scan(&bucket, &outcome, &n); err != nil {
			return nil, s.fail(ctx, "query usage", err)
		}
		start := bucket.UTC()
		if len(out) == 0 || !out[len(out)-1].Start.Equal(start) {
			out = append(out, keygate.UsageBucket{Start: start, Counts: map[string]int64{}})
		}
		b := &out[len(out)-1]
		b.Counts[outcome] += n
		b.Total += n
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, "query usage", err)
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
		w.add("time >= ?", ms(q.From))
	}
	if !q.To.IsZero() {
		w.add("time < ?", ms(q.To))
	}
	if q.KeyID != "" {
		w.add("key_id = ?", q.KeyID)
	}
	if q.AccountID != "" {
		w.add("account_id = ?", q.AccountID)
	}
	out, err := queryAll(ctx, s.pool, scanUsageEvent, `SELECT time, key_id, account_id, outcome, method, route, status, latency_us, ip
		FROM usage_events`+w.String()+` ORDER BY time, id LIMIT `+w.next(max(limit, 1)), w.args...)
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

// PruneUsage deletes raw events older than before; rollups stay.
func (s *Store) PruneUsage(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "prune usage", true, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
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
		WHERE bucket >= $1 AND bucket < $2 ORDER BY bucket, route, outcome`, truncate(from, keygate.GranularityHour), ms(to))
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
