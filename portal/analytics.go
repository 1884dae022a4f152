package portal

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// The usage pages split a period's requests by outcome, route, status and
// key (or rank keys and accounts) with the calls GET /v1/usage?group_by=
// and GET /v1/usage/top make: Store.Usage and Store.UsageTop on the daily
// rollups.

// usagePeriod is the span the grouped tables cover: whole UTC days ending
// with today's, or yesterday alone.
type usagePeriod struct {
	Value    string // the period parameter
	Label    string
	From, To time.Time
}

// usagePeriods are the periods the pages offer, the default first.
var usagePeriods = []struct {
	Value, Label string
	start, end   int // days relative to today: [start, end)
}{
	{"today", "Today (UTC)", 0, 1},
	{"yesterday", "Yesterday (UTC)", -1, 0},
	{"7d", "Last 7 days", -6, 1},
	{"30d", "Last 30 days", -29, 1},
}

// periodOption is one choice of a page's period picker.
type periodOption struct {
	Value, Label string
	Selected     bool
}

// parsePeriod reads the period parameter of r; empty means today.
func parsePeriod(r *http.Request, today time.Time) (usagePeriod, []periodOption, error) {
	v := r.URL.Query().Get("period")
	if v == "" {
		v = usagePeriods[0].Value
	}
	var p usagePeriod
	var opts []periodOption
	var names []string
	for _, o := range usagePeriods {
		names = append(names, o.Value)
		opts = append(opts, periodOption{Value: o.Value, Label: o.Label, Selected: o.Value == v})
		if o.Value == v {
			p = usagePeriod{Value: o.Value, Label: o.Label, From: today.AddDate(0, 0, o.start), To: today.AddDate(0, 0, o.end)}
		}
	}
	if p.Value == "" {
		return p, nil, keygate.Errorf(keygate.EINVALID, "period must be one of %s.", strings.Join(names, ", "))
	}
	return p, opts, nil
}

// OneDay reports whether the period is a single UTC day: the rollups keep
// one latency histogram per day, so only then are the percentiles of a
// group those of the whole period.
func (p usagePeriod) OneDay() bool { return p.To.Sub(p.From) <= 24*time.Hour }

// groupedUsage asks the store for q's usage over p, grouped by groupBy,
// and sums each group over the period's days, the largest first. The
// latency percentiles are kept when the period is one day (its one
// bucket's); across days they cannot be added and are left out.
func (s *Server) groupedUsage(ctx context.Context, q keygate.UsageQuery, p usagePeriod, groupBy string) ([]keygate.UsageGroup, error) {
	q.From, q.To, q.Granularity, q.GroupBy = p.From, p.To, keygate.GranularityDay, groupBy
	buckets, err := s.Store.Usage(ctx, q)
	if err != nil {
		return nil, err
	}
	return sumGroups(buckets, p.OneDay()), nil
}

// sumGroups adds up the groups of buckets by value; withLatency keeps the
// percentiles, which are right only when there is one bucket.
func sumGroups(buckets []keygate.UsageBucket, withLatency bool) []keygate.UsageGroup {
	if len(buckets) == 1 && withLatency {
		return buckets[0].Groups
	}
	byValue := map[string]*keygate.UsageGroup{}
	var out []keygate.UsageGroup
	var order []string
	for _, b := range buckets {
		for _, g := range b.Groups {
			sum := byValue[g.Value]
			if sum == nil {
				sum = &keygate.UsageGroup{Value: g.Value, AccountID: g.AccountID, Counts: map[string]int64{}}
				byValue[g.Value] = sum
				order = append(order, g.Value)
			}
			sum.Total += g.Total
			for o, n := range g.Counts {
				sum.Counts[o] += n
			}
		}
	}
	for _, v := range order {
		out = append(out, *byValue[v])
	}
	slices.SortFunc(out, func(a, b keygate.UsageGroup) int {
		return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.Value, b.Value))
	})
	return out
}

// outcomeLabels name the outcomes for people; the code is shown beside.
var outcomeLabels = map[string]string{
	"valid":              "Valid",
	"missing_key":        "No key",
	"key_in_query":       "Key in the URL",
	"malformed":          "Malformed key",
	"not_found":          "Unknown key",
	"revoked":            "Revoked key",
	"expired":            "Expired key",
	"disabled":           "Disabled",
	"ip_not_allowed":     "IP address not allowed",
	"insufficient_scope": "Missing scope",
	"rate_limited":       "Rate limited",
	"quota_exceeded":     "Quota exceeded",
	"too_many_failures":  "Too many failed keys",
}

func outcomeLabel(code string) string {
	if l, ok := outcomeLabels[code]; ok {
		return l
	}
	return code
}

// outcomeOrder sorts outcome codes as the checks run: valid first.
func outcomeOrder(a, b string) int {
	rank := func(c string) int {
		for i, o := range keygate.Outcomes {
			if keygate.OutcomeKey(o) == c {
				return i
			}
		}
		return len(keygate.Outcomes)
	}
	return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b))
}

// outcomeRow is one outcome's line: how many requests had it.
type outcomeRow struct {
	Code, Label string
	Count       int64
	Share       string // of all requests in the period, "42%"
}

// outcomeRows turns the groups of group_by=outcome into rows, in the
// order the checks run.
func outcomeRows(groups []keygate.UsageGroup) []outcomeRow {
	var total int64
	for _, g := range groups {
		total += g.Total
	}
	var rows []outcomeRow
	for _, g := range groups {
		rows = append(rows, outcomeRow{Code: g.Value, Label: outcomeLabel(g.Value), Count: g.Total, Share: share(g.Total, total)})
	}
	slices.SortFunc(rows, func(a, b outcomeRow) int { return outcomeOrder(a.Code, b.Code) })
	return rows
}

// share writes n of total as a whole percentage, "<1%" for a sliver.
func share(n, total int64) string {
	if total <= 0 {
		return "0%"
	}
	pct := float64(n) * 100 / float64(total)
	if n > 0 && pct < 1 {
		return "<1%"
	}
	return strconv.FormatFloat(pct, 'f', 0, 64) + "%"
}

// groupTable is a table of groups (routes, keys, accounts) with a column
// per outcome that occurs and the latency percentiles.
type groupTable struct {
	ID      string // the table's id; its heading is ID-heading
	Heading string
	Column  string // the first column's header: Route, Key, Account
	Mono    bool   // the first column holds codes (routes, key starts)

	Outcomes []outcomeCol
	Rows     []groupRow
	More     int64 // rows left out, past the table's limit
	MoreN    int64 // their requests
	Latency  bool  // the percentiles are shown (a one-day period)
}

type outcomeCol struct{ Code, Label string }

type groupRow struct {
	Value  string // the route, key or account ID
	Label  string // what to show for it
	Hint   string // a second line: a key's name, an account's name
	Link   string // where to find more, if anywhere
	Total  int64
	Counts []int64 // by the table's Outcomes
	Lat    *keygate.LatencyPercentiles
}

// newGroupTable lays groups out in a table of at most limit rows; label,
// when not nil, fills each row's Label, Hint and Link.
func newGroupTable(groups []keygate.UsageGroup, limit int, latency bool, label func(*groupRow, keygate.UsageGroup)) *groupTable {
	t := &groupTable{Latency: latency}
	seen := map[string]bool{}
	for _, g := range groups {
		for o, n := range g.Counts {
			if n > 0 && !seen[o] {
				seen[o] = true
				t.Outcomes = append(t.Outcomes, outcomeCol{Code: o, Label: outcomeLabel(o)})
			}
		}
	}
	slices.SortFunc(t.Outcomes, func(a, b outcomeCol) int { return outcomeOrder(a.Code, b.Code) })
	for i, g := range groups {
		if limit > 0 && i >= limit {
			t.More++
			t.MoreN += g.Total
			continue
		}
		row := groupRow{Value: g.Value, Label: g.Value, Total: g.Total}
		if latency {
			row.Lat = g.Latency
		}
		for _, o := range t.Outcomes {
			row.Counts = append(row.Counts, g.Counts[o.Code])
		}
		if label != nil {
			label(&row, g)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// named sets what the table is called and returns it.
func (t *groupTable) named(id, heading, column string, mono bool) *groupTable {
	t.ID, t.Heading, t.Column, t.Mono = id, heading, column, mono
	return t
}

// routeLabel names a route group: "" is usage recorded without a route.
func routeLabel(row *groupRow, g keygate.UsageGroup) {
	switch g.Value {
	case "":
		row.Label, row.Hint = "(no route)", "requests recorded without a route"
	case keygate.UsageRouteOther:
		row.Hint = fmt.Sprintf("routes past the first %d of a day", keygate.MaxUsageRoutesPerDay)
	}
}

// statusRow is one status class: 2xx, 4xx, … with the codes in it.
type statusRow struct {
	Class string // "2xx", or "none"
	Label string
	Count int64
	Share string
	Codes []statusCount
}

type statusCount struct {
	Code  string
	Count int64
}

// statusRows folds the groups of group_by=status into classes, 1xx to
// 5xx, then requests without a status.
func statusRows(groups []keygate.UsageGroup) []statusRow {
	var total int64
	byClass := map[string]*statusRow{}
	for _, g := range groups {
		total += g.Total
		class, label := "none", "No status recorded"
		if n, err := strconv.Atoi(g.Value); err == nil && n >= 100 && n <= 599 {
			class = strconv.Itoa(n/100) + "xx"
			label = map[int]string{1: "Informational", 2: "Success", 3: "Redirection", 4: "Client error", 5: "Server error"}[n/100]
		}
		row := byClass[class]
		if row == nil {
			row = &statusRow{Class: class, Label: label}
			byClass[class] = row
		}
		row.Count += g.Total
		if class != "none" {
			row.Codes = append(row.Codes, statusCount{g.Value, g.Total})
		}
	}
	var rows []statusRow
	for _, row := range byClass {
		row.Share = share(row.Count, total)
		slices.SortFunc(row.Codes, func(a, b statusCount) int { return cmp.Compare(a.Code, b.Code) })
		rows = append(rows, *row)
	}
	slices.SortFunc(rows, func(a, b statusRow) int {
		if (a.Class == "none") != (b.Class == "none") {
			if a.Class == "none" {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Class, b.Class)
	})
	return rows
}

// formatMs writes a latency in milliseconds with about three significant
// digits: 0.412 ms, 4.8 ms, 120 ms, 1.35 s.
func formatMs(ms float64) string {
	switch {
	case ms >= 1000:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s"
	case ms >= 100:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	case ms >= 1:
		return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
	}
	return strconv.FormatFloat(ms, 'f', 3, 64) + " ms"
}
