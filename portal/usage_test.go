package portal

import (
	"context"
	"html"
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

// record stores usage events as the usage buffer would.
func (e *env) record(evs ...keygate.UsageEvent) {
	e.t.Helper()
	for i := range evs {
		// The buffer counts anonymous and throttled requests, untimed.
		if keygate.Aggregated(evs[i].KeyID, evs[i].Outcome) && evs[i].Count == 0 {
			evs[i].Count, evs[i].Latency = 1, 0
		}
	}
	if err := e.store.RecordUsage(context.Background(), evs); err != nil {
		e.t.Fatal(err)
	}
}

// firstKey returns the account's first key.
func (e *env) firstKey(a *keygate.Account) *keygate.Key {
	e.t.Helper()
	keys, err := e.store.Keys(context.Background(), keygate.KeyFilter{AccountID: a.ID})
	if err != nil || len(keys) == 0 {
		e.t.Fatalf("keys of %s: %v, %d", a.ID, err, len(keys))
	}
	return keys[0]
}

var (
	tagRE   = regexp.MustCompile(`<[^>]*>`)
	spaceRE = regexp.MustCompile(`\s+`)
)

// tableOf returns the HTML of the table with the id, or "".
func tableOf(page, id string) string {
	i := strings.Index(page, `id="`+id+`"`)
	if i < 0 {
		return ""
	}
	j := strings.Index(page[i:], "</table>")
	if j < 0 {
		return page[i:]
	}
	return page[i : i+j]
}

// rowText returns the text of the row of a table (by id) whose
// data-value (or data-class) is value, cells separated by single spaces,
// or "" when the table has no such row.
func rowText(page, table, attr, value string) string {
	t := tableOf(page, table)
	i := strings.Index(t, `<tr `+attr+`="`+html.EscapeString(value)+`">`)
	if i < 0 {
		return ""
	}
	j := strings.Index(t[i:], "</tr>")
	return strings.TrimSpace(spaceRE.ReplaceAllString(html.UnescapeString(tagRE.ReplaceAllString(t[i:i+j], " ")), " "))
}

// percentiles formats the p50/p95/p99 of latencies as the page does.
func percentiles(latencies ...time.Duration) string {
	var h keygate.LatencyHistogram
	for _, l := range latencies {
		h.Observe(l)
	}
	p := h.Percentiles()
	return formatMs(p.P50) + " " + formatMs(p.P95) + " " + formatMs(p.P99)
}

func TestUsagePage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("ada@example.com")
	a := e.account("ada@example.com")
	k := e.firstKey(a)
	now := e.clock.Now()
	ev := func(at time.Time, o keygate.Outcome, route string, status int, latency time.Duration) keygate.UsageEvent {
		return keygate.UsageEvent{Time: at, KeyID: k.ID, AccountID: a.ID, Outcome: o, Method: "GET", Route: route, Status: status, Latency: latency}
	}
	e.record(
		ev(now, keygate.OutcomeValid, "/weather", 200, 2*time.Millisecond),
		ev(now, keygate.OutcomeValid, "/weather", 200, 3*time.Millisecond),
		ev(now, keygate.OutcomeValid, "/alerts", 404, 40*time.Millisecond),
		ev(now, keygate.OutcomeRateLimited, "/weather", 429, 0),
		ev(now.AddDate(0, 0, -1), keygate.OutcomeValid, "/weather", 200, 500*time.Millisecond),
	)

	wantStatus(t, b.get("/portal/usage"), http.StatusOK, "usage page")
	page := b.last
	wantBody(t, page, "5 requests in the last 30 days", "chart description")
	wantBody(t, page, "Dec 1: 4 requests, 3 valid, 1 refused", "today's bar")
	wantBody(t, page, "Nov 30: 1 requests, 1 valid, 0 refused", "yesterday's bar")
	// Free tier: 1,000 per day for the account's live keys, 3 used.
	quotaRE := regexp.MustCompile(`All live keys \(tier free\)</td><td class="num">1,000</td><td class="num">3</td><td class="num"><strong>997</strong>`)
	if !quotaRE.MatchString(page) {
		t.Errorf("remaining quota: the page lacks 1,000 / 3 / 997:\n%s", page)
	}
	if n := strings.Count(page, `<rect class="valid"`); n != 2 {
		t.Errorf("got %d valid bars, want 2", n)
	}
	if n := strings.Count(page, `<rect class="refused"`); n != 1 {
		t.Errorf("got %d refused bars, want 1", n)
	}

	// Today, by outcome, route, status class and key.
	wantBody(t, page, "Today (UTC): 4 requests", "the period's heading")
	for code, want := range map[string]string{"valid": "3 Valid (75%) valid", "rate_limited": "1 Rate limited (25%) rate_limited"} {
		i := strings.Index(page, `<li data-outcome="`+code+`">`)
		if i < 0 {
			t.Errorf("outcomes: no %s:\n%s", code, page)
			continue
		}
		got := strings.TrimSpace(spaceRE.ReplaceAllString(tagRE.ReplaceAllString(page[i:i+strings.Index(page[i:], "</li>")], " "), " "))
		if got != want {
			t.Errorf("outcome %s: got %q, want %q", code, got, want)
		}
	}
	// Routes: requests, valid, rate limited, p50 p95 p99 of the timed ones.
	if got, want := rowText(page, "routes", "data-value", "/weather"), "/weather 3 2 1 "+percentiles(2*time.Millisecond, 3*time.Millisecond); got != want {
		t.Errorf("route /weather: got %q, want %q", got, want)
	}
	if got, want := rowText(page, "routes", "data-value", "/alerts"), "/alerts 1 1 0 "+percentiles(40*time.Millisecond); got != want {
		t.Errorf("route /alerts: got %q, want %q", got, want)
	}
	if i, j := strings.Index(page, `data-value="/weather"`), strings.Index(page, `data-value="/alerts"`); i < 0 || j < i {
		t.Errorf("routes: want the busiest first")
	}
	if got, want := rowText(page, "statuses", "data-class", "2xx"), "2xx Success 2 50% 200 × 2"; got != want {
		t.Errorf("status 2xx: got %q, want %q", got, want)
	}
	if got, want := rowText(page, "statuses", "data-class", "4xx"), "4xx Client error 2 50% 404 × 1 429 × 1"; got != want {
		t.Errorf("status 4xx: got %q, want %q", got, want)
	}
	if got := rowText(page, "keys", "data-value", k.ID); !strings.HasPrefix(got, k.Start+"…"+k.Last4+" "+k.Name+" 4 3 1 ") {
		t.Errorf("by key: got %q, want the key with 4 requests, 3 valid, 1 rate limited", got)
	}

	// Thirty days: yesterday's request counts too; the percentiles of
	// different days cannot be added, so none are shown.
	wantStatus(t, b.get("/portal/usage?period=30d"), http.StatusOK, "30 days")
	wantBody(t, b.last, "Last 30 days: 5 requests", "30 days")
	if !quotaRE.MatchString(b.last) {
		t.Errorf("remaining quota over 30 days: the page lacks 1,000 / 3 / 997:\n%s", b.last)
	}
	if got, want := rowText(b.last, "routes", "data-value", "/weather"), "/weather 4 3 1"; got != want {
		t.Errorf("route /weather over 30 days: got %q, want %q", got, want)
	}
	wantBody(t, b.last, "Tables without percentiles have them per UTC day only", "30 days")
	if strings.Contains(tableOf(b.last, "routes"), "p50") {
		t.Errorf("30 days: the route table shows percentiles")
	}
	wantStatus(t, b.get("/portal/usage?period=yesterday"), http.StatusOK, "yesterday")
	if got, want := rowText(b.last, "routes", "data-value", "/weather"), "/weather 1 1 "+percentiles(500*time.Millisecond); got != want {
		t.Errorf("route /weather yesterday: got %q, want %q", got, want)
	}
	wantStatus(t, b.get("/portal/usage?period=year"), http.StatusBadRequest, "an unknown period")
	wantBody(t, b.last, "period must be one of today, yesterday, 7d, 30d", "an unknown period")

	// One key's chart.
	wantStatus(t, b.get("/portal/usage?key="+url.QueryEscape(k.ID)), http.StatusOK, "one key's usage")
	wantBody(t, b.last, "Requests per day, key "+k.Start, "one key's usage")
	wantBody(t, b.last, "shares with your other live keys", "one key's quota note")
	wantBody(t, b.last, "4 requests with this key", "one key's usage")
	if !quotaRE.MatchString(b.last) {
		t.Errorf("remaining quota on one key's page: the page lacks 1,000 / 3 / 997:\n%s", b.last)
	}
	if got := rowText(b.last, "routes", "data-value", "/weather"); !strings.HasPrefix(got, "/weather 3 2 1 ") {
		t.Errorf("one key's routes: got %q", got)
	}
	wantStatus(t, b.get("/portal/usage?key=key_unknown"), http.StatusNotFound, "unknown key")

	// The operators' overview counts it too.
	ad := e.adminBrowser()
	wantStatus(t, ad.get("/portal/admin"), http.StatusOK, "overview")
	wantBody(t, ad.last, "Requests per day, all accounts", "overview")
	wantBody(t, ad.last, "5 requests in the last 30 days", "overview")
	wantBody(t, ad.last, "ada@example.com", "overview")
}

// TestUsagePageOwnAccountOnly: a developer's usage page never shows
// another account's routes, keys or counts, whichever period or key is
// asked for.
func TestUsagePageOwnAccountOnly(t *testing.T) {
	e := newEnv(t)
	ada, bob := e.browser(), e.browser()
	ada.signup("ada@example.com")
	bob.signup("bob@example.com")
	a, bo := e.account("ada@example.com"), e.account("bob@example.com")
	ak, bk := e.firstKey(a), e.firstKey(bo)
	now := e.clock.Now()
	e.record(
		keygate.UsageEvent{Time: now, KeyID: ak.ID, AccountID: a.ID, Outcome: keygate.OutcomeValid, Method: "GET", Route: "/ada-route", Status: 200, Latency: time.Millisecond},
		keygate.UsageEvent{Time: now, KeyID: bk.ID, AccountID: bo.ID, Outcome: keygate.OutcomeValid, Method: "GET", Route: "/bob-secret-route", Status: 503, Latency: time.Second},
		keygate.UsageEvent{Time: now, KeyID: bk.ID, AccountID: bo.ID, Outcome: keygate.OutcomeQuotaExceeded, Method: "POST", Route: "/bob-secret-route", Status: 429},
		keygate.UsageEvent{Time: now.AddDate(0, 0, -3), KeyID: bk.ID, AccountID: bo.ID, Outcome: keygate.OutcomeValid, Method: "GET", Route: "/bob-old-route", Status: 201},
		// Another key of Ada's, not on the page of her first key.
		keygate.UsageEvent{Time: now, KeyID: "key_adasecond", AccountID: a.ID, Outcome: keygate.OutcomeValid, Method: "GET", Route: "/ada-second-key-route", Status: 200, Latency: time.Millisecond},
		// Requests without a known key belong to no account.
		keygate.UsageEvent{Time: now, Outcome: keygate.OutcomeNotFound, Method: "GET", Route: "/anonymous-route", Status: 401},
	)
	for _, path := range []string{"/portal/usage", "/portal/usage?period=yesterday", "/portal/usage?period=7d", "/portal/usage?period=30d",
		"/portal/usage?key=" + url.QueryEscape(ak.ID) + "&period=30d"} {
		wantStatus(t, ada.get(path), http.StatusOK, path)
		for _, other := range []string{"bob-secret-route", "bob-old-route", "anonymous-route", bk.ID, bk.Start, bo.ID, "bob@example.com",
			`data-outcome="quota_exceeded"`, `data-outcome="not_found"`, `data-class="5xx"`, "<code>503</code>", "<code>201</code>"} {
			if strings.Contains(ada.last, other) {
				t.Errorf("%s: Ada's page shows %q of another account", path, other)
			}
		}
	}
	wantStatus(t, ada.get("/portal/usage"), http.StatusOK, "Ada's usage")
	wantBody(t, ada.last, "Today (UTC): 2 requests", "Ada's usage")
	for _, route := range []string{"/ada-route", "/ada-second-key-route"} {
		if rowText(ada.last, "routes", "data-value", route) == "" {
			t.Errorf("Ada's page lacks her route %s", route)
		}
	}
	wantStatus(t, ada.get("/portal/usage?key="+url.QueryEscape(ak.ID)), http.StatusOK, "Ada's first key")
	wantBody(t, ada.last, "Today (UTC): 1 requests with this key", "Ada's first key")
	if strings.Contains(ada.last, "ada-second-key-route") {
		t.Errorf("the page of Ada's first key shows her other key's route")
	}
	// Another account's key cannot be asked for.
	wantStatus(t, ada.get("/portal/usage?key="+url.QueryEscape(bk.ID)), http.StatusNotFound, "Bob's key on Ada's page")
	if strings.Contains(ada.last, "bob-secret-route") {
		t.Errorf("the refusal shows Bob's route")
	}
	// Bob sees his own.
	wantStatus(t, bob.get("/portal/usage?period=7d"), http.StatusOK, "Bob's usage")
	wantBody(t, bob.last, "Last 7 days: 3 requests", "Bob's usage")
	if got := rowText(bob.last, "routes", "data-value", "/bob-secret-route"); !strings.HasPrefix(got, "/bob-secret-route 2 1 1") {
		t.Errorf("Bob's route: got %q", got)
	}
	if strings.Contains(bob.last, "ada-route") {
		t.Errorf("Bob's page shows Ada's route")
	}
}

// TestAdminUsageOverview: the busiest accounts and keys of a period, and
// every account's requests by outcome, route and status class.
func TestAdminUsageOverview(t *testing.T) {
	e := newEnv(t)
	e.browser().signup("ada@example.com")
	e.browser().signup("bob@example.com")
	a, bo := e.account("ada@example.com"), e.account("bob@example.com")
	ak, bk := e.firstKey(a), e.firstKey(bo)
	now := e.clock.Now()
	var evs []keygate.UsageEvent
	for range 3 {
		evs = append(evs, keygate.UsageEvent{Time: now, KeyID: bk.ID, AccountID: bo.ID, Outcome: keygate.OutcomeValid, Method: "GET", Route: "/forecast", Status: 200, Latency: 8 * time.Millisecond})
	}
	evs = append(evs,
		keygate.UsageEvent{Time: now, KeyID: ak.ID, AccountID: a.ID, Outcome: keygate.OutcomeValid, Method: "GET", Route: "/weather", Status: 502, Latency: 2 * time.Second},
		keygate.UsageEvent{Time: now, Outcome: keygate.OutcomeMissingKey, Method: "GET", Route: "/weather", Status: 401},
		// Ada was busier three days ago.
		keygate.UsageEvent{Time: now.AddDate(0, 0, -3), KeyID: ak.ID, AccountID: a.ID, Outcome: keygate.OutcomeValid, Method: "GET", Route: "/weather", Status: 200, Count: 10},
	)
	e.record(evs...)

	ad := e.adminBrowser()
	wantStatus(t, ad.get("/portal/admin"), http.StatusOK, "overview")
	page := ad.last
	wantBody(t, page, "Today (UTC): 5 requests, all accounts", "overview")
	if got, want := rowText(page, "top-accounts", "data-value", bo.ID), "bob@example.com Ada · "+bo.ID+" 3 3 "+percentiles(8*time.Millisecond, 8*time.Millisecond, 8*time.Millisecond); got != want {
		t.Errorf("top account Bob: got %q, want %q", got, want)
	}
	if i, j := strings.Index(page, `data-value="`+bo.ID+`"`), strings.Index(page, `data-value="`+a.ID+`"`); i < 0 || j < i {
		t.Errorf("top accounts today: want Bob before Ada")
	}
	if got, want := rowText(page, "top-keys", "data-value", ak.ID), ak.Start+"…"+ak.Last4+" "+ak.Name+" · ada@example.com 1 1 "+percentiles(2*time.Second); got != want {
		t.Errorf("top key of Ada: got %q, want %q", got, want)
	}
	if strings.Contains(tableOf(page, "top-keys"), `data-value=""`) {
		t.Errorf("top keys: requests without a key are ranked")
	}
	if got, want := rowText(page, "routes", "data-value", "/weather"), "/weather 2 1 1 "+percentiles(2*time.Second); got != want {
		t.Errorf("route /weather: got %q, want %q", got, want)
	}
	if got := rowText(page, "statuses", "data-class", "5xx"); got != "5xx Server error 1 20% 502 × 1" {
		t.Errorf("status 5xx: got %q", got)
	}
	wantBody(t, page, "No key", "the missing_key outcome")

	// Over 7 days Ada is the busiest; the percentiles still cover the
	// whole period in the top tables.
	wantStatus(t, ad.get("/portal/admin?period=7d"), http.StatusOK, "7 days")
	if i, j := strings.Index(ad.last, `data-value="`+a.ID+`"`), strings.Index(ad.last, `data-value="`+bo.ID+`"`); i < 0 || j < i {
		t.Errorf("top accounts over 7 days: want Ada before Bob")
	}
	if got := rowText(ad.last, "top-accounts", "data-value", a.ID); !strings.HasPrefix(got, "ada@example.com Ada · "+a.ID+" 11 11 ") || !strings.HasSuffix(got, " s") {
		t.Errorf("top account Ada over 7 days: got %q, want 11 requests with percentiles", got)
	}
	if got, want := rowText(ad.last, "routes", "data-value", "/weather"), "/weather 12 11 1"; got != want {
		t.Errorf("route /weather over 7 days: got %q, want %q", got, want)
	}
	wantStatus(t, ad.get("/portal/admin?period=forever"), http.StatusBadRequest, "an unknown period")
}
