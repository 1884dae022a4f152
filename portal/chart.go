package portal

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/keygate/keygate"
)

// chartDays is how many UTC days the usage charts show, today included.
const chartDays = 30

// Chart geometry, in SVG user units (the SVG scales to its box).
const (
	chartW      = 720
	chartH      = 260
	chartLeft   = 64 // room for the y-axis labels
	chartRight  = 12
	chartTop    = 16
	chartBottom = 36 // room for the x-axis labels
)

// chart is a per-day bar chart of requests, each bar split into valid and
// refused requests, with the daily quota as a dashed line. It is computed
// here and drawn as SVG by the usage template: no script, no library.
type chart struct {
	Title  string // names the chart for screen readers
	W, H   int
	Bars   []bar
	Ticks  []tick
	Labels []xLabel
	// Quota is the daily quota drawn as a line; QuotaY its position.
	Quota     int64
	QuotaY    float64
	QuotaNote string
	Days      []dayRow // the same data as a table
	Outcomes  []string // the outcome codes that occur, for the table's columns
	Total     int64
	Left      int
	Right     int // x of the plot's right edge
	Base      int // y of the x axis
}

type bar struct {
	X, W             float64
	ValidY, ValidH   float64
	RefuseY, RefuseH float64
	Label            string // the bar's <title>
}

type tick struct {
	Y     float64
	Label string
}

type xLabel struct {
	X     float64
	Label string
}

// dayRow is one day of the chart, for the table under it.
type dayRow struct {
	Day    time.Time
	Total  int64
	Valid  int64
	Counts []int64 // by Outcomes
}

// buildChart lays out buckets (daily, any order, any gaps) for the
// chartDays days ending with today's.
func buildChart(title string, buckets []keygate.UsageBucket, today time.Time, quota int64, quotaNote string) *chart {
	first := today.AddDate(0, 0, -(chartDays - 1))
	byDay := map[string]keygate.UsageBucket{}
	seen := map[string]bool{}
	for _, b := range buckets {
		byDay[b.Start.UTC().Format(time.DateOnly)] = b
		for o, n := range b.Counts {
			if n > 0 {
				seen[o] = true
			}
		}
	}
	c := &chart{Title: title, W: chartW, H: chartH, Quota: quota, QuotaNote: quotaNote,
		Left: chartLeft, Right: chartW - chartRight, Base: chartH - chartBottom}
	for o := range seen {
		c.Outcomes = append(c.Outcomes, o)
	}
	sort.Slice(c.Outcomes, func(i, j int) bool {
		// valid first, then the refusals by name
		if (c.Outcomes[i] == "valid") != (c.Outcomes[j] == "valid") {
			return c.Outcomes[i] == "valid"
		}
		return c.Outcomes[i] < c.Outcomes[j]
	})

	var peak int64
	rows := make([]dayRow, chartDays)
	for i := range chartDays {
		d := first.AddDate(0, 0, i)
		b := byDay[d.Format(time.DateOnly)]
		row := dayRow{Day: d, Total: b.Total, Valid: b.Counts["valid"]}
		for _, o := range c.Outcomes {
			row.Counts = append(row.Counts, b.Counts[o])
		}
		rows[i] = row
		peak = max(peak, b.Total)
		c.Total += b.Total
	}
	top := niceCeil(max(peak, quota, 1))
	plotH := float64(c.Base - chartTop)
	y := func(n int64) float64 { return float64(c.Base) - float64(n)/float64(top)*plotH }
	slot := float64(c.Right-c.Left) / chartDays
	for i, row := range rows {
		x := float64(c.Left) + float64(i)*slot + slot*0.15
		b := bar{X: x, W: slot * 0.7,
			Label: fmt.Sprintf("%s: %s requests, %s valid, %s refused", row.Day.Format("Jan 2"),
				formatInt(row.Total), formatInt(row.Valid), formatInt(row.Total-row.Valid))}
		// A day with any request gets a visible bar, however large the
		// quota the axis must also show.
		vh := barHeight(row.Valid, top, plotH)
		rh := barHeight(row.Total-row.Valid, top, plotH)
		b.ValidY, b.ValidH = float64(c.Base)-vh, vh
		b.RefuseY, b.RefuseH = b.ValidY-rh, rh
		c.Bars = append(c.Bars, b)
		if (chartDays-1-i)%7 == 0 { // weekly, ending today
			c.Labels = append(c.Labels, xLabel{X: x + b.W/2, Label: row.Day.Format("Jan 2")})
		}
	}
	for _, f := range []int64{0, top / 4, top / 2, top * 3 / 4, top} {
		c.Ticks = append(c.Ticks, tick{Y: y(f), Label: shortInt(f)})
	}
	if quota > 0 {
		c.QuotaY = y(quota)
	}
	for i := len(rows) - 1; i >= 0; i-- { // the table: newest first, days with traffic
		if rows[i].Total > 0 {
			c.Days = append(c.Days, rows[i])
		}
	}
	return c
}

func barHeight(n, top int64, plotH float64) float64 {
	if n <= 0 {
		return 0
	}
	return math.Max(2, float64(n)/float64(top)*plotH)
}

// niceCeil rounds n up to a round top for the axis: 1, 2 or 5 times a
// power of ten, and for small counts a multiple of 4, so that the quarter
// ticks are whole numbers.
func niceCeil(n int64) int64 {
	if n <= 20 {
		return max((n+3)/4*4, 4)
	}
	p := int64(10)
	for {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
		p *= 10
	}
}

// shortInt writes n compactly for an axis: 950, 1.5k, 100k, 2M.
func shortInt(n int64) string {
	switch {
	case n >= 1_000_000_000:
		return trimZero(float64(n)/1e9) + "G"
	case n >= 1_000_000:
		return trimZero(float64(n)/1e6) + "M"
	case n >= 1_000:
		return trimZero(float64(n)/1e3) + "k"
	}
	return fmt.Sprint(n)
}

func trimZero(f float64) string {
	s := fmt.Sprintf("%.1f", f)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}
