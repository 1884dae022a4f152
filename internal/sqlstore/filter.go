package sqlstore

import (
	"time"

	"github.com/keygate/keygate"
)

// The conditions of the stores' list filters. Each is the same SQL in both
// dialects; the store appends its ORDER BY and LIMIT (Where.Next).

// KeyFilter returns the conditions of f. now gives the time f.Status is
// judged at when f.Now is zero; it is called only then. EINVALID if
// f.Status is not one of the key statuses.
func KeyFilter(d Dialect, f keygate.KeyFilter, now func() time.Time) (*Where, error) {
	w := d.Where()
	if f.AccountID != "" {
		w.Add("account_id = ?", f.AccountID)
	}
	if f.Tier != "" {
		w.Add("tier = ?", f.Tier)
	}
	if f.Start != "" {
		w.Add("start = ?", f.Start)
	}
	if f.Env != "" {
		w.Add("env = ?", string(f.Env))
	}
	if f.Status != "" {
		at := f.Now
		if at.IsZero() {
			at = now()
		}
		if err := statusCondition(w, f.Status, w.time(at)); err != nil {
			return nil, err
		}
	}
	if f.After != "" {
		w.Add("id > ?", f.After)
	}
	return w, nil
}

// statusCondition adds the condition for keys whose Status at now is
// status, following keygate.Key.Status: revoked wins over expired, which
// wins over disabled. A revocation in the future (a rotated key in its
// grace period) does not count yet.
func statusCondition(w *Where, status string, now any) error {
	const (
		revoked    = "(revoked_at IS NOT NULL AND revoked_at <= ?)"
		notRevoked = "(revoked_at IS NULL OR revoked_at > ?)"
		expired    = "(expires_at IS NOT NULL AND expires_at <= ?)"
		notExpired = "(expires_at IS NULL OR expires_at > ?)"
	)
	switch status {
	case keygate.StatusRevoked:
		w.Add(revoked, now)
	case keygate.StatusExpired:
		w.Add(notRevoked+" AND "+expired, now, now)
	case keygate.StatusDisabled:
		w.Add(notRevoked+" AND "+notExpired+" AND enabled = ?", now, now, false)
	case keygate.StatusActive:
		w.Add(notRevoked+" AND "+notExpired+" AND enabled = ?", now, now, true)
	default:
		return keygate.Errorf(keygate.EINVALID, "status %q is invalid; use %s, %s, %s or %s.", status,
			keygate.StatusActive, keygate.StatusRevoked, keygate.StatusExpired, keygate.StatusDisabled)
	}
	return nil
}

// AccountFilter returns the conditions of f; the email is compared as
// stored (NormalizeEmail).
func AccountFilter(d Dialect, f keygate.AccountFilter) *Where {
	w := d.Where()
	if f.Email != "" {
		w.Add("email = ?", NormalizeEmail(f.Email))
	}
	if f.Tier != "" {
		w.Add("tier = ?", f.Tier)
	}
	if f.After != "" {
		w.Add("id > ?", f.After)
	}
	return w
}

// InviteFilter returns the conditions of f: invitations before its cursor.
func InviteFilter(d Dialect, f keygate.InviteFilter) *Where {
	w := d.Where()
	if f.Before != "" {
		w.Add("id < ?", f.Before)
	}
	return w
}

// AuditFilter returns the conditions of f, for events listed newest first
// (by time, then ID). before is the time of the cursor event f.Before, as
// the store read it from its time column; unused when f.Before is empty.
// A cursor naming no event is NoAuditCursor.
func AuditFilter(d Dialect, f keygate.AuditFilter, before any) *Where {
	w := d.Where()
	if f.Actor != "" {
		w.Add("actor = ?", f.Actor)
	}
	if f.Action != "" {
		w.Add("action = ?", f.Action)
	}
	if f.TargetType != "" {
		w.Add("target_type = ?", f.TargetType)
	}
	if f.TargetID != "" {
		w.Add("target_id = ?", f.TargetID)
	}
	if !f.Since.IsZero() {
		w.Add("time >= ?", w.time(f.Since))
	}
	if !f.Until.IsZero() {
		w.Add("time < ?", w.time(f.Until))
	}
	if f.Before != "" {
		w.Add("(time < ? OR (time = ? AND id < ?))", before, before, f.Before)
	}
	return w
}

// NoAuditCursor is the error for an AuditFilter.Before that names no event.
func NoAuditCursor(id string) error {
	return keygate.Errorf(keygate.EINVALID,
		"The cursor %q names no audit event; pass the id of the last event of the previous page.", id)
}

// DeliveryFilter returns the conditions of f on webhook_deliveries d, for
// deliveries listed newest first (by creation, then ID). before is the
// creation time of the cursor delivery f.Before as the store read it;
// unused when f.Before is empty. A cursor naming no delivery is
// NoDeliveryCursor.
func DeliveryFilter(d Dialect, f keygate.DeliveryFilter, before any) *Where {
	w := d.Where()
	w.Add("d.endpoint_id = ?", f.WebhookID)
	if f.Status != "" {
		w.Add("d.status = ?", f.Status)
	}
	if f.Before != "" {
		w.Add("(d.created_at < ? OR (d.created_at = ? AND d.id < ?))", before, before, f.Before)
	}
	return w
}

// NoDeliveryCursor is the error for a DeliveryFilter.Before that names no
// delivery.
func NoDeliveryCursor(id string) error {
	return keygate.Errorf(keygate.EINVALID,
		"The cursor %q names no delivery; pass the id of the last delivery of the previous page.", id)
}

// UsageEventFilter returns the conditions of q on raw usage events: its
// period, key and account.
func UsageEventFilter(d Dialect, q keygate.UsageQuery) *Where {
	w := d.Where()
	if !q.From.IsZero() {
		w.Add("time >= ?", w.time(q.From))
	}
	if !q.To.IsZero() {
		w.Add("time < ?", w.time(q.To))
	}
	if q.KeyID != "" {
		w.Add("key_id = ?", q.KeyID)
	}
	if q.AccountID != "" {
		w.Add("account_id = ?", q.AccountID)
	}
	return w
}

// UsageGroups checks q and returns what its query of usage_rollups
// groups by (the column of q.GroupBy, then GROUP BY's list: bucket, that
// column, outcome) and the conditions of its granularity, period, key and
// account. EINVALID for a group_by or granularity that does not exist.
func UsageGroups(d Dialect, q keygate.UsageQuery) (col, groupBy string, w *Where, err error) {
	if err := keygate.CheckGroupBy(q.GroupBy); err != nil {
		return "", "", nil, err
	}
	col = UsageGroupColumn[q.GroupBy]
	if w, err = rollupFilter(d, q.Granularity, q.KeyID, q.AccountID, q.From, q.To); err != nil {
		return "", "", nil, err
	}
	groupBy = "bucket, outcome"
	if q.GroupBy != "" {
		groupBy = "bucket, " + col + ", outcome"
	}
	return col, groupBy, w, nil
}

// UsageTopGroups checks q and returns the column of q.By, which its query
// ranks, and the conditions of its granularity, period, key and account,
// rows without that column left out. EINVALID for a by or granularity
// that does not exist.
func UsageTopGroups(d Dialect, q keygate.UsageTopQuery) (col string, w *Where, err error) {
	if err := keygate.CheckTopBy(q.By); err != nil {
		return "", nil, err
	}
	col = UsageGroupColumn[q.By]
	if w, err = rollupFilter(d, q.Granularity, q.KeyID, q.AccountID, q.From, q.To); err != nil {
		return "", nil, err
	}
	w.Add(col + " <> ''")
	return col, w, nil
}

// rollupFilter selects the usage rollups of a granularity, period (from
// the start of from's hour or day), key and account. EINVALID for a
// granularity other than hour and day.
func rollupFilter(d Dialect, g, keyID, accountID string, from, to time.Time) (*Where, error) {
	if g != keygate.GranularityHour && g != keygate.GranularityDay {
		return nil, keygate.Errorf(keygate.EINVALID, "granularity must be \"hour\" or \"day\".")
	}
	w := d.Where()
	w.Add("granularity = ?", g)
	w.Add("bucket >= ?", w.time(Truncate(from, g)))
	w.Add("bucket < ?", w.time(to))
	if keyID != "" {
		w.Add("key_id = ?", keyID)
	}
	if accountID != "" {
		w.Add("account_id = ?", accountID)
	}
	return w, nil
}

// UsageGroupColumn is the usage_rollups column (or expression) that a
// group_by or by dimension reads; "" groups nothing.
var UsageGroupColumn = map[string]string{
	"":                     "''",
	keygate.GroupByRoute:   "route",
	keygate.GroupByStatus:  "CAST(status AS TEXT)",
	keygate.GroupByOutcome: "outcome",
	keygate.GroupByKey:     "key_id",
	keygate.GroupByAccount: "account_id",
}
