package postgres

import (
	"cmp"
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
)

// SaveCounters upserts cs in one statement, keeping the larger count when
// one is already stored for the same key and day: counts only grow within
// a day, so a late or repeated flush, from this instance or another, never
// lowers one.
func (s *Store) SaveCounters(ctx context.Context, cs []keygate.Counter) error {
	if len(cs) == 0 {
		return s.read()
	}
	// One row per key and day (an upsert cannot touch a row twice), in
	// key order, so that two instances saving at once lock rows in the
	// same order and cannot deadlock.
	type kd struct{ key, day string }
	most := map[kd]int64{}
	for _, c := range cs {
		k := kd{c.KeyID, c.Day}
		most[k] = max(most[k], c.Count)
	}
	rows := make([]keygate.Counter, 0, len(most))
	for k, n := range most {
		rows = append(rows, keygate.Counter{KeyID: k.key, Day: k.day, Count: n})
	}
	slices.SortFunc(rows, func(a, b keygate.Counter) int {
		return cmp.Or(cmp.Compare(a.KeyID, b.KeyID), cmp.Compare(a.Day, b.Day))
	})
	keys, days, counts := make([]string, len(rows)), make([]string, len(rows)), make([]int64, len(rows))
	for i, c := range rows {
		keys[i], days[i], counts[i] = c.KeyID, c.Day, c.Count
	}
	return s.write(ctx, "save counters", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		_, err := tx.Exec(ctx, `INSERT INTO counters (key_id, day, count)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
			ON CONFLICT (key_id, day) DO UPDATE SET count = greatest(counters.count, excluded.count)`, keys, days, counts)
		return nil, err
	})
}

// Counters returns every counter stored for day, by key ID.
func (s *Store) Counters(ctx context.Context, day string) ([]keygate.Counter, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	out, err := queryAll(bctx, s.pool, func(row pgx.Row) (keygate.Counter, error) {
		var c keygate.Counter
		err := row.Scan(&c.KeyID, &c.Day, &c.Count)
		return c, err
	}, `SELECT key_id, day, count FROM counters WHERE day = $1 ORDER BY key_id`, day)
	if err != nil {
		return nil, s.fail(ctx, "list counters", err)
	}
	return out, nil
}
