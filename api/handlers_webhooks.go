package api

import (
	"net/http"

	"github.com/keygate/keygate"
)

// WebhookRequest is the body of POST /v1/webhooks.
type WebhookRequest struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description,omitempty"`
}

// WebhookPatch is the body of PATCH /v1/webhooks/{id}: the fields to
// change.
type WebhookPatch struct {
	URL         *string   `json:"url,omitempty"`
	Events      *[]string `json:"events,omitempty"`
	Description *string   `json:"description,omitempty"`
	Enabled     *bool     `json:"enabled,omitempty"`
}

// WebhookSecretView is an endpoint with its signing secret: the answer of
// POST /v1/webhooks and of rotate-secret, the only times it is shown.
type WebhookSecretView struct {
	*keygate.Webhook
	Secret string `json:"secret"`
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) error {
	var req WebhookRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	h := &keygate.Webhook{URL: req.URL, Events: req.Events, Description: req.Description}
	secret, err := s.Manage.CreateWebhook(r.Context(), actor(r), h)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, WebhookSecretView{Webhook: h, Secret: secret})
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	ws := s.Store
	hs, err := ws.Webhooks(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, List[*keygate.Webhook]{Data: hs})
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) error {
	ws := s.Store
	h, err := ws.Webhook(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) error {
	var req WebhookPatch
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	h, err := s.Manage.UpdateWebhook(r.Context(), actor(r), r.PathValue("id"), func(h *keygate.Webhook) {
		if req.URL != nil {
			h.URL = *req.URL
		}
		if req.Events != nil {
			h.Events = *req.Events
		}
		if req.Description != nil {
			h.Description = *req.Description
		}
		if req.Enabled != nil {
			h.Enabled = *req.Enabled
		}
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := s.Manage.DeleteWebhook(r.Context(), actor(r), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) error {
	h, secret, err := s.Manage.RotateWebhookSecret(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, WebhookSecretView{Webhook: h, Secret: secret})
}

func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request) error {
	ev, err := s.Manage.TestWebhook(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.wakeWebhooks()
	return writeJSON(w, http.StatusAccepted, ev)
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	ws := s.Store
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := keygate.DeliveryFilter{WebhookID: r.PathValue("id"), Status: q.Get("status"), Before: q.Get("cursor"), Limit: limit + 1}
	switch f.Status {
	case "", keygate.DeliveryPending, keygate.DeliverySucceeded, keygate.DeliveryFailed:
	default:
		return keygate.Errorf(keygate.EINVALID, "status must be one of pending, succeeded, failed.")
	}
	if _, err := ws.Webhook(r.Context(), f.WebhookID); err != nil {
		return err
	}
	ds, err := ws.WebhookDeliveries(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page(ds, limit, func(d *keygate.WebhookDelivery) string { return d.ID }))
}

func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) error {
	d, err := s.Manage.Redeliver(r.Context(), r.PathValue("id"), r.PathValue("delivery_id"))
	if err != nil {
		return err
	}
	s.wakeWebhooks()
	return writeJSON(w, http.StatusAccepted, d)
}

func (s *Server) wakeWebhooks() {
	if s.Webhooks != nil {
		s.Webhooks.Wake()
	}
}
