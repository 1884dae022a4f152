package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// TierRequest is the body of POST /v1/tiers.
type TierRequest struct {
	Name          string  `json:"name"`
	QuotaPerDay   int64   `json:"quota_per_day"`
	RatePerSecond float64 `json:"rate_per_second"`
	Burst         int64   `json:"burst"`
	// QuotaScope is keygate.QuotaScopeAccount (the default) or
	// keygate.QuotaScopeKey.
	QuotaScope string `json:"quota_scope,omitempty"`
}

// TierPatch is the body of PATCH /v1/tiers/{name}: the limits to change.
type TierPatch struct {
	QuotaPerDay   *int64   `json:"quota_per_day,omitempty"`
	RatePerSecond *float64 `json:"rate_per_second,omitempty"`
	Burst         *int64   `json:"burst,omitempty"`
	QuotaScope    *string  `json:"quota_scope,omitempty"`
}

func (s *Server) createTier(w http.ResponseWriter, r *http.Request) error {
	var req TierRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	t := &keygate.Tier{Name: req.Name, QuotaPerDay: req.QuotaPerDay, RatePerSecond: req.RatePerSecond, Burst: req.Burst, QuotaScope: req.QuotaScope}
	if err := s.Manage.CreateTier(r.Context(), actor(r), t); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, t)
}

func (s *Server) getTier(w http.ResponseWriter, r *http.Request) error {
	t, err := s.Store.Tier(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *Server) updateTier(w http.ResponseWriter, r *http.Request) error {
	var req TierPatch
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	t, err := s.Manage.UpdateTier(r.Context(), actor(r), r.PathValue("name"), func(t *keygate.Tier) {
		if req.QuotaPerDay != nil {
			t.QuotaPerDay = *req.QuotaPerDay
		}
		if req.RatePerSecond != nil {
			t.RatePerSecond = *req.RatePerSecond
		}
		if req.Burst != nil {
			t.Burst = *req.Burst
		}
		if req.QuotaScope != nil {
			t.QuotaScope = *req.QuotaScope
		}
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *Server) deleteTier(w http.ResponseWriter, r *http.Request) error {
	if err := s.Manage.DeleteTier(r.Context(), actor(r), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// AccountPatch is the body of PATCH /v1/accounts/{id}.
type AccountPatch struct {
	Name  *string `json:"name,omitempty"`
	Email *string `json:"email,omitempty"`
	Tier  *string `json:"tier,omitempty"`
}

func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request) error {
	var req AccountPatch
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	a, err := s.Manage.UpdateAccount(r.Context(), actor(r), r.PathValue("id"), func(a *keygate.Account) {
		if req.Name != nil {
			a.Name = *req.Name
		}
		if req.Email != nil {
			a.Email = *req.Email
		}
		if req.Tier != nil {
			a.Tier = *req.Tier
		}
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

// KeyPatch is the body of PATCH /v1/keys/{id}. An absent field is left as
// it is; null clears tier (the key inherits its account's), the limit
// overrides (the tier's apply), expires_at (never expires) and meta.
type KeyPatch struct {
	Name          Optional[string]          `json:"name,omitzero"`
	Tier          Optional[string]          `json:"tier,omitzero"`
	QuotaPerDay   Optional[int64]           `json:"quota_per_day,omitzero"`
	RatePerSecond Optional[float64]         `json:"rate_per_second,omitzero"`
	Burst         Optional[int64]           `json:"burst,omitzero"`
	Scopes        Optional[[]string]        `json:"scopes,omitzero"`
	IPAllow       Optional[[]string]        `json:"ip_allow,omitzero"`
	Meta          Optional[json.RawMessage] `json:"meta,omitzero"`
	ExpiresAt     Optional[time.Time]       `json:"expires_at,omitzero"`
	Enabled       Optional[bool]            `json:"enabled,omitzero"`
}

func (p *KeyPatch) apply(k *keygate.Key) {
	if p.Name.Set {
		k.Name = deref(p.Name.Value)
	}
	if p.Tier.Set {
		k.Tier = deref(p.Tier.Value)
	}
	if p.QuotaPerDay.Set {
		k.QuotaPerDay = p.QuotaPerDay.Value
	}
	if p.RatePerSecond.Set {
		k.RatePerSecond = p.RatePerSecond.Value
	}
	if p.Burst.Set {
		k.Burst = p.Burst.Value
	}
	if p.Scopes.Set {
		k.Scopes = deref(p.Scopes.Value)
	}
	if p.IPAllow.Set {
		k.IPAllow = deref(p.IPAllow.Value)
	}
	if p.Meta.Set {
		k.Meta = deref(p.Meta.Value)
	}
	if p.ExpiresAt.Set {
		k.ExpiresAt = p.ExpiresAt.Value
	}
	if p.Enabled.Set && p.Enabled.Value != nil {
		k.Enabled = *p.Enabled.Value
	}
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func (s *Server) updateKey(w http.ResponseWriter, r *http.Request) error {
	var req KeyPatch
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if req.Enabled.Set && req.Enabled.Value == nil {
		return keygate.Errorf(keygate.EINVALID, "enabled must be true or false, not null.")
	}
	k, err := s.Manage.UpdateKey(r.Context(), actor(r), r.PathValue("id"), req.apply)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.view(k, ""))
}

func (s *Server) setEnabled(enabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		k, err := s.Manage.UpdateKey(r.Context(), actor(r), r.PathValue("id"), func(k *keygate.Key) { k.Enabled = enabled })
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, s.view(k, ""))
	}
}

// RotateRequest is the body of POST /v1/keys/{id}/rotate.
type RotateRequest struct {
	// Grace is how long the old key keeps working, as a Go duration
	// ("24h", "90m"); "0s" or absent revokes it at once.
	Grace string `json:"grace,omitempty"`
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request) error {
	var req RotateRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	var grace time.Duration
	if req.Grace != "" {
		var err error
		if grace, err = time.ParseDuration(strings.TrimSpace(req.Grace)); err != nil {
			return keygate.Errorf(keygate.EINVALID, "grace %q is not a duration; use a Go duration such as \"24h\", \"90m\" or \"0s\".", req.Grace)
		}
	}
	k, plaintext, err := s.Manage.RotateKey(r.Context(), actor(r), r.PathValue("id"), grace)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, s.view(k, plaintext))
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := keygate.AuditFilter{
		Actor: q.Get("actor"), Action: q.Get("action"), TargetType: q.Get("target_type"), TargetID: q.Get("target_id"),
		Before: q.Get("cursor"), Limit: limit + 1,
	}
	if f.Since, err = queryTime(q.Get("since"), "since"); err != nil {
		return err
	}
	if f.Until, err = queryTime(q.Get("until"), "until"); err != nil {
		return err
	}
	evs, err := s.Store.AuditEvents(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page(evs, limit, func(e *keygate.AuditEvent) string { return e.ID }))
}

// queryTime parses an RFC 3339 time from the query; empty means none.
func queryTime(v, name string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, keygate.Errorf(keygate.EINVALID, "%s %q is not an RFC 3339 time such as 2026-11-28T00:00:00Z.", name, v)
	}
	return t, nil
}

// RootKeyRequest is the body of POST /v1/root-keys.
type RootKeyRequest struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
}

// RootKeyView is a root key as the API shows it, with the plaintext only in
// the answer that creates it.
type RootKeyView struct {
	*keygate.RootKey
	Plaintext string `json:"key,omitempty"`
}

func (s *Server) createRootKey(w http.ResponseWriter, r *http.Request) error {
	var req RootKeyRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	rk, plaintext, err := s.Manage.CreateRootKey(r.Context(), actor(r), req.Name, req.Permissions)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, RootKeyView{RootKey: rk, Plaintext: plaintext})
}

func (s *Server) listRootKeys(w http.ResponseWriter, r *http.Request) error {
	rks, err := s.Store.RootKeys(r.Context())
	if err != nil {
		return err
	}
	views := make([]RootKeyView, len(rks))
	for i, rk := range rks {
		views[i] = RootKeyView{RootKey: rk}
	}
	return writeJSON(w, http.StatusOK, List[RootKeyView]{Data: views})
}

func (s *Server) revokeRootKey(w http.ResponseWriter, r *http.Request) error {
	rk, err := s.Manage.RevokeRootKey(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, RootKeyView{RootKey: rk})
}
