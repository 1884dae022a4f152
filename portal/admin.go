package portal

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// adminPageSize is how many rows an admin list shows at once.
const adminPageSize = 50

// accountUsage is one account's line in the usage overview.
type accountUsage struct {
	Account     *keygate.Account
	Today       int64
	Last30      int64
	Refused30   int64
	QuotaPerDay int64
}

type adminUsageData struct {
	Chart    *chart
	Accounts []accountUsage
	Next     string // cursor of the next page of accounts
	// The period's requests across every account: the busiest accounts
	// and keys, and the split by outcome, route and status class.
	Period      usagePeriod
	Periods     []periodOption
	Total       int64
	Outcomes    []outcomeRow
	TopAccounts *groupTable
	TopKeys     *groupTable
	Routes      *groupTable
	Statuses    []statusRow
}

// adminTop is how many accounts and keys the overview ranks.
const adminTop = 10

// adminUsage is the operators' overview: requests per day across every
// account; for a period, the busiest accounts and keys and the requests
// by outcome, route and status class; and each account's usage (a page
// of accounts at a time).
func (s *Server) adminUsage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	today := utcDay(s.now())
	period, periods, err := parsePeriod(r, today)
	if err != nil {
		return err
	}
	from, to := today.AddDate(0, 0, -(chartDays-1)), today.AddDate(0, 0, 1)
	all, err := s.Store.Usage(ctx, keygate.UsageQuery{From: from, To: to, Granularity: keygate.GranularityDay})
	if err != nil {
		return err
	}
	d := &adminUsageData{Chart: buildChart("Requests per day, all accounts", all, today, 0, ""), Period: period, Periods: periods}
	if err := s.adminGroupedUsage(ctx, d); err != nil {
		return err
	}
	accounts, err := s.Store.Accounts(ctx, keygate.AccountFilter{After: r.URL.Query().Get("after"), Limit: adminPageSize})
	if err != nil {
		return err
	}
	tiers, err := s.tierMap(ctx)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		bs, err := s.Store.Usage(ctx, keygate.UsageQuery{AccountID: a.ID, From: from, To: to, Granularity: keygate.GranularityDay})
		if err != nil {
			return err
		}
		u := accountUsage{Account: a, QuotaPerDay: tierOr(tiers, a.Tier).QuotaPerDay}
		for _, b := range bs {
			u.Last30 += b.Total
			u.Refused30 += b.Total - b.Counts[keygate.OutcomeKey(keygate.OutcomeValid)]
			if b.Start.Equal(today) {
				u.Today = b.Total
			}
		}
		d.Accounts = append(d.Accounts, u)
	}
	if len(accounts) == adminPageSize {
		d.Next = accounts[len(accounts)-1].ID
	}
	return s.render(w, r, http.StatusOK, "admin_usage", &page{Title: "Usage across accounts", Nav: "admin", Data: d})
}

// adminGroupedUsage fills the overview's tables for d.Period: the top
// accounts and keys (GET /v1/usage/top's query, whose percentiles cover
// the whole period) and the requests by outcome, route and status class
// (GET /v1/usage?group_by=).
func (s *Server) adminGroupedUsage(ctx context.Context, d *adminUsageData) error {
	p := d.Period
	top := func(by string) ([]keygate.UsageGroup, error) {
		return s.Store.UsageTop(ctx, keygate.UsageTopQuery{By: by, From: p.From, To: p.To, Granularity: keygate.GranularityDay, Limit: adminTop})
	}
	accounts, err := top(keygate.GroupByAccount)
	if err != nil {
		return err
	}
	keys, err := top(keygate.GroupByKey)
	if err != nil {
		return err
	}
	// Name the ranked accounts and keys; an account or key that is gone
	// keeps its ID.
	names := map[string]*keygate.Account{}
	account := func(id string) (*keygate.Account, error) {
		if a, ok := names[id]; ok || id == "" {
			return a, nil
		}
		a, err := s.Store.Account(ctx, id)
		if err != nil && keygate.ErrorCode(err) != keygate.ENOTFOUND {
			return nil, err
		}
		names[id] = a
		return a, nil
	}
	for _, g := range accounts {
		if _, err := account(g.Value); err != nil {
			return err
		}
	}
	keyRecords := map[string]*keygate.Key{}
	for _, g := range keys {
		k, err := s.Store.Key(ctx, g.Value)
		if err != nil && keygate.ErrorCode(err) != keygate.ENOTFOUND {
			return err
		}
		keyRecords[g.Value] = k
		if _, err := account(g.AccountID); err != nil {
			return err
		}
	}
	d.TopAccounts = newGroupTable(accounts, 0, true, func(row *groupRow, g keygate.UsageGroup) {
		row.Link = "/portal/admin/accounts?q=" + url.QueryEscape(g.Value)
		if a := names[g.Value]; a != nil {
			row.Label, row.Hint = a.Email, a.Name+" · "+a.ID
		}
	}).named("top-accounts", "Busiest accounts", "Account", false)
	d.TopKeys = newGroupTable(keys, 0, true, func(row *groupRow, g keygate.UsageGroup) {
		row.Link = "/portal/admin/keys?q=" + url.QueryEscape(g.Value)
		if k := keyRecords[g.Value]; k != nil {
			row.Label, row.Hint = k.Start+"…"+k.Last4, k.Name
		}
		if a := names[g.AccountID]; a != nil {
			row.Hint = strings.TrimPrefix(row.Hint+" · "+a.Email, " · ")
		}
	}).named("top-keys", "Busiest keys", "Key", true)

	outcomes, err := s.groupedUsage(ctx, keygate.UsageQuery{}, p, keygate.GroupByOutcome)
	if err != nil {
		return err
	}
	d.Outcomes = outcomeRows(outcomes)
	for _, o := range d.Outcomes {
		d.Total += o.Count
	}
	routes, err := s.groupedUsage(ctx, keygate.UsageQuery{}, p, keygate.GroupByRoute)
	if err != nil {
		return err
	}
	d.Routes = newGroupTable(routes, maxRouteRows, p.OneDay(), routeLabel).named("routes", "By route", "Route", true)
	statuses, err := s.groupedUsage(ctx, keygate.UsageQuery{}, p, keygate.GroupByStatus)
	if err != nil {
		return err
	}
	d.Statuses = statusRows(statuses)
	return nil
}

type adminAccountsData struct {
	Accounts []*keygate.Account
	Tiers    []*keygate.Tier
	Query    string
	Next     string
}

// adminAccounts finds accounts by email or ID, or lists them a page at a
// time, optionally on one tier.
func (s *Server) adminAccounts(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	qs := r.URL.Query()
	q := strings.TrimSpace(qs.Get("q"))
	d := &adminAccountsData{Query: q}
	var err error
	if d.Tiers, err = s.Store.Tiers(ctx); err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(q, keygate.PrefixAccount):
		a, err := s.Store.Account(ctx, q)
		if err != nil && keygate.ErrorCode(err) != keygate.ENOTFOUND {
			return err
		}
		if a != nil {
			d.Accounts = []*keygate.Account{a}
		}
	case q != "":
		a, err := s.Store.AccountByEmail(ctx, q)
		if err != nil && keygate.ErrorCode(err) != keygate.ENOTFOUND {
			return err
		}
		if a != nil {
			d.Accounts = []*keygate.Account{a}
		}
	default:
		f := keygate.AccountFilter{Tier: qs.Get("tier"), After: qs.Get("after"), Limit: adminPageSize}
		if f.Tier != "" && !keygate.ValidTierName(f.Tier) {
			return keygate.Errorf(keygate.EINVALID, "Tier %q is not a valid tier name.", f.Tier)
		}
		if d.Accounts, err = s.Store.Accounts(ctx, f); err != nil {
			return err
		}
		if len(d.Accounts) == adminPageSize {
			d.Next = d.Accounts[len(d.Accounts)-1].ID
		}
	}
	p := &page{Title: "Accounts", Nav: "accounts", Data: d, Notice: notice(r)}
	if q != "" && len(d.Accounts) == 0 {
		p.Errors = map[string]string{"q": "No account has this email address or ID."}
		return s.render(w, r, http.StatusNotFound, "admin_accounts", p)
	}
	return s.render(w, r, http.StatusOK, "admin_accounts", p)
}

// backTo returns the admin page to go back to after a write: the one the
// form came from (a same-site path under /portal/admin), or fallback.
func backTo(r *http.Request, fallback string) string {
	b := r.PostForm.Get("back")
	u, err := url.Parse(b)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/portal/admin") {
		return fallback
	}
	return u.Path + "?" + u.RawQuery
}

// withNotice adds a notice code to a back address.
func withNotice(back, code string) string {
	u, _ := url.Parse(back)
	q := u.Query()
	q.Set("notice", code)
	u.RawQuery = q.Encode()
	return u.String()
}

func (s *Server) adminAccountTier(w http.ResponseWriter, r *http.Request) error {
	v := viewerFrom(r.Context())
	tier := r.PostForm.Get("tier")
	if _, err := s.Manage.UpdateAccount(r.Context(), v.actor(), r.PathValue("id"), func(a *keygate.Account) { a.Tier = tier }); err != nil {
		return err
	}
	http.Redirect(w, r, withNotice(backTo(r, "/portal/admin/accounts"), "updated"), http.StatusSeeOther)
	return nil
}

func (s *Server) adminAccountDisabled(disabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v := viewerFrom(r.Context())
		id := r.PathValue("id")
		if v.Account != nil && v.Account.ID == id && disabled {
			return keygate.Errorf(keygate.ECONFLICT, "You cannot disable the account you are signed in with.")
		}
		if _, err := s.Manage.SetAccountDisabled(r.Context(), v.actor(), id, disabled); err != nil {
			return err
		}
		code := "enabled"
		if disabled {
			code = "disabled"
		}
		http.Redirect(w, r, withNotice(backTo(r, "/portal/admin/accounts"), code), http.StatusSeeOther)
		return nil
	}
}

func (s *Server) adminAccountOperator(w http.ResponseWriter, r *http.Request) error {
	v := viewerFrom(r.Context())
	id := r.PathValue("id")
	operator := r.PostForm.Get("operator") == "yes"
	if v.Account != nil && v.Account.ID == id && !operator {
		return keygate.Errorf(keygate.ECONFLICT, "You cannot take away your own operator rights; ask another operator.")
	}
	if _, err := s.Manage.SetOperator(r.Context(), v.actor(), id, operator); err != nil {
		return err
	}
	http.Redirect(w, r, withNotice(backTo(r, "/portal/admin/accounts"), "updated"), http.StatusSeeOther)
	return nil
}

type adminKeysData struct {
	Keys      []keyRow
	Query     string
	AccountID string
	Next      string
}

// adminKeys finds keys by ID or by start (as displayed, "kg_live_4fQx"),
// or lists an account's keys, or all keys a page at a time.
func (s *Server) adminKeys(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	qs := r.URL.Query()
	q := strings.TrimSpace(qs.Get("q"))
	// Someone may paste the whole start…last4 as listed.
	q, _, _ = strings.Cut(q, "…")
	d := &adminKeysData{Query: q, AccountID: qs.Get("account")}
	var keys []*keygate.Key
	switch {
	case strings.HasPrefix(q, keygate.PrefixKey):
		k, err := s.Store.Key(ctx, q)
		if err != nil && keygate.ErrorCode(err) != keygate.ENOTFOUND {
			return err
		}
		if k != nil {
			keys = []*keygate.Key{k}
		}
	default:
		f := keygate.KeyFilter{Start: q, AccountID: d.AccountID, After: qs.Get("after"), Limit: adminPageSize}
		var err error
		if keys, err = s.Store.Keys(ctx, f); err != nil {
			return err
		}
		if len(keys) == adminPageSize {
			d.Next = keys[len(keys)-1].ID
		}
	}
	tiers := map[string]string{} // account ID → tier, for inherited tiers
	now := s.now()
	for _, k := range keys {
		t, ok := tiers[k.AccountID]
		if !ok {
			a, err := s.Store.Account(ctx, k.AccountID)
			if err != nil {
				return err
			}
			t, tiers[k.AccountID] = a.Tier, a.Tier
		}
		d.Keys = append(d.Keys, s.keyRow(k, t, now))
	}
	p := &page{Title: "All keys", Nav: "adminkeys", Data: d, Notice: notice(r)}
	if q != "" && len(keys) == 0 {
		p.Errors = map[string]string{"q": "No key has this ID or start. A start looks like kg_live_4fQx: the key's prefix, environment and first four secret characters."}
		return s.render(w, r, http.StatusNotFound, "admin_keys", p)
	}
	return s.render(w, r, http.StatusOK, "admin_keys", p)
}

func (s *Server) adminRevokeForm(w http.ResponseWriter, r *http.Request) error {
	k, err := s.Store.Key(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	a, err := s.Store.Account(r.Context(), k.AccountID)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "revoke", &page{Title: "Revoke a key", Nav: "adminkeys",
		Data: revokeView{Key: s.keyRow(k, a.Tier, s.now()), Account: a, Action: "/portal/admin/keys/" + k.ID + "/revoke", Back: "/portal/admin/keys"}})
}

func (s *Server) adminRevokeKey(w http.ResponseWriter, r *http.Request) error {
	k, err := s.Store.Key(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.revoke(w, r, viewerFrom(r.Context()), k, "/portal/admin/keys")
}

func (s *Server) tiersPage(r *http.Request) (*page, error) {
	tiers, err := s.Store.Tiers(r.Context())
	if err != nil {
		return nil, err
	}
	return &page{Title: "Tiers", Nav: "tiers", Data: tiers, Notice: notice(r),
		Form: map[string]string{"quota_scope": keygate.QuotaScopeAccount}}, nil
}

func (s *Server) adminTiers(w http.ResponseWriter, r *http.Request) error {
	p, err := s.tiersPage(r)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "admin_tiers", p)
}

// tierForm reads a tier's limits from a form; a field that is not a number
// is reported under its name, prefixed with prefix.
func tierForm(f url.Values, t *keygate.Tier, prefix string) map[string]string {
	errs := map[string]string{}
	var err error
	if t.QuotaPerDay, err = strconv.ParseInt(strings.TrimSpace(f.Get("quota_per_day")), 10, 64); err != nil {
		errs[prefix+"quota_per_day"] = "Enter a whole number of requests per day."
	}
	if t.RatePerSecond, err = strconv.ParseFloat(strings.TrimSpace(f.Get("rate_per_second")), 64); err != nil {
		errs[prefix+"rate_per_second"] = "Enter requests per second, such as 5 or 0.5."
	}
	if t.Burst, err = strconv.ParseInt(strings.TrimSpace(f.Get("burst")), 10, 64); err != nil {
		errs[prefix+"burst"] = "Enter a whole number of requests."
	}
	t.QuotaScope = f.Get("quota_scope")
	return errs
}

func (s *Server) adminCreateTier(w http.ResponseWriter, r *http.Request) error {
	p, err := s.tiersPage(r)
	if err != nil {
		return err
	}
	f := r.PostForm
	p.Form = map[string]string{"name": f.Get("name"), "quota_per_day": f.Get("quota_per_day"),
		"rate_per_second": f.Get("rate_per_second"), "burst": f.Get("burst"), "quota_scope": f.Get("quota_scope")}
	t := &keygate.Tier{Name: strings.TrimSpace(f.Get("name"))}
	if p.Errors = tierForm(f, t, ""); len(p.Errors) > 0 {
		return s.render(w, r, http.StatusBadRequest, "admin_tiers", p)
	}
	if err := s.Manage.CreateTier(r.Context(), viewerFrom(r.Context()).actor(), t); err != nil {
		return s.formFailed(w, r, "admin_tiers", p, tierErrorField(err, ""), err)
	}
	http.Redirect(w, r, "/portal/admin/tiers?notice=updated", http.StatusSeeOther)
	return nil
}

func (s *Server) adminUpdateTier(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	p, err := s.tiersPage(r)
	if err != nil {
		return err
	}
	var t keygate.Tier
	prefix := name + ":"
	if p.Errors = tierForm(r.PostForm, &t, prefix); len(p.Errors) > 0 {
		return s.render(w, r, http.StatusBadRequest, "admin_tiers", p)
	}
	_, err = s.Manage.UpdateTier(r.Context(), viewerFrom(r.Context()).actor(), name, func(cur *keygate.Tier) {
		cur.QuotaPerDay, cur.RatePerSecond, cur.Burst, cur.QuotaScope = t.QuotaPerDay, t.RatePerSecond, t.Burst, t.QuotaScope
	})
	if err != nil {
		return s.formFailed(w, r, "admin_tiers", p, tierErrorField(err, prefix), err)
	}
	http.Redirect(w, r, "/portal/admin/tiers?notice=updated", http.StatusSeeOther)
	return nil
}

// adminDeleteTier deletes a tier that no account or key uses, once the
// box is ticked.
func (s *Server) adminDeleteTier(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	p, err := s.tiersPage(r)
	if err != nil {
		return err
	}
	field := name + ":delete"
	if r.PostForm.Get("confirm") != "yes" {
		return s.formFailed(w, r, "admin_tiers", p, field, keygate.Errorf(keygate.EINVALID, "Tick the box to confirm the deletion of %s.", name))
	}
	if err := s.Manage.DeleteTier(r.Context(), viewerFrom(r.Context()).actor(), name); err != nil {
		return s.formFailed(w, r, "admin_tiers", p, field, err)
	}
	http.Redirect(w, r, "/portal/admin/tiers?notice=deleted", http.StatusSeeOther)
	return nil
}

// tierErrorField picks the form field a tier validation error is about.
func tierErrorField(err error, prefix string) string {
	msg := keygate.ErrorMessage(err)
	for _, f := range []string{"quota_per_day", "rate_per_second", "burst", "quota_scope"} {
		if strings.Contains(msg, f) {
			return prefix + f
		}
	}
	if prefix == "" {
		return "name"
	}
	return prefix + "quota_per_day"
}

type adminAuditData struct {
	Events []*keygate.AuditEvent
	Next   string // the address of the next page, filters kept
}

// adminAudit lists audit events, newest first, filtered by actor, action,
// target and day range.
func (s *Server) adminAudit(w http.ResponseWriter, r *http.Request) error {
	qs := r.URL.Query()
	f := keygate.AuditFilter{
		Actor: strings.TrimSpace(qs.Get("actor")), Action: strings.TrimSpace(qs.Get("action")),
		TargetType: strings.TrimSpace(qs.Get("target_type")), TargetID: strings.TrimSpace(qs.Get("target_id")),
		Before: qs.Get("before"), Limit: adminPageSize,
	}
	p := &page{Title: "Audit log", Nav: "audit", Form: map[string]string{
		"actor": f.Actor, "action": f.Action, "target_type": f.TargetType, "target_id": f.TargetID,
		"since": qs.Get("since"), "until": qs.Get("until"),
	}}
	errs := map[string]string{}
	if v := qs.Get("since"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			errs["since"] = "Enter a date as 2026-12-01."
		}
		f.Since = t
	}
	if v := qs.Get("until"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			errs["until"] = "Enter a date as 2026-12-01."
		}
		f.Until = t.AddDate(0, 0, 1) // the whole day
	}
	d := &adminAuditData{}
	p.Data = d
	if len(errs) > 0 {
		p.Errors = errs
		return s.render(w, r, http.StatusBadRequest, "admin_audit", p)
	}
	evs, err := s.Store.AuditEvents(r.Context(), f)
	if err != nil {
		return s.formFailed(w, r, "admin_audit", p, "", err)
	}
	d.Events = evs
	if len(evs) == adminPageSize {
		next := url.Values{}
		for k, v := range p.Form {
			if v != "" {
				next.Set(k, v)
			}
		}
		next.Set("before", evs[len(evs)-1].ID)
		d.Next = "/portal/admin/audit?" + next.Encode()
	}
	return s.render(w, r, http.StatusOK, "admin_audit", p)
}
