package manage

import (
	"context"
	"slices"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/webhook"
)

func webhookDetails(w *keygate.Webhook) map[string]any {
	return map[string]any{"url": w.URL, "events": w.Events, "description": w.Description, "enabled": w.Enabled}
}

// checkWebhook validates w, including the SSRF rule for its URL.
func (s *Service) checkWebhook(w *keygate.Webhook) error {
	if err := webhook.CheckURL(w.URL, s.AllowPrivateWebhooks); err != nil {
		return err
	}
	slices.Sort(w.Events)
	w.Events = slices.Compact(w.Events)
	return w.Validate()
}

// CreateWebhook registers an endpoint from w's URL, events and
// description, enabled, and returns its signing secret: the only time it
// is shown.
func (s *Service) CreateWebhook(ctx context.Context, actor string, w *keygate.Webhook) (string, error) {
	ws := s.Store
	if err := s.checkWebhook(w); err != nil {
		return "", err
	}
	var err error
	if w.Secret, err = webhook.NewSecret(); err != nil {
		return "", err
	}
	now := s.now()
	w.ID = keygate.NewID(keygate.PrefixWebhook, now)
	w.Enabled = true
	w.CreatedAt, w.UpdatedAt = now, now
	ev := s.event(actor, keygate.ActionWebhookCreated, keygate.TargetWebhook, w.ID, webhookDetails(w))
	if err := ws.CreateWebhook(ctx, w, ev); err != nil {
		return "", err
	}
	return w.Secret, nil
}

// UpdateWebhook applies change to the stored endpoint, validates and
// stores it.
func (s *Service) UpdateWebhook(ctx context.Context, actor, id string, change func(*keygate.Webhook)) (*keygate.Webhook, error) {
	ws := s.Store
	s.webhookMu.Lock()
	defer s.webhookMu.Unlock()
	w, err := ws.Webhook(ctx, id)
	if err != nil {
		return nil, err
	}
	change(w)
	if err := s.checkWebhook(w); err != nil {
		return nil, err
	}
	w.UpdatedAt = s.now()
	ev := s.event(actor, keygate.ActionWebhookUpdated, keygate.TargetWebhook, w.ID, webhookDetails(w))
	if err := ws.UpdateWebhook(ctx, w, ev); err != nil {
		return nil, err
	}
	return w, nil
}

// RotateWebhookSecret gives the endpoint a new signing secret, used from
// the next attempt on, and returns it: the only time it is shown.
func (s *Service) RotateWebhookSecret(ctx context.Context, actor, id string) (*keygate.Webhook, string, error) {
	ws := s.Store
	secret, err := webhook.NewSecret()
	if err != nil {
		return nil, "", err
	}
	s.webhookMu.Lock()
	defer s.webhookMu.Unlock()
	w, err := ws.Webhook(ctx, id)
	if err != nil {
		return nil, "", err
	}
	w.Secret, w.UpdatedAt = secret, s.now()
	ev := s.event(actor, keygate.ActionWebhookSecretRotated, keygate.TargetWebhook, w.ID, nil)
	if err := ws.UpdateWebhook(ctx, w, ev); err != nil {
		return nil, "", err
	}
	return w, secret, nil
}

// DeleteWebhook deletes the endpoint and its delivery log.
func (s *Service) DeleteWebhook(ctx context.Context, actor, id string) error {
	ws := s.Store
	return ws.DeleteWebhook(ctx, id, s.event(actor, keygate.ActionWebhookDeleted, keygate.TargetWebhook, id, nil))
}

// TestWebhook queues a webhook.test event for the endpoint alone and
// returns it.
func (s *Service) TestWebhook(ctx context.Context, actor, id string) (*keygate.WebhookEvent, error) {
	ws := s.Store
	w, err := ws.Webhook(ctx, id)
	if err != nil {
		return nil, err
	}
	if !w.Enabled {
		return nil, keygate.Errorf(keygate.ECONFLICT, "Webhook %s is disabled; enable it (PATCH {\"enabled\": true}) to test it.", id)
	}
	ev, err := keygate.NewWebhookEvent(keygate.EventWebhookTest, s.now(), map[string]any{"webhook_id": id, "actor": actor})
	if err != nil {
		return nil, err
	}
	ev.EndpointID = id
	if _, err := ws.EnqueueWebhookEvents(ctx, []keygate.WebhookEvent{ev}); err != nil {
		return nil, err
	}
	return &ev, nil
}

// Redeliver queues the endpoint's delivery again, due now.
func (s *Service) Redeliver(ctx context.Context, webhookID, deliveryID string) (*keygate.WebhookDelivery, error) {
	ws := s.Store
	d, err := ws.WebhookDelivery(ctx, deliveryID)
	if err != nil {
		return nil, err
	}
	if d.WebhookID != webhookID {
		return nil, keygate.Errorf(keygate.ENOTFOUND, "Webhook %q has no delivery %q.", webhookID, deliveryID)
	}
	return ws.Redeliver(ctx, deliveryID, s.now())
}
