package portal

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// graces are the grace periods a rotation offers, in the order shown.
var graces = []struct{ Value, Label string }{
	{"0s", "none: the old key stops now"},
	{"1h", "1 hour"},
	{"24h", "24 hours"},
	{"168h", "7 days"},
}

// notices are the messages a redirect may ask a page to show, by code:
// a page never echoes text from its URL.
var notices = map[string]string{
	"revoked":  "The key was revoked. It is refused from now on.",
	"updated":  "Saved.",
	"deleted":  "The tier was deleted.",
	"disabled": "The account was disabled: its keys are refused and it is signed out.",
	"enabled":  "The account was enabled again.",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("notice")] }

// keyRow is a key as the keys pages list it.
type keyRow struct {
	*keygate.Key
	Status    string
	Tier      string // the key's own tier, or the account's
	Inherited bool   // the tier is the account's
	Until     *time.Time
}

func (s *Server) keyRow(k *keygate.Key, accountTier string, now time.Time) keyRow {
	row := keyRow{Key: k, Status: k.Status(now), Tier: k.Tier}
	if row.Tier == "" {
		row.Tier, row.Inherited = accountTier, true
	}
	if k.RevokedAt != nil && now.Before(*k.RevokedAt) {
		row.Until = k.RevokedAt // a rotated key in its grace period
	}
	return row
}

// keysData is the keys page.
type keysData struct {
	Keys   []keyRow
	Scopes []string // offered
	Graces any
}

func (s *Server) keysPageData(r *http.Request) (*page, error) {
	v := viewerFrom(r.Context())
	keys, err := s.Store.Keys(r.Context(), keygate.KeyFilter{AccountID: v.Account.ID, Limit: keygate.MaxPageSize})
	if err != nil {
		return nil, err
	}
	now := s.now()
	d := &keysData{Scopes: s.Scopes, Graces: graces}
	for _, k := range slices.Backward(keys) { // newest first
		d.Keys = append(d.Keys, s.keyRow(k, v.Account.Tier, now))
	}
	return &page{Title: "Your API keys", Nav: "keys", Data: d, Form: map[string]string{"env": "live"}}, nil
}

func (s *Server) keysPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.keysPageData(r)
	if err != nil {
		return err
	}
	p.Notice = notice(r)
	return s.render(w, r, http.StatusOK, "keys", p)
}

// newKeyView is a key shown once, right after it was made.
type newKeyView struct {
	Key       *keygate.Key
	Plaintext string
	Intro     string
	Old       *keygate.Key // the key a rotation replaced
}

// createKey issues a key to the signed-in account, through manage (so it
// is audited), and shows it once.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	v := viewerFrom(r.Context())
	p, err := s.keysPageData(r)
	if err != nil {
		return err
	}
	f := r.PostForm
	name := strings.TrimSpace(f.Get("name"))
	env := keygate.Env(f.Get("env"))
	scopes := f["scopes"]
	p.Form = map[string]string{"name": name, "env": string(env)}
	p.Errors = map[string]string{}
	if name == "" || len(name) > keygate.MaxKeyNameLen {
		p.Errors["name"] = "Give the key a name (at most 200 characters), such as the app that will use it."
	}
	if !env.Valid() {
		p.Errors["env"] = "Choose live or test."
	}
	for _, sc := range scopes {
		if !slices.Contains(s.Scopes, sc) {
			p.Errors["scopes"] = "Choose scopes from the list."
		}
	}
	if len(p.Errors) > 0 {
		return s.render(w, r, http.StatusBadRequest, "keys", p)
	}
	k := &keygate.Key{AccountID: v.Account.ID, Name: name, Env: env, Scopes: scopes}
	plaintext, err := s.Manage.CreateKey(r.Context(), v.actor(), k)
	if err != nil {
		return s.formFailed(w, r, "keys", p, "name", err)
	}
	return s.render(w, r, http.StatusCreated, "key_new", &page{
		Title: "New API key", Nav: "keys",
		Data: newKeyView{Key: k, Plaintext: plaintext, Intro: "Your new key is ready."},
	})
}

// ownKey returns the signed-in account's key named in the path; another
// account's key is as unknown as a missing one.
func (s *Server) ownKey(r *http.Request) (*keygate.Key, error) {
	v := viewerFrom(r.Context())
	id := r.PathValue("id")
	k, err := s.Store.Key(r.Context(), id)
	if err == nil && k.AccountID != v.Account.ID {
		err = keygate.Errorf(keygate.ENOTFOUND, "You have no key %s.", id)
	}
	return k, err
}

// rotateKey issues a replacement for one of the account's keys; the old
// key keeps working for the chosen grace period.
func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request) error {
	v := viewerFrom(r.Context())
	old, err := s.ownKey(r)
	if err != nil {
		return err
	}
	var grace time.Duration = -1
	for _, g := range graces {
		if g.Value == r.PostForm.Get("grace") {
			grace, _ = time.ParseDuration(g.Value)
		}
	}
	if grace < 0 {
		p, err := s.keysPageData(r)
		if err != nil {
			return err
		}
		p.Errors = map[string]string{"": "Choose a grace period from the list to rotate " + old.Start + "…" + old.Last4 + "."}
		return s.render(w, r, http.StatusBadRequest, "keys", p)
	}
	nk, plaintext, err := s.Manage.RotateKey(r.Context(), v.actor(), old.ID, grace)
	if err != nil {
		p, perr := s.keysPageData(r)
		if perr != nil {
			return perr
		}
		return s.formFailed(w, r, "keys", p, "", err)
	}
	intro := "The old key " + old.Start + "…" + old.Last4 + " stopped working now."
	if grace > 0 {
		intro = "The old key " + old.Start + "…" + old.Last4 + " keeps working until " + s.now().Add(grace).Format("2006-01-02 15:04 UTC") + "; move your apps to this one before then."
	}
	return s.render(w, r, http.StatusCreated, "key_new", &page{
		Title: "Rotated API key", Nav: "keys",
		Data: newKeyView{Key: nk, Plaintext: plaintext, Intro: intro, Old: old},
	})
}

// revokeForm asks for confirmation before revoking.
func (s *Server) revokeForm(w http.ResponseWriter, r *http.Request) error {
	k, err := s.ownKey(r)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "revoke", &page{Title: "Revoke a key", Nav: "keys",
		Data: revokeView{Key: s.keyRow(k, viewerFrom(r.Context()).Account.Tier, s.now()), Action: "/portal/keys/" + k.ID + "/revoke", Back: "/portal/keys"}})
}

type revokeView struct {
	Key          keyRow
	Action, Back string
	Account      *keygate.Account
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	v := viewerFrom(r.Context())
	k, err := s.ownKey(r)
	if err != nil {
		return err
	}
	if err := s.revoke(w, r, v, k, "/portal/keys"); err != nil {
		return err
	}
	return nil
}

// revoke revokes k through manage once the confirmation form came back,
// and sends the browser back to the list.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request, v *viewer, k *keygate.Key, back string) error {
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if r.PostForm.Get("confirm") != "yes" || len(reason) > 500 {
		msg := "Tick the box to confirm that the key should stop working."
		if len(reason) > 500 {
			msg = "Keep the reason to 500 characters."
		}
		return s.render(w, r, http.StatusBadRequest, "revoke", &page{Title: "Revoke a key", Nav: "keys",
			Errors: map[string]string{"confirm": msg}, Form: map[string]string{"reason": reason},
			Data: revokeView{Key: s.keyRow(k, "", s.now()), Action: r.URL.Path, Back: back}})
	}
	if reason == "" {
		reason = "revoked in the portal"
	}
	if _, err := s.Manage.RevokeKey(r.Context(), v.actor(), k.ID, reason); err != nil {
		return err
	}
	http.Redirect(w, r, back+"?notice=revoked", http.StatusSeeOther)
	return nil
}
