package portal

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/keygate/keygate"
)

// quotaRow is one daily quota counter and what is left of it today.
type quotaRow struct {
	Label     string
	Quota     int64
	Used      int64
	Remaining int64
}

// usageData is the usage page.
type usageData struct {
	Keys     []*keygate.Key // for the key picker
	Selected string         // the key shown; "" for the whole account
	Chart    *chart
	Quotas   []quotaRow
	Reset    time.Time
	// The period's requests split by outcome, route, status class and
	// (for the whole account) key.
	Period   usagePeriod
	Periods  []periodOption
	Total    int64
	Outcomes []outcomeRow
	Routes   *groupTable
	Statuses []statusRow
	ByKey    *groupTable
}

// maxRouteRows is how many routes a usage page lists, the busiest first.
const maxRouteRows = 50

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// usagePage shows the account's usage per day against its quota, or one
// key's, with today's remaining quota, and the period's requests by
// outcome, route, status class and key. Every query names the account
// (and the key, which must be one of its own), so a developer sees only
// their own account's usage.
func (s *Server) usagePage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	v := viewerFrom(ctx)
	a := v.Account
	now := s.now()
	today := utcDay(now)
	period, periods, err := parsePeriod(r, today)
	if err != nil {
		return err
	}
	keys, err := s.Store.Keys(ctx, keygate.KeyFilter{AccountID: a.ID, Limit: keygate.MaxPageSize})
	if err != nil {
		return err
	}
	tiers, err := s.tierMap(ctx)
	if err != nil {
		return err
	}
	d := &usageData{Keys: keys, Reset: today.AddDate(0, 0, 1), Period: period, Periods: periods}
	scope := keygate.UsageQuery{AccountID: a.ID}
	accountTier := tierOr(tiers, a.Tier)
	quota, note := accountTier.QuotaPerDay, "the daily quota of all your live keys together (tier "+accountTier.Name+")"
	if accountTier.QuotaScope == keygate.QuotaScopeKey {
		note = "the daily quota of each key (tier " + accountTier.Name + ")"
	}
	title := "Requests per day, all keys"
	if id := r.URL.Query().Get("key"); id != "" {
		i := slices.IndexFunc(keys, func(k *keygate.Key) bool { return k.ID == id })
		if i < 0 {
			return keygate.Errorf(keygate.ENOTFOUND, "You have no key %s.", id)
		}
		k := keys[i]
		d.Selected, scope.KeyID = k.ID, k.ID
		title = "Requests per day, key " + k.Start + "…" + k.Last4
		t := tierOr(tiers, cmpOr(k.Tier, a.Tier))
		quota = t.QuotaPerDay
		switch {
		case k.QuotaPerDay != nil:
			quota, note = *k.QuotaPerDay, "this key's own daily quota"
		case t.QuotaScope == keygate.QuotaScopeKey:
			note = "the daily quota of this key (tier " + t.Name + ")"
		default:
			note = "the daily quota this key shares with your other live keys (tier " + t.Name + ")"
		}
	}
	q := scope
	q.From, q.To, q.Granularity = today.AddDate(0, 0, -(chartDays-1)), today.AddDate(0, 0, 1), keygate.GranularityDay
	buckets, err := s.Store.Usage(ctx, q)
	if err != nil {
		return err
	}
	d.Chart = buildChart(title, buckets, today, quota, note)

	outcomes, err := s.groupedUsage(ctx, scope, period, keygate.GroupByOutcome)
	if err != nil {
		return err
	}
	d.Outcomes = outcomeRows(outcomes)
	for _, o := range d.Outcomes {
		d.Total += o.Count
	}
	routes, err := s.groupedUsage(ctx, scope, period, keygate.GroupByRoute)
	if err != nil {
		return err
	}
	d.Routes = newGroupTable(routes, maxRouteRows, period.OneDay(), routeLabel).named("routes", "By route", "Route", true)
	statuses, err := s.groupedUsage(ctx, scope, period, keygate.GroupByStatus)
	if err != nil {
		return err
	}
	d.Statuses = statusRows(statuses)
	var usedToday []keygate.UsageGroup // the account's usage today, by key
	if d.Selected == "" {
		byKey, err := s.groupedUsage(ctx, scope, period, keygate.GroupByKey)
		if err != nil {
			return err
		}
		if period.From.Equal(today) && period.OneDay() {
			usedToday = byKey
		}
		d.ByKey = newGroupTable(byKey, 0, period.OneDay(), func(row *groupRow, g keygate.UsageGroup) {
			row.Link = "/portal/usage?key=" + url.QueryEscape(g.Value) + "&period=" + period.Value
			if i := slices.IndexFunc(keys, func(k *keygate.Key) bool { return k.ID == g.Value }); i >= 0 {
				row.Label, row.Hint = keys[i].Start+"…"+keys[i].Last4, keys[i].Name
			}
		}).named("keys", "By key", "Key", true)
	}

	if usedToday == nil {
		if usedToday, err = s.groupedUsage(ctx, keygate.UsageQuery{AccountID: a.ID}, usagePeriod{From: today, To: today.AddDate(0, 0, 1)}, keygate.GroupByKey); err != nil {
			return err
		}
	}
	valid := map[string]int64{}
	for _, g := range usedToday {
		valid[g.Value] = g.Counts[keygate.OutcomeKey(keygate.OutcomeValid)]
	}
	d.Quotas = quotaRows(a, keys, tiers, valid, now)
	return s.render(w, r, http.StatusOK, "usage", &page{Title: "Usage", Nav: "usage", Data: d})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Server) tierMap(ctx context.Context) (map[string]*keygate.Tier, error) {
	ts, err := s.Store.Tiers(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]*keygate.Tier, len(ts))
	for _, t := range ts {
		m[t.Name] = t
	}
	return m, nil
}

// tierOr returns the named tier, or free's as the engine falls back to.
func tierOr(tiers map[string]*keygate.Tier, name string) *keygate.Tier {
	if t := tiers[name]; t != nil {
		return t
	}
	if t := tiers[keygate.TierFree]; t != nil {
		return t
	}
	return keygate.DefaultTiers(time.Time{})[0]
}

// quotaRows works out today's quota counters as the engine keeps them
// (keygate.CounterID: the account's, one for its test keys, or a key's
// rotation lineage) from the valid requests recorded today per key
// (validToday, from the account's usage grouped by key), and what is left
// of each. Recorded usage trails the engine's counters by the usage
// flush interval.
func quotaRows(a *keygate.Account, keys []*keygate.Key, tiers map[string]*keygate.Tier, validToday map[string]int64, now time.Time) []quotaRow {
	type counter struct {
		row  quotaRow
		live bool // has a key that still works
	}
	counters := map[string]*counter{}
	var order []string
	for _, k := range keys {
		t := tierOr(tiers, cmpOr(k.Tier, a.Tier))
		own := k.QuotaPerDay != nil || k.RatePerSecond != nil || k.Burst != nil
		id := keygate.CounterID(t.QuotaScope, a.ID, k.Env, k.Lineage(), own)
		// The account's counters are shared by several keys; a lineage's
		// is named after its newest key that still works.
		shared := id == a.ID || k.Env == keygate.EnvTest && !own && t.QuotaScope != keygate.QuotaScopeKey
		c := counters[id]
		if c == nil {
			c = &counter{row: quotaRow{Quota: t.QuotaPerDay}}
			if shared {
				c.row.Label = "All live keys (tier " + t.Name + ")"
				if k.Env == keygate.EnvTest {
					c.row.Label = "All test keys (tier " + t.Name + ")"
				}
			}
			counters[id] = c
			order = append(order, id)
		}
		if k.QuotaPerDay != nil {
			c.row.Quota = *k.QuotaPerDay
		}
		if k.Status(now) != keygate.StatusRevoked {
			c.live = true
			if !shared {
				c.row.Label = "Key " + k.Start + "…" + k.Last4 + " (" + k.Name + ")"
			}
		}
		c.row.Used += validToday[k.ID]
	}
	var rows []quotaRow
	for _, id := range order {
		c := counters[id]
		if !c.live {
			continue
		}
		c.row.Remaining = max(c.row.Quota-c.row.Used, 0)
		rows = append(rows, c.row)
	}
	return rows
}
