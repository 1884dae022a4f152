package portal

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func TestParsePeriod(t *testing.T) {
	today := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for q, want := range map[string][2]string{
		"":                 {"2026-12-01", "2026-12-02"},
		"period=today":     {"2026-12-01", "2026-12-02"},
		"period=yesterday": {"2026-11-30", "2026-12-01"},
		"period=7d":        {"2026-11-25", "2026-12-02"},
		"period=30d":       {"2026-11-02", "2026-12-02"},
	} {
		p, opts, err := parsePeriod(httptest.NewRequest("GET", "/portal/usage?"+q, nil), today)
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		if got := [2]string{p.From.Format(time.DateOnly), p.To.Format(time.DateOnly)}; got != want {
			t.Errorf("%q: got %v, want %v", q, got, want)
		}
		var selected []string
		for _, o := range opts {
			if o.Selected {
				selected = append(selected, o.Value)
			}
		}
		if len(selected) != 1 || selected[0] != p.Value {
			t.Errorf("%q: selected options %v, want %s alone", q, selected, p.Value)
		}
		if one := p.Value == "today" || p.Value == "yesterday"; p.OneDay() != one {
			t.Errorf("%q: OneDay() = %v", q, p.OneDay())
		}
	}
	_, _, err := parsePeriod(httptest.NewRequest("GET", "/portal/usage?period=1y", nil), today)
	if keygate.ErrorCode(err) != keygate.EINVALID || !strings.Contains(keygate.ErrorMessage(err), "today, yesterday, 7d, 30d") {
		t.Errorf("an unknown period: got %v", err)
	}
}

func TestSumGroups(t *testing.T) {
	lat := &keygate.LatencyPercentiles{P50: 1, P95: 2, P99: 3}
	day1 := keygate.UsageBucket{Groups: []keygate.UsageGroup{
		{Value: "/a", Total: 3, Counts: map[string]int64{"valid": 3}, Latency: lat},
		{Value: "/b", Total: 2, Counts: map[string]int64{"valid": 1, "rate_limited": 1}, Latency: lat},
	}}
	day2 := keygate.UsageBucket{Groups: []keygate.UsageGroup{
		{Value: "/b", Total: 4, Counts: map[string]int64{"valid": 4}, Latency: lat},
	}}
	// One day: its groups, percentiles and all.
	if got := sumGroups([]keygate.UsageBucket{day1}, true); len(got) != 2 || got[0].Latency != lat {
		t.Errorf("one day: got %+v", got)
	}
	// Several days: counts added, the busiest first, no percentiles.
	got := sumGroups([]keygate.UsageBucket{day1, day2}, false)
	if len(got) != 2 || got[0].Value != "/b" || got[0].Total != 6 || got[0].Counts["valid"] != 5 || got[0].Counts["rate_limited"] != 1 ||
		got[1].Value != "/a" || got[1].Total != 3 {
		t.Fatalf("two days: got %+v", got)
	}
	for _, g := range got {
		if g.Latency != nil {
			t.Errorf("two days: %s has percentiles %+v", g.Value, g.Latency)
		}
	}
	// A period of several days with traffic on one only shows none either.
	if got := sumGroups([]keygate.UsageBucket{day1}, false); got[0].Latency != nil {
		t.Errorf("several days, one with traffic: got percentiles %+v", got[0].Latency)
	}
	// The summed counts are the tables' own, not the store's maps.
	if day2.Groups[0].Counts["valid"] != 4 {
		t.Errorf("sumGroups changed its input: %+v", day2.Groups[0])
	}
}

func TestGroupTable(t *testing.T) {
	groups := []keygate.UsageGroup{
		{Value: "/a", Total: 5, Counts: map[string]int64{"quota_exceeded": 1, "valid": 4}, Latency: &keygate.LatencyPercentiles{P50: 1}},
		{Value: "", Total: 3, Counts: map[string]int64{"valid": 3}},
		{Value: "/c", Total: 2, Counts: map[string]int64{"valid": 2}},
		{Value: "/d", Total: 1, Counts: map[string]int64{"insufficient_scope": 1}},
	}
	tb := newGroupTable(groups, 2, true, routeLabel)
	var cols []string
	for _, o := range tb.Outcomes {
		cols = append(cols, o.Code)
	}
	// Outcome columns in the order the checks run, valid first.
	if strings.Join(cols, ",") != "valid,insufficient_scope,quota_exceeded" {
		t.Errorf("columns: got %v", cols)
	}
	if len(tb.Rows) != 2 || tb.More != 2 || tb.MoreN != 3 {
		t.Fatalf("limit 2: got %d rows, %d more with %d requests", len(tb.Rows), tb.More, tb.MoreN)
	}
	if r := tb.Rows[0]; r.Label != "/a" || r.Lat == nil || len(r.Counts) != 3 || r.Counts[0] != 4 || r.Counts[2] != 1 {
		t.Errorf("row /a: got %+v", r)
	}
	if r := tb.Rows[1]; r.Label != "(no route)" || r.Lat != nil {
		t.Errorf("row without a route: got %+v", r)
	}
	if tb := newGroupTable(groups, 0, false, nil); len(tb.Rows) != 4 || tb.Rows[0].Lat != nil {
		t.Errorf("no limit, no latency: got %+v", tb.Rows)
	}
}

func TestStatusRows(t *testing.T) {
	rows := statusRows([]keygate.UsageGroup{
		{Value: "429", Total: 1}, {Value: "0", Total: 2}, {Value: "200", Total: 5}, {Value: "404", Total: 2}, {Value: "502", Total: 10},
	})
	var got []string
	for _, r := range rows {
		s := r.Class + ":" + formatInt(r.Count) + ":" + r.Share
		for _, c := range r.Codes {
			s += " " + c.Code + "×" + formatInt(c.Count)
		}
		got = append(got, s)
	}
	want := "2xx:5:25% 200×5|4xx:3:15% 404×2 429×1|5xx:10:50% 502×10|none:2:10%"
	if strings.Join(got, "|") != want {
		t.Errorf("got %s, want %s", strings.Join(got, "|"), want)
	}
}

func TestOutcomeRows(t *testing.T) {
	rows := outcomeRows([]keygate.UsageGroup{{Value: "rate_limited", Total: 1}, {Value: "valid", Total: 300}, {Value: "not_found", Total: 2}})
	var got []string
	for _, r := range rows {
		got = append(got, r.Label+"="+r.Share)
	}
	if strings.Join(got, ",") != "Valid=99%,Unknown key=<1%,Rate limited=<1%" {
		t.Errorf("got %v", got)
	}
}

func TestFormatMs(t *testing.T) {
	for ms, want := range map[float64]string{0.4123: "0.412 ms", 1.19: "1.19 ms", 48.04: "48.0 ms", 120.4: "120 ms", 1350: "1.35 s"} {
		if got := formatMs(ms); got != want {
			t.Errorf("formatMs(%v): got %q, want %q", ms, got, want)
		}
	}
}
