package sqlite

import (
	"context"
	"database/sql"

	"github.com/keygate/keygate"
)

// SaveCounters upserts cs in one transaction, keeping the larger count when
// one is already stored for the same key and day: counts only grow within a
// day, so a late or repeated flush never lowers one.
func (s *Store) SaveCounters(ctx context.Context, cs []keygate.Counter) error {
	if len(cs) == 0 {
		return s.read()
	}
	return s.write(ctx, "save counters", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO counters (key_id, day, count) VALUES (?, ?, ?)
			ON CONFLICT (key_id, day) DO UPDATE SET count = max(count, excluded.count)`)
		if err != nil {
			return nil, err
		}
		defer stmt.Close()
		for _, c := range cs {
			if _, err := stmt.ExecContext(ctx, c.KeyID, c.Day, c.Count); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
}

// Counters returns every counter stored for day, by key ID.
func (s *Store) Counters(ctx context.Context, day string) ([]keygate.Counter, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	return queryAll(ctx, s, "list counters", `SELECT key_id, day, count FROM counters WHERE day = ? ORDER BY key_id`, []any{day},
		func(sc scanner) (c keygate.Counter, err error) {
			err = sc.Scan(&c.KeyID, &c.Day, &c.Count)
			return c, err
		})
}
