package portal

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func TestBuildChart(t *testing.T) {
	today := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	buckets := []keygate.UsageBucket{
		{Start: today.AddDate(0, 0, -2), Total: 500, Counts: map[string]int64{"valid": 400, "rate_limited": 100}},
		{Start: today, Total: 1, Counts: map[string]int64{"valid": 1}},
		{Start: today.AddDate(0, 0, -40), Total: 9, Counts: map[string]int64{"valid": 9}}, // outside the 30 days
	}
	c := buildChart("t", buckets, today, 1000, "quota")
	if len(c.Bars) != chartDays {
		t.Fatalf("got %d bars, want %d", len(c.Bars), chartDays)
	}
	if c.Total != 501 {
		t.Errorf("total: got %d, want 501", c.Total)
	}
	// The axis reaches the quota: 1000 is the top, so the quota line is at
	// the top of the plot and 500 requests reach half way.
	if c.QuotaY != chartTop {
		t.Errorf("quota line: got y=%v, want %v", c.QuotaY, float64(chartTop))
	}
	plotH := float64(c.Base - chartTop)
	b := c.Bars[chartDays-3]
	if got := b.ValidH + b.RefuseH; got != plotH/2 {
		t.Errorf("500 of 1000: got height %v, want %v", got, plotH/2)
	}
	if b.RefuseY+b.RefuseH != b.ValidY {
		t.Errorf("refused part does not sit on the valid part: %+v", b)
	}
	// One request still shows.
	if last := c.Bars[chartDays-1]; last.ValidH < 2 || last.RefuseH != 0 {
		t.Errorf("a day with one request: got %+v, want a visible bar", last)
	}
	if empty := c.Bars[0]; empty.ValidH != 0 || empty.RefuseH != 0 {
		t.Errorf("a day without requests: got %+v, want no bar", empty)
	}
	if len(c.Days) != 2 || !c.Days[0].Day.Equal(today) {
		t.Errorf("table: got %+v, want today and the day before yesterday, newest first", c.Days)
	}
	if strings.Join(c.Outcomes, ",") != "valid,rate_limited" {
		t.Errorf("outcomes: got %v, want valid first", c.Outcomes)
	}
	if c.Ticks[len(c.Ticks)-1].Label != "1k" {
		t.Errorf("top tick: got %q, want 1k", c.Ticks[len(c.Ticks)-1].Label)
	}
	// Above the quota, the axis follows the traffic.
	c = buildChart("t", []keygate.UsageBucket{{Start: today, Total: 2400, Counts: map[string]int64{"valid": 1000, "quota_exceeded": 1400}}}, today, 1000, "q")
	if top := c.Ticks[len(c.Ticks)-1].Label; top != "5k" {
		t.Errorf("top tick over the quota: got %q, want 5k", top)
	}
	if c.QuotaY <= chartTop {
		t.Errorf("quota line: got y=%v, want it below the top", c.QuotaY)
	}
}

func TestNiceCeil(t *testing.T) {
	for n, want := range map[int64]int64{1: 4, 3: 4, 5: 8, 7: 8, 11: 12, 21: 50, 999: 1000, 1001: 2000, 100_000: 100_000, 250_000: 500_000} {
		if got := niceCeil(n); got != want {
			t.Errorf("niceCeil(%d): got %d, want %d", n, got, want)
		}
	}
}

func TestUsagePage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("ada@example.com")
	a := e.account("ada@example.com")
	keys, _ := e.store.Keys(context.Background(), keygate.KeyFilter{AccountID: a.ID})
	k := keys[0]
	now := e.clock.Now()
	var evs []keygate.UsageEvent
	for range 3 {
		evs = append(evs, keygate.UsageEvent{Time: now, KeyID: k.ID, AccountID: a.ID, Outcome: keygate.OutcomeValid, Method: "GET", Route: "/weather", Status: 200})
	}
	evs = append(evs,
		keygate.UsageEvent{Time: now, KeyID: k.ID, AccountID: a.ID, Outcome: keygate.OutcomeRateLimited, Method: "GET", Route: "/weather", Status: 429},
		keygate.UsageEvent{Time: now.AddDate(0, 0, -1), KeyID: k.ID, AccountID: a.ID, Outcome: keygate.OutcomeValid, Method: "GET", Route: "/weather", Status: 200},
	)
	if err := e.store.RecordUsage(context.Background(), evs); err != nil {
		t.Fatal(err)
	}

	wantStatus(t, b.get("/portal/usage"), http.StatusOK, "usage page")
	page := b.last
	wantBody(t, page, "5 requests in the last 30 days", "chart description")
	wantBody(t, page, "Dec 1: 4 requests, 3 valid, 1 refused", "today's bar")
	wantBody(t, page, "Nov 30: 1 requests, 1 valid, 0 refused", "yesterday's bar")
	wantBody(t, page, "rate_limited", "outcomes")
	// Free tier: 1,000 per day for the account's live keys, 3 used.
	if !regexp.MustCompile(`All live keys \(tier free\)</td><td class="num">1,000</td><td class="num">3</td><td class="num"><strong>997</strong>`).MatchString(page) {
		t.Errorf("remaining quota: the page lacks 1,000 / 3 / 997:\n%s", page)
	}
	if n := strings.Count(page, `<rect class="valid"`); n != 2 {
		t.Errorf("got %d valid bars, want 2", n)
	}
	if n := strings.Count(page, `<rect class="refused"`); n != 1 {
		t.Errorf("got %d refused bars, want 1", n)
	}

	// One key's chart.
	wantStatus(t, b.get("/portal/usage?key="+url.QueryEscape(k.ID)), http.StatusOK, "one key's usage")
	wantBody(t, b.last, "Requests per day, key "+k.Start, "one key's usage")
	wantBody(t, b.last, "shares with your other live keys", "one key's quota note")
	wantStatus(t, b.get("/portal/usage?key=key_unknown"), http.StatusNotFound, "unknown key")

	// The operators' overview counts it too.
	ad := e.adminBrowser()
	wantStatus(t, ad.get("/portal/admin"), http.StatusOK, "overview")
	wantBody(t, ad.last, "Requests per day, all accounts", "overview")
	wantBody(t, ad.last, "5 requests in the last 30 days", "overview")
	wantBody(t, ad.last, "ada@example.com", "overview")
}
