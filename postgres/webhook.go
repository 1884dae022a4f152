package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

var _ keygate.WebhookStore = (*Store)(nil)

const webhookColumns = `id, url, events, description, enabled, secret, created_at, updated_at`

func scanWebhook(row pgx.Row) (*keygate.Webhook, error) {
	var w keygate.Webhook
	if err := row.Scan(&w.ID, &w.URL, &w.Events, &w.Description, &w.Enabled, &w.Secret, &w.CreatedAt, &w.UpdatedAt); err != nil {
		return nil, err
	}
	w.Events = sqlstore.List(w.Events)
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	return &w, nil
}

// CreateWebhook stores w.
func (s *Store) CreateWebhook(ctx context.Context, w *keygate.Webhook, ev ...*keygate.AuditEvent) error {
	return s.write(ctx, "create webhook", false, ev, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		_, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints (`+webhookColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			w.ID, w.URL, sqlstore.List(w.Events), w.Description, w.Enabled, w.Secret, ms(w.CreatedAt), ms(w.UpdatedAt))
		if constraint(err, "webhook_endpoints_pkey") {
			return nil, sqlstore.WebhookIDTaken(w.ID)
		}
		return nil, err
	})
}

// UpdateWebhook replaces the stored endpoint's mutable fields with w's.
func (s *Store) UpdateWebhook(ctx context.Context, w *keygate.Webhook, ev ...*keygate.AuditEvent) error {
	return s.write(ctx, "update webhook", false, ev, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		tag, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET url = $1, events = $2, description = $3, enabled = $4,
			secret = $5, updated_at = $6 WHERE id = $7`,
			w.URL, sqlstore.List(w.Events), w.Description, w.Enabled, w.Secret, ms(w.UpdatedAt), w.ID)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			return nil, sqlstore.WebhookNotFound(w.ID)
		}
		return nil, nil
	})
}

// DeleteWebhook deletes the endpoint; its deliveries go with it.
func (s *Store) DeleteWebhook(ctx context.Context, id string, ev ...*keygate.AuditEvent) error {
	return s.write(ctx, "delete webhook", false, ev, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1`, id)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			return nil, sqlstore.WebhookNotFound(id)
		}
		return nil, nil
	})
}

// Webhook returns the endpoint with id, secret included.
func (s *Store) Webhook(ctx context.Context, id string) (*keygate.Webhook, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	w, err := scanWebhook(s.pool.QueryRow(bctx, `SELECT `+webhookColumns+` FROM webhook_endpoints WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sqlstore.WebhookNotFound(id)
	}
	if err != nil {
		return nil, s.fail(ctx, "get webhook", err)
	}
	return w, nil
}

// Webhooks returns every endpoint, oldest first.
func (s *Store) Webhooks(ctx context.Context) ([]*keygate.Webhook, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	out, err := queryAll(bctx, s.pool, scanWebhook, `SELECT `+webhookColumns+` FROM webhook_endpoints ORDER BY created_at, id`)
	if err != nil {
		return nil, s.fail(ctx, "list webhooks", err)
	}
	return out, nil
}

// enqueueWebhooks stores, in tx, the webhook events that audit raises and
// the events given, each with a delivery per enabled endpoint that takes
// it. An event without such an endpoint, or whose ID is already stored,
// is not stored. It returns how many events it stored.
func enqueueWebhooks(ctx context.Context, tx pgx.Tx, audit []*keygate.AuditEvent, given []keygate.WebhookEvent) (int, error) {
	evs := sqlstore.WebhookEvents(audit, given)
	if len(evs) == 0 {
		return 0, nil
	}
	endpoints, err := queryAll(ctx, tx, scanWebhook, `SELECT `+webhookColumns+` FROM webhook_endpoints WHERE enabled`)
	if err != nil {
		return 0, err
	}
	stored := 0
	for _, ev := range evs {
		targets := sqlstore.WebhookTargets(endpoints, ev)
		if len(targets) == 0 {
			continue
		}
		tag, err := tx.Exec(ctx, `INSERT INTO webhook_events (id, type, time, payload) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO NOTHING`, ev.ID, ev.Type, ms(ev.Time), string(ev.Payload))
		if err != nil {
			return 0, err
		}
		if tag.RowsAffected() == 0 {
			continue // raised before: delivered (or being delivered) already
		}
		stored++
		ids := keygate.NewIDs(keygate.PrefixDelivery, ev.Time, len(targets))
		for i, target := range targets {
			if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, status,
				created_at, next_attempt_at, give_up_at) VALUES ($1, $2, $3, $4, 'pending', $5, $5, $6)`,
				ids[i], target, ev.ID, ev.Type, ms(ev.Time), ms(ev.Time.Add(keygate.WebhookRetention))); err != nil {
				return 0, err
			}
		}
	}
	return stored, nil
}

// EnqueueWebhookEvents stores evs and their deliveries in one transaction.
func (s *Store) EnqueueWebhookEvents(ctx context.Context, evs []keygate.WebhookEvent) (int, error) {
	var n int
	err := s.write(ctx, "enqueue webhook events", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		var err error
		n, err = enqueueWebhooks(ctx, tx, nil, evs)
		return nil, err
	})
	return n, err
}

const deliveryColumns = `d.id, d.endpoint_id, d.event_id, d.event_type, d.status, d.attempts, d.created_at,
	d.next_attempt_at, d.give_up_at, d.last_attempt_at, d.last_status, d.last_error, d.delivered_at`

func scanDeliveryInto(row pgx.Row, extra ...any) (*keygate.WebhookDelivery, error) {
	var d keygate.WebhookDelivery
	dest := append([]any{&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &d.Status, &d.Attempts, &d.CreatedAt,
		&d.NextAttemptAt, &d.GiveUpAt, &d.LastAttemptAt, &d.LastStatus, &d.LastError, &d.DeliveredAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	d.CreatedAt, d.GiveUpAt = d.CreatedAt.UTC(), d.GiveUpAt.UTC()
	d.NextAttemptAt, d.LastAttemptAt, d.DeliveredAt = utcPtr(d.NextAttemptAt), utcPtr(d.LastAttemptAt), utcPtr(d.DeliveredAt)
	return &d, nil
}

func scanDelivery(row pgx.Row) (*keygate.WebhookDelivery, error) { return scanDeliveryInto(row) }

// ClaimDeliveries leases up to limit due deliveries. FOR UPDATE SKIP
// LOCKED lets instances claim at once without waiting for each other or
// taking the same delivery; the lease keeps a claimed delivery from being
// claimed again after the claiming transaction commits.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*keygate.WebhookDelivery, error) {
	var out []*keygate.WebhookDelivery
	err := s.write(ctx, "claim webhook deliveries", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		var err error
		out, err = queryAll(ctx, tx, func(row pgx.Row) (*keygate.WebhookDelivery, error) {
			var payload, url, secret string
			d, err := scanDeliveryInto(row, &payload, &url, &secret)
			if err != nil {
				return nil, err
			}
			d.Payload, d.URL, d.Secret = []byte(payload), url, secret
			return d, nil
		}, `WITH due AS (
				SELECT id FROM webhook_deliveries
				WHERE status = 'pending' AND next_attempt_at <= $1 AND locked_until <= $1
				ORDER BY next_attempt_at, id LIMIT $2
				FOR UPDATE SKIP LOCKED
			), leased AS (
				UPDATE webhook_deliveries SET locked_until = $3 FROM due WHERE webhook_deliveries.id = due.id
				RETURNING webhook_deliveries.*
			)
			SELECT `+deliveryColumns+`, e.payload, w.url, w.secret
			FROM leased d
			JOIN webhook_events e ON e.id = d.event_id
			JOIN webhook_endpoints w ON w.id = d.endpoint_id
			ORDER BY d.next_attempt_at, d.id`, ms(now), max(limit, 1), ms(now.Add(lease)))
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecordDeliveryAttempt records a on the pending delivery id.
func (s *Store) RecordDeliveryAttempt(ctx context.Context, id string, a keygate.DeliveryAttempt) error {
	return s.write(ctx, "record webhook attempt", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		status, next, delivered := keygate.DeliveryPending, &a.NextAttemptAt, (*time.Time)(nil)
		switch {
		case a.Succeeded:
			status, next, delivered = keygate.DeliverySucceeded, nil, &a.At
		case a.NextAttemptAt.IsZero():
			status, next = keygate.DeliveryFailed, nil
		}
		tag, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1,
			next_attempt_at = $2, locked_until = '-infinity', last_attempt_at = $3, last_status = $4, last_error = $5,
			delivered_at = $6 WHERE id = $7 AND status = 'pending'`,
			status, msPtr(next), ms(a.At), a.Status, a.Error, msPtr(delivered), id)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			return nil, sqlstore.PendingDeliveryNotFound(id)
		}
		return nil, nil
	})
}

// WebhookDeliveries returns f's deliveries, newest first.
func (s *Store) WebhookDeliveries(ctx context.Context, f keygate.DeliveryFilter) ([]*keygate.WebhookDelivery, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	var at time.Time
	if f.Before != "" {
		err := s.pool.QueryRow(bctx, `SELECT created_at FROM webhook_deliveries WHERE id = $1`, f.Before).Scan(&at)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, sqlstore.NoDeliveryCursor(f.Before)
		}
		if err != nil {
			return nil, s.fail(ctx, "list webhook deliveries", err)
		}
	}
	w := sqlstore.DeliveryFilter(dialect, f, at)
	q := `SELECT ` + deliveryColumns + ` FROM webhook_deliveries d` + w.String() +
		` ORDER BY d.created_at DESC, d.id DESC LIMIT ` + w.Next(sqlstore.PageSize(f.Limit))
	out, err := queryAll(bctx, s.pool, scanDelivery, q, w.Args()...)
	if err != nil {
		return nil, s.fail(ctx, "list webhook deliveries", err)
	}
	return out, nil
}

// WebhookDelivery returns the delivery with id.
func (s *Store) WebhookDelivery(ctx context.Context, id string) (*keygate.WebhookDelivery, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	d, err := scanDelivery(s.pool.QueryRow(bctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d WHERE d.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sqlstore.DeliveryNotFound(id)
	}
	if err != nil {
		return nil, s.fail(ctx, "get webhook delivery", err)
	}
	return d, nil
}

// Redeliver makes the delivery pending again, due at now.
func (s *Store) Redeliver(ctx context.Context, id string, now time.Time) (*keygate.WebhookDelivery, error) {
	var d *keygate.WebhookDelivery
	err := s.write(ctx, "redeliver webhook", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		var err error
		d, err = scanDelivery(tx.QueryRow(ctx, `UPDATE webhook_deliveries d SET status = 'pending',
			next_attempt_at = $1, locked_until = '-infinity', give_up_at = $2, delivered_at = NULL
			WHERE d.id = $3 RETURNING `+deliveryColumns, ms(now), ms(now.Add(keygate.WebhookRetention)), id))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, sqlstore.DeliveryNotFound(id)
		}
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// PruneWebhookDeliveries deletes finished deliveries created before
// before, and the events left without deliveries.
func (s *Store) PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "prune webhook deliveries", false, nil, func(ctx context.Context, tx pgx.Tx) ([]keygate.Change, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1`, ms(before))
		if err != nil {
			return nil, err
		}
		n = tag.RowsAffected()
		_, err = tx.Exec(ctx, `DELETE FROM webhook_events e WHERE e.time < $1
			AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)`, ms(before))
		return nil, err
	})
	return n, err
}

// ExpiringKeys returns the keys not revoked that expire in [from, to).
func (s *Store) ExpiringKeys(ctx context.Context, from, to time.Time) ([]*keygate.Key, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	out, err := queryAll(bctx, s.pool, scanKey, `SELECT `+keyColumns+` FROM keys
		WHERE expires_at >= $1 AND expires_at < $2 AND revoked_at IS NULL ORDER BY expires_at, id`, ms(from), ms(to))
	if err != nil {
		return nil, s.fail(ctx, "list expiring keys", err)
	}
	return out, nil
}
