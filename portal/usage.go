package portal

import (
	"context"
	"net/http"
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
	Today    []outcomeCount // today's requests by outcome
	Reset    time.Time
}

type outcomeCount struct {
	Outcome string
	Count   int64
}

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// usagePage shows the account's usage per day against its quota, or one
// key's, with today's remaining quota and the outcomes.
func (s *Server) usagePage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	v := viewerFrom(ctx)
	a := v.Account
	keys, err := s.Store.Keys(ctx, keygate.KeyFilter{AccountID: a.ID, Limit: keygate.MaxPageSize})
	if err != nil {
		return err
	}
	tiers, err := s.tierMap(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	today := utcDay(now)
	d := &usageData{Keys: keys, Reset: today.AddDate(0, 0, 1)}
	q := keygate.UsageQuery{AccountID: a.ID, From: today.AddDate(0, 0, -(chartDays - 1)), To: today.AddDate(0, 0, 1), Granularity: keygate.GranularityDay}
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
		d.Selected, q.AccountID, q.KeyID = k.ID, "", k.ID
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
	buckets, err := s.Store.Usage(ctx, q)
	if err != nil {
		return err
	}
	d.Chart = buildChart(title, buckets, today, quota, note)
	for _, b := range buckets {
		if b.Start.Equal(today) {
			for o, n := range b.Counts {
				d.Today = append(d.Today, outcomeCount{o, n})
			}
		}
	}
	slices.SortFunc(d.Today, func(x, y outcomeCount) int { return int(y.Count - x.Count) })
	if d.Quotas, err = s.quotaRows(ctx, a, keys, tiers, now); err != nil {
		return err
	}
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
// rotation lineage) from the valid requests recorded today, and what is
// left of each. Recorded usage trails the engine's counters by the usage
// flush interval.
func (s *Server) quotaRows(ctx context.Context, a *keygate.Account, keys []*keygate.Key, tiers map[string]*keygate.Tier, now time.Time) ([]quotaRow, error) {
	today := utcDay(now)
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
		if k.LastUsedAt == nil || k.LastUsedAt.Before(today) {
			continue // nothing today: spare the query
		}
		bs, err := s.Store.Usage(ctx, keygate.UsageQuery{KeyID: k.ID, From: today, To: today.AddDate(0, 0, 1), Granularity: keygate.GranularityDay})
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			c.row.Used += b.Counts[keygate.OutcomeKey(keygate.OutcomeValid)]
		}
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
	return rows, nil
}
