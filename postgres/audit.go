package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

const auditColumns = `id, time, actor, action, target_type, target_id, details`

// insertEvents stores evs in tx, and the webhook events they raise (see
// enqueueWebhooks), so that they commit or roll back with the write they
// describe.
func insertEvents(ctx context.Context, tx pgx.Tx, evs []*keygate.AuditEvent) error {
	if err := insertAuditRows(ctx, tx, evs); err != nil {
		return err
	}
	_, err := enqueueWebhooks(ctx, tx, evs, nil)
	return err
}

func insertAuditRows(ctx context.Context, tx pgx.Tx, evs []*keygate.AuditEvent) error {
	for _, ev := range evs {
		_, err := tx.Exec(ctx, `INSERT INTO audit_events (`+auditColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			ev.ID, ms(ev.Time), ev.Actor, ev.Action, ev.TargetType, ev.TargetID, sqlstore.NullJSON(ev.Details))
		if constraint(err, "audit_events_pkey") {
			return sqlstore.AuditEventIDTaken(err, ev.ID)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// insertEvents prepares evs (see prepareEvent) and stores them in tx: the
// events a conditional write's function returns, known only inside the
// transaction.
func (s *Store) insertEvents(ctx context.Context, tx pgx.Tx, evs []*keygate.AuditEvent) error {
	if err := sqlstore.PrepareEvents(evs, s.now()); err != nil {
		return err
	}
	return insertEvents(ctx, tx, evs)
}

// AuditEvents returns the events f selects, newest first (by time, then
// ID). Before is the ID of the last event of the previous page; EINVALID
// if no such event is stored.
func (s *Store) AuditEvents(ctx context.Context, f keygate.AuditFilter) ([]*keygate.AuditEvent, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	var at time.Time
	if f.Before != "" {
		err := s.pool.QueryRow(bctx, `SELECT time FROM audit_events WHERE id = $1`, f.Before).Scan(&at)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, sqlstore.NoAuditCursor(f.Before)
		}
		if err != nil {
			return nil, s.fail(ctx, "list audit events", err)
		}
	}
	w := sqlstore.AuditFilter(dialect, f, at)
	q := `SELECT ` + auditColumns + ` FROM audit_events` + w.String() + ` ORDER BY time DESC, id DESC LIMIT ` + w.Next(sqlstore.PageSize(f.Limit))
	out, err := queryAll(bctx, s.pool, scanEvent, q, w.Args()...)
	if err != nil {
		return nil, s.fail(ctx, "list audit events", err)
	}
	return out, nil
}

func scanEvent(row pgx.Row) (*keygate.AuditEvent, error) {
	var ev keygate.AuditEvent
	var details []byte
	if err := row.Scan(&ev.ID, &ev.Time, &ev.Actor, &ev.Action, &ev.TargetType, &ev.TargetID, &details); err != nil {
		return nil, err
	}
	ev.Time = ev.Time.UTC()
	if len(details) > 0 {
		ev.Details = json.RawMessage(details)
	}
	return &ev, nil
}
