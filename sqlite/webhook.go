package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

var _ keygate.WebhookStore = (*Store)(nil)

const webhookColumns = `id, url, events, description, enabled, secret, created_at, updated_at`

// CreateWebhook stores w.
func (s *Store) CreateWebhook(ctx context.Context, w *keygate.Webhook, evs ...*keygate.AuditEvent) error {
	events, err := encodeList(w.Events)
	if err != nil {
		return err
	}
	return s.write(ctx, "create webhook", evs, func(tx *sql.Tx) ([]keygate.Change, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhook_endpoints (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			w.ID, w.URL, events, w.Description, w.Enabled, w.Secret, millis(w.CreatedAt), millis(w.UpdatedAt))
		if uniqueViolation(err, "webhook_endpoints.id") {
			return nil, sqlstore.WebhookIDTaken(w.ID)
		}
		return nil, err
	})
}

// UpdateWebhook replaces the stored endpoint's mutable fields with w's.
func (s *Store) UpdateWebhook(ctx context.Context, w *keygate.Webhook, evs ...*keygate.AuditEvent) error {
	events, err := encodeList(w.Events)
	if err != nil {
		return err
	}
	return s.write(ctx, "update webhook", evs, func(tx *sql.Tx) ([]keygate.Change, error) {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_endpoints SET url = ?, events = ?, description = ?, enabled = ?,
			secret = ?, updated_at = ? WHERE id = ?`,
			w.URL, events, w.Description, w.Enabled, w.Secret, millis(w.UpdatedAt), w.ID)
		if err != nil {
			return nil, err
		}
		return nil, mustAffect(res, sqlstore.WebhookNotFound(w.ID))
	})
}

// DeleteWebhook deletes the endpoint; its deliveries go with it.
func (s *Store) DeleteWebhook(ctx context.Context, id string, evs ...*keygate.AuditEvent) error {
	return s.write(ctx, "delete webhook", evs, func(tx *sql.Tx) ([]keygate.Change, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE id = ?`, id)
		if err != nil {
			return nil, err
		}
		return nil, mustAffect(res, sqlstore.WebhookNotFound(id))
	})
}

// mustAffect returns missing when res changed no row.
func mustAffect(res sql.Result, missing error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return missing
	}
	return nil
}

// Webhook returns the endpoint with id, secret included.
func (s *Store) Webhook(ctx context.Context, id string) (*keygate.Webhook, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	w, err := scanWebhook(s.rdb.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhook_endpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sqlstore.WebhookNotFound(id)
	}
	if err != nil {
		return nil, s.fail("get webhook", err)
	}
	return w, nil
}

// Webhooks returns every endpoint, oldest first.
func (s *Store) Webhooks(ctx context.Context) ([]*keygate.Webhook, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhook_endpoints ORDER BY created_at, id`)
	if err != nil {
		return nil, s.fail("list webhooks", err)
	}
	defer rows.Close()
	out := []*keygate.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, s.fail("list webhooks", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list webhooks", err)
	}
	return out, nil
}

func scanWebhook(sc scanner) (*keygate.Webhook, error) {
	var w keygate.Webhook
	var events string
	var created, updated int64
	if err := sc.Scan(&w.ID, &w.URL, &events, &w.Description, &w.Enabled, &w.Secret, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if w.Events, err = decodeList(events); err != nil {
		return nil, err
	}
	w.CreatedAt, w.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &w, nil
}

// enqueueWebhooks stores, in tx, the webhook events that evs raise, and
// the events given, each with a delivery per endpoint that takes it. An
// event without any such endpoint, or whose ID is already stored, is not
// stored. It returns how many events it stored.
func enqueueWebhooks(ctx context.Context, tx *sql.Tx, audit []*keygate.AuditEvent, given []keygate.WebhookEvent) (int, error) {
	evs := sqlstore.WebhookEvents(audit, given)
	if len(evs) == 0 {
		return 0, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhook_endpoints WHERE enabled = 1`)
	if err != nil {
		return 0, err
	}
	var endpoints []*keygate.Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		endpoints = append(endpoints, w)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, err
	}
	stored := 0
	for _, ev := range evs {
		targets := sqlstore.WebhookTargets(endpoints, ev)
		if len(targets) == 0 {
			continue
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO webhook_events (id, type, time, payload) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, ev.ID, ev.Type, millis(ev.Time), string(ev.Payload))
		if err != nil {
			return 0, err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return 0, err
			}
			continue // raised before: delivered (or being delivered) already
		}
		stored++
		at := millis(ev.Time)
		giveUp := millis(ev.Time.Add(keygate.WebhookRetention))
		ids := keygate.NewIDs(keygate.PrefixDelivery, ev.Time, len(targets))
		for i, target := range targets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, status,
				created_at, next_attempt_at, give_up_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)`,
				ids[i], target, ev.ID, ev.Type, at, at, giveUp); err != nil {
				return 0, err
			}
		}
	}
	return stored, nil
}

// EnqueueWebhookEvents stores evs and their deliveries in one transaction.
func (s *Store) EnqueueWebhookEvents(ctx context.Context, evs []keygate.WebhookEvent) (int, error) {
	var n int
	err := s.write(ctx, "enqueue webhook events", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		var err error
		n, err = enqueueWebhooks(ctx, tx, nil, evs)
		return nil, err
	})
	return n, err
}

const deliveryColumns = `d.id, d.endpoint_id, d.event_id, d.event_type, d.status, d.attempts, d.created_at,
	d.next_attempt_at, d.give_up_at, d.last_attempt_at, d.last_status, d.last_error, d.delivered_at`

func scanDelivery(sc scanner, extra ...any) (*keygate.WebhookDelivery, error) {
	var d keygate.WebhookDelivery
	var created, giveUp int64
	var next, last, delivered sql.NullInt64
	dest := append([]any{&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &d.Status, &d.Attempts, &created,
		&next, &giveUp, &last, &d.LastStatus, &d.LastError, &delivered}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	d.CreatedAt, d.GiveUpAt = fromMillis(created), fromMillis(giveUp)
	d.NextAttemptAt, d.LastAttemptAt, d.DeliveredAt = fromNullMillis(next), fromNullMillis(last), fromNullMillis(delivered)
	return &d, nil
}

// ClaimDeliveries leases up to limit due deliveries. SQLite has one
// writer, so selecting and leasing in one write transaction is enough for
// no two claimers to get the same delivery.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*keygate.WebhookDelivery, error) {
	var out []*keygate.WebhookDelivery
	err := s.write(ctx, "claim webhook deliveries", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT `+deliveryColumns+`, e.payload, w.url, w.secret
			FROM webhook_deliveries d
			JOIN webhook_events e ON e.id = d.event_id
			JOIN webhook_endpoints w ON w.id = d.endpoint_id
			WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND d.locked_until <= ?
			ORDER BY d.next_attempt_at, d.id LIMIT ?`, millis(now), millis(now), max(limit, 1))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var payload string
			var d *keygate.WebhookDelivery
			var url, secret string
			if d, err = scanDelivery(rows, &payload, &url, &secret); err != nil {
				break
			}
			d.Payload, d.URL, d.Secret = []byte(payload), url, secret
			out = append(out, d)
		}
		if err := errors.Join(err, rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
		lock, err := tx.PrepareContext(ctx, `UPDATE webhook_deliveries SET locked_until = ? WHERE id = ?`)
		if err != nil {
			return nil, err
		}
		defer lock.Close()
		for _, d := range out {
			if _, err := lock.ExecContext(ctx, millis(now.Add(lease)), d.ID); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecordDeliveryAttempt records a on the pending delivery id.
func (s *Store) RecordDeliveryAttempt(ctx context.Context, id string, a keygate.DeliveryAttempt) error {
	return s.write(ctx, "record webhook attempt", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		status, next, delivered := keygate.DeliveryPending, any(millis(a.NextAttemptAt)), any(nil)
		switch {
		case a.Succeeded:
			status, next, delivered = keygate.DeliverySucceeded, nil, millis(a.At)
		case a.NextAttemptAt.IsZero():
			status, next = keygate.DeliveryFailed, nil
		}
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1,
			next_attempt_at = ?, locked_until = 0, last_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ?
			WHERE id = ? AND status = 'pending'`,
			status, next, millis(a.At), a.Status, a.Error, delivered, id)
		if err != nil {
			return nil, err
		}
		return nil, mustAffect(res, sqlstore.PendingDeliveryNotFound(id))
	})
}

// WebhookDeliveries returns f's deliveries, newest first.
func (s *Store) WebhookDeliveries(ctx context.Context, f keygate.DeliveryFilter) ([]*keygate.WebhookDelivery, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	var at int64
	if f.Before != "" {
		err := s.rdb.QueryRowContext(ctx, `SELECT created_at FROM webhook_deliveries WHERE id = ?`, f.Before).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, sqlstore.NoDeliveryCursor(f.Before)
		}
		if err != nil {
			return nil, s.fail("list webhook deliveries", err)
		}
	}
	w := sqlstore.DeliveryFilter(dialect, f, at)
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d`+w.String()+
		` ORDER BY d.created_at DESC, d.id DESC LIMIT `+w.Next(sqlstore.PageSize(f.Limit)), w.Args()...)
	if err != nil {
		return nil, s.fail("list webhook deliveries", err)
	}
	defer rows.Close()
	out := []*keygate.WebhookDelivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, s.fail("list webhook deliveries", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list webhook deliveries", err)
	}
	return out, nil
}

// WebhookDelivery returns the delivery with id.
func (s *Store) WebhookDelivery(ctx context.Context, id string) (*keygate.WebhookDelivery, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	d, err := scanDelivery(s.rdb.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d WHERE d.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sqlstore.DeliveryNotFound(id)
	}
	if err != nil {
		return nil, s.fail("get webhook delivery", err)
	}
	return d, nil
}

// Redeliver makes the delivery pending again, due at now.
func (s *Store) Redeliver(ctx context.Context, id string, now time.Time) (*keygate.WebhookDelivery, error) {
	var d *keygate.WebhookDelivery
	err := s.write(ctx, "redeliver webhook", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'pending',
			next_attempt_at = ?, locked_until = 0, give_up_at = ?, delivered_at = NULL WHERE id = ?`,
			millis(now), millis(now.Add(keygate.WebhookRetention)), id)
		if err != nil {
			return nil, err
		}
		if err := mustAffect(res, sqlstore.DeliveryNotFound(id)); err != nil {
			return nil, err
		}
		d, err = scanDelivery(tx.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d WHERE d.id = ?`, id))
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// PruneWebhookDeliveries deletes finished deliveries created before
// before, and the events left without deliveries, and returns how many
// deliveries it deleted.
func (s *Store) PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "prune webhook deliveries", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ?`, millis(before))
		if err != nil {
			return nil, err
		}
		if n, err = res.RowsAffected(); err != nil {
			return nil, err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM webhook_events WHERE time < ?
			AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)`, millis(before))
		return nil, err
	})
	return n, err
}

// ExpiringKeys returns the keys not revoked that expire in [from, to).
func (s *Store) ExpiringKeys(ctx context.Context, from, to time.Time) ([]*keygate.Key, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+keyColumns+` FROM keys
		WHERE expires_at >= ? AND expires_at < ? AND revoked_at IS NULL ORDER BY expires_at, id`, millis(from), millis(to))
	if err != nil {
		return nil, s.fail("list expiring keys", err)
	}
	defer rows.Close()
	out := []*keygate.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, s.fail("list expiring keys", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list expiring keys", err)
	}
	return out, nil
}
