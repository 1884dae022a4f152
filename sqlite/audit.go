package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

const auditColumns = `id, time, actor, action, target_type, target_id, details`

// insertEvents stores evs in tx, and the webhook events they raise (see
// enqueueWebhooks), so that they commit or roll back with the write they
// describe.
func insertEvents(ctx context.Context, tx *sql.Tx, evs []*keygate.AuditEvent) error {
	if err := insertAuditRows(ctx, tx, evs); err != nil {
		return err
	}
	_, err := enqueueWebhooks(ctx, tx, evs, nil)
	return err
}

func insertAuditRows(ctx context.Context, tx *sql.Tx, evs []*keygate.AuditEvent) error {
	for _, ev := range evs {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_events (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ev.ID, millis(ev.Time), ev.Actor, ev.Action, ev.TargetType, ev.TargetID, sqlstore.NullJSON(ev.Details))
		if uniqueViolation(err, "audit_events.id") {
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
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, evs []*keygate.AuditEvent) error {
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
	var at int64
	if f.Before != "" {
		err := s.rdb.QueryRowContext(ctx, `SELECT time FROM audit_events WHERE id = ?`, f.Before).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, sqlstore.NoAuditCursor(f.Before)
		}
		if err != nil {
			return nil, s.fail("list audit events", err)
		}
	}
	w := sqlstore.AuditFilter(dialect, f, at)
	return queryAll(ctx, s, "list audit events", `SELECT `+auditColumns+` FROM audit_events`+w.String()+
		` ORDER BY time DESC, id DESC LIMIT `+w.Next(sqlstore.PageSize(f.Limit)), w.Args(), scanAuditEvent)
}

func scanAuditEvent(sc scanner) (*keygate.AuditEvent, error) {
	var ev keygate.AuditEvent
	var at int64
	var details sql.NullString
	if err := sc.Scan(&ev.ID, &at, &ev.Actor, &ev.Action, &ev.TargetType, &ev.TargetID, &details); err != nil {
		return nil, err
	}
	ev.Time = fromMillis(at)
	ev.Details = fromNullJSON(details)
	return &ev, nil
}
