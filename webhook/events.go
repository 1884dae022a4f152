package webhook

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/keygate/keygate"
)

// Enqueuer stores webhook events that no write raises.
type Enqueuer interface {
	EnqueueWebhookEvents(ctx context.Context, evs []keygate.WebhookEvent) (int, error)
}

// ExpiryStore is what Expiry needs of the store.
type ExpiryStore interface {
	Enqueuer
	ExpiringKeys(ctx context.Context, from, to time.Time) ([]*keygate.Key, error)
}

// ExpiryWarnings are how long before a key's expiry key.expiring is
// raised, longest first.
var ExpiryWarnings = []time.Duration{7 * 24 * time.Hour, 24 * time.Hour}

// Expiry raises key.expiring for keys that expire within 7 days and within
// 1 day. Each warning of each key is raised once, even by several
// instances: the event's ID derives from the key, the warning and the
// expiry time (a new expiry warns again).
type Expiry struct {
	Store ExpiryStore
	// Interval is how often Run checks; zero means 10 minutes.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Check raises the warnings due at the current time and returns how many
// events it stored.
func (x *Expiry) Check(ctx context.Context) (int, error) {
	now := time.Now()
	if x.Now != nil {
		now = x.Now()
	}
	now = now.UTC()
	keys, err := x.Store.ExpiringKeys(ctx, now, now.Add(ExpiryWarnings[0]))
	if err != nil {
		return 0, err
	}
	var evs []keygate.WebhookEvent
	for _, k := range keys {
		left := k.ExpiresAt.Sub(now)
		// Only the nearest warning: a key made to live 12 hours gets the
		// 1-day warning, not the 7-day one as well.
		warn := ExpiryWarnings[0]
		for _, w := range ExpiryWarnings {
			if left <= w {
				warn = w
			}
		}
		days := int(warn / (24 * time.Hour))
		data := map[string]any{
			"key_id": k.ID, "account_id": k.AccountID, "name": k.Name, "start": k.Start,
			"expires_at": k.ExpiresAt.UTC(), "days_before": days,
		}
		ev, err := keygate.NewWebhookEventOnce(keygate.EventKeyExpiring, now, data,
			k.ID, strconv.Itoa(days), strconv.FormatInt(k.ExpiresAt.UnixMilli(), 10))
		if err != nil {
			return 0, err
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		return 0, nil
	}
	return x.Store.EnqueueWebhookEvents(ctx, evs)
}

// Run checks at once and then every Interval until ctx is done.
func (x *Expiry) Run(ctx context.Context) error {
	every := x.Interval
	if every <= 0 {
		every = 10 * time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := x.Check(ctx); err != nil && ctx.Err() == nil && x.Logger != nil {
			x.Logger.Warn("key expiry webhooks", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ThresholdEvent returns the quota.threshold event of q: "scope" says
// whether the account's quota (all its keys together) or the key's own
// was reached, "key_id" is the key whose request reached it. Its ID
// derives from what was counted, the UTC day and the percentage, so each
// is raised once a day however many instances, or keys of the account,
// see it.
func ThresholdEvent(q keygate.QuotaThreshold) (keygate.WebhookEvent, error) {
	day := q.Time.UTC().Format(time.DateOnly)
	scope, counter := q.Scope(), q.Counter
	if counter == "" {
		counter = q.KeyID
	}
	data := map[string]any{
		"scope": scope, "key_id": q.KeyID, "account_id": q.AccountID,
		"percent": q.Percent, "used": q.Used, "limit": q.Limit, "day": day,
	}
	return keygate.NewWebhookEventOnce(keygate.EventQuotaThreshold, q.Time, data, scope, counter, day, strconv.Itoa(q.Percent))
}

// Thresholds stores a quota.threshold event for every report from ch
// until ctx is done, taking what queued up meanwhile in one write. The
// engine's hot path only sends on ch; the store write happens here. A
// failed write is retried with the next report, and dropped after a few
// tries (the count passed its threshold; the next day counts afresh).
func Thresholds(ctx context.Context, ch <-chan keygate.QuotaThreshold, store Enqueuer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var pending []keygate.WebhookEvent
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case q := <-ch:
			pending = appendThreshold(pending, q, log)
		}
		// Take whatever else is queued, up to a batch.
	drain:
		for len(pending) < 500 {
			select {
			case q := <-ch:
				pending = appendThreshold(pending, q, log)
			default:
				break drain
			}
		}
		if len(pending) == 0 {
			continue
		}
		if _, err := store.EnqueueWebhookEvents(ctx, pending); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			log.Warn("quota threshold webhooks", "events", len(pending), "err", err)
			if failures < 5 && !errors.Is(err, context.Canceled) {
				continue
			}
		}
		pending, failures = pending[:0], 0
	}
}

func appendThreshold(pending []keygate.WebhookEvent, q keygate.QuotaThreshold, log *slog.Logger) []keygate.WebhookEvent {
	ev, err := ThresholdEvent(q)
	if err != nil {
		log.Warn("quota threshold webhook", "key", q.KeyID, "err", err)
		return pending
	}
	return append(pending, ev)
}
