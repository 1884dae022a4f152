package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// InviteRequest is the body of POST /v1/invites.
type InviteRequest struct {
	Note string `json:"note,omitempty"`
	// ExpiresIn is a Go duration such as "72h"; empty means 7 days.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// InviteView is an invitation as the API shows it: the record, its status
// now, and — in the one answer that creates it — the code.
type InviteView struct {
	*keygate.Invite
	Status string `json:"status"`
	Code   string `json:"code,omitempty"`
}

func (s *Server) inviteView(inv *keygate.Invite, code string) InviteView {
	return InviteView{Invite: inv, Status: inv.Status(s.now()), Code: code}
}

func (s *Server) createInvite(w http.ResponseWriter, r *http.Request) error {
	var req InviteRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	var ttl time.Duration
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(strings.TrimSpace(req.ExpiresIn))
		if err != nil || d <= 0 {
			return keygate.Errorf(keygate.EINVALID, "expires_in must be a Go duration such as \"72h\".")
		}
		ttl = d
	}
	inv, code, err := s.Manage.CreateInvite(r.Context(), actor(r), req.Note, ttl)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, s.inviteView(inv, code))
}

func (s *Server) listInvites(w http.ResponseWriter, r *http.Request) error {
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	invs, err := s.Store.Invites(r.Context(), keygate.InviteFilter{Before: r.URL.Query().Get("cursor"), Limit: limit + 1})
	if err != nil {
		return err
	}
	views := make([]InviteView, len(invs))
	for i, inv := range invs {
		views[i] = s.inviteView(inv, "")
	}
	return writeJSON(w, http.StatusOK, page(views, limit, func(v InviteView) string { return v.ID }))
}

func (s *Server) getInvite(w http.ResponseWriter, r *http.Request) error {
	inv, err := s.Store.Invite(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.inviteView(inv, ""))
}

func (s *Server) revokeInvite(w http.ResponseWriter, r *http.Request) error {
	inv, err := s.Manage.RevokeInvite(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.inviteView(inv, ""))
}
