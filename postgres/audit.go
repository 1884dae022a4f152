package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate"
)

const auditColumns = `id, time, actor, action, target_type, target_id, details`

// prepareEvent sets an empty ev.ID to a new ID and a zero ev.Time to now.
func prepareEvent(ev *keygate.AuditEvent, now time.Time) error {
	if ev == nil {
		return keygate.Errorf(keygate.EINTERNAL, "An audit event passed to the store is nil.")
	}
	if ev.Time.IsZero() {
		ev.Time = now
	}
	if ev.ID == "" {
		ev.ID = keygate.NewID(keygate.PrefixAudit, ev.Time)
	}
	if len(ev.Details) > 0 && !json.Valid(ev.Details) {
		return keygate.Errorf(keygate.EINVALID, "The details of audit event %s are not valid JSON.", ev.ID)
	}
	return nil
}

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
			ev.ID, ms(ev.Time), ev.Actor, ev.Action, ev.TargetType, ev.TargetID, nullJSON(ev.Details))
		if constraint(err, "audit_events_pkey") {
			return &keygate.Error{Code: keygate.ECONFLICT, Err: err,
				Message: "An audit event with id \"" + ev.ID + "\" already exists."}
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
	now := s.now()
	for _, ev := range evs {
		if err := prepareEvent(ev, now); err != nil {
			return err
		}
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
	var w where
	if f.Actor != "" {
		w.add("actor = ?", f.Actor)
	}
	if f.Action != "" {
		w.add("action = ?", f.Action)
	}
	if f.TargetType != "" {
		w.add("target_type = ?", f.TargetType)
	}
	if f.TargetID != "" {
		w.add("target_id = ?", f.TargetID)
	}
	if !f.Since.IsZero() {
		w.add("time >= ?", ms(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("time < ?", ms(f.Until))
	}
	if f.Before != "" {
		var at time.Time
		err := s.pool.QueryRow(bctx, `SELECT time FROM audit_events WHERE id = $1`, f.Before).Scan(&at)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, keygate.Errorf(keygate.EINVALID,
				"The cursor %q names no audit event; pass the id of the last event of the previous page.", f.Before)
		}
		if err != nil {
			return nil, s.fail(ctx, "list audit events", err)
		}
		w.add("(time < ? OR (time = ? AND id < ?))", at, at, f.Before)
	}
	q := `SELECT ` + auditColumns + ` FROM audit_events` + w.String() + ` ORDER BY time DESC, id DESC LIMIT ` + w.next(pageSize(f.Limit))
	out, err := queryAll(bctx, s.pool, scanEvent, q, w.args...)
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
