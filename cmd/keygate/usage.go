package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

// usageBarWidth is the width of the longest bar of `keygate usage`.
const usageBarWidth = 40

// runUsage runs `keygate usage`: requests per hour or day, as a chart;
// with --by, split by a dimension; with --top, the busiest keys or
// accounts of the period.
func (m *Main) runUsage(ctx context.Context, args []string) error {
	fs := m.newFlagSet("usage")
	o := m.adminFlags(fs)
	key := fs.String("key", "", "only this key's usage (`KEY_ID`)")
	account := fs.String("account", "", "only the usage of this account's keys (`ACCOUNT_ID`)")
	granularity := fs.String("granularity", "day", "bucket size: `hour` or day")
	from := fs.String("from", "", "start `TIME`: RFC 3339, a date, or a duration ago such as 7d or 48h (default: 30 days, or 24 hours by the hour)")
	to := fs.String("to", "", "end `TIME` (same forms; default: now)")
	by := fs.String("by", "", "split each bucket by `DIM`: "+strings.Join(keygate.UsageGroupBys, ", "))
	top := fs.String("top", "", "list the busiest keys or accounts of the period instead (`key` or account)")
	limit := fs.Int("limit", 0, "with --top, how many (`N`, default 10)")
	asCSV := fs.Bool("csv", false, "print the server's CSV export instead of a table")
	if err := parseFlagsOnly(fs, args, "usage takes only flags, such as --key key_… or --account acc_…"); err != nil {
		return err
	}
	if *granularity != keygate.GranularityHour && *granularity != keygate.GranularityDay {
		return fmt.Errorf("%w: --granularity must be hour or day", errUsage)
	}
	if *by != "" && !slices.Contains(keygate.UsageGroupBys, *by) {
		return fmt.Errorf("%w: --by must be one of %s", errUsage, strings.Join(keygate.UsageGroupBys, ", "))
	}
	if *top != "" && *top != keygate.GroupByKey && *top != keygate.GroupByAccount {
		return fmt.Errorf("%w: --top must be key or account", errUsage)
	}
	if *top != "" && (*by != "" || *asCSV) {
		return fmt.Errorf("%w: --top lists keys or accounts; it takes neither --by nor --csv", errUsage)
	}
	if looksLikeKey(*key) {
		return fmt.Errorf("%w: --key takes a key ID (key_…), not the key itself", errUsage)
	}
	q := url.Values{}
	setQuery(q, "key_id", *key, "account_id", *account, "granularity", *granularity, "group_by", *by)
	if err := setTimes(q, m.now(), "from", *from, "to", *to); err != nil {
		return err
	}
	if *top != "" {
		setQuery(q, "by", *top)
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.UsageTopResponse, error) {
			return c.UsageTop(ctx, q)
		}, usageTopTable)
	}
	if *asCSV {
		// The CSV export is the output in either case: --json has nothing to add.
		o.json = false
		return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) ([]byte, error) {
			return c.UsageCSV(ctx, q)
		}, func(w io.Writer, data []byte) error {
			_, err := w.Write(data)
			return err
		})
	}
	show := usageChart
	if *by != "" {
		show = usageGroupTable
	}
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.UsageResponse, error) {
		return c.Usage(ctx, q)
	}, show)
}

// usageScope names what a usage answer covers.
func usageScope(keyID, accountID string) string {
	switch {
	case keyID != "":
		return "key " + keyID
	case accountID != "":
		return "account " + accountID
	}
	return "all keys"
}

// bucketLayout is how a bucket's start is printed.
func bucketLayout(granularity string) string {
	if granularity == keygate.GranularityHour {
		return "2006-01-02 15:00"
	}
	return "2006-01-02"
}

// latencyCells prints p50, p95 and p99 in milliseconds, or dashes for
// usage recorded without latencies.
func latencyCells(p *keygate.LatencyPercentiles) []string {
	if p == nil {
		return []string{"-", "-", "-"}
	}
	f := func(ms float64) string { return strconv.FormatFloat(ms, 'f', -1, 64) }
	return []string{f(p.P50), f(p.P95), f(p.P99)}
}

// usageGroupTable prints one row per group of each bucket, with its
// valid and refused counts and latency percentiles.
func usageGroupTable(w io.Writer, u *api.UsageResponse) error {
	layout := bucketLayout(u.Granularity)
	fmt.Fprintf(w, "Usage of %s by %s and %s, %s to %s (UTC)\n\n", escapeCell(usageScope(u.KeyID, u.AccountID)), u.Granularity, u.GroupBy,
		u.From.UTC().Format(layout), u.To.UTC().Format(layout))
	if len(u.Data) == 0 {
		_, err := fmt.Fprintln(w, "No requests in this period.")
		return err
	}
	var rows [][]string
	for _, b := range u.Data {
		for _, g := range b.Groups {
			ok := g.Counts[keygate.OutcomeKey(keygate.OutcomeValid)]
			value := g.Value
			if value == "" {
				value = "(none)"
			}
			rows = append(rows, append([]string{b.Start.UTC().Format(layout), value, strconv.FormatInt(g.Total, 10),
				strconv.FormatInt(ok, 10), strconv.FormatInt(g.Total-ok, 10)}, latencyCells(g.Latency)...))
		}
	}
	return table(w, "START\t"+strings.ToUpper(u.GroupBy)+"\tTOTAL\tVALID\tREFUSED\tP50 MS\tP95 MS\tP99 MS", rows)
}

// usageTopTable prints the busiest keys or accounts, most first.
func usageTopTable(w io.Writer, u *api.UsageTopResponse) error {
	layout := bucketLayout(u.Granularity)
	scope := ""
	if u.KeyID != "" || u.AccountID != "" {
		scope = " of " + usageScope(u.KeyID, u.AccountID)
	}
	fmt.Fprintf(w, "Busiest %ss%s, %s to %s (UTC)\n\n", u.By, escapeCell(scope), u.From.UTC().Format(layout), u.To.UTC().Format(layout))
	if len(u.Data) == 0 {
		_, err := fmt.Fprintln(w, "No requests in this period.")
		return err
	}
	header := "KEY\tACCOUNT\tTOTAL\tVALID\tREFUSED\tP50 MS\tP95 MS\tP99 MS"
	if u.By == keygate.GroupByAccount {
		header = "ACCOUNT\tTOTAL\tVALID\tREFUSED\tP50 MS\tP95 MS\tP99 MS"
	}
	rows := make([][]string, len(u.Data))
	for i, g := range u.Data {
		ok := g.Counts[keygate.OutcomeKey(keygate.OutcomeValid)]
		row := []string{g.Value}
		if u.By == keygate.GroupByKey {
			row = append(row, orDash(g.AccountID))
		}
		rows[i] = append(append(row, strconv.FormatInt(g.Total, 10), strconv.FormatInt(ok, 10), strconv.FormatInt(g.Total-ok, 10)), latencyCells(g.Latency)...)
	}
	return table(w, header, rows)
}

// usageChart prints one row per bucket with the valid and refused counts,
// the other outcomes, and a bar of the total scaled to the busiest bucket:
// █ for valid requests, ░ for refused ones.
func usageChart(w io.Writer, u *api.UsageResponse) error {
	layout := bucketLayout(u.Granularity)
	fmt.Fprintf(w, "Usage of %s by %s, %s to %s (UTC)\n\n", escapeCell(usageScope(u.KeyID, u.AccountID)), u.Granularity, u.From.UTC().Format(layout), u.To.UTC().Format(layout))
	if len(u.Data) == 0 {
		_, err := fmt.Fprintln(w, "No requests in this period.")
		return err
	}
	var peak, total, valid int64
	for _, b := range u.Data {
		peak = max(peak, b.Total)
		total += b.Total
		valid += b.Counts[keygate.OutcomeKey(keygate.OutcomeValid)]
	}
	rows := make([][]string, len(u.Data))
	for i, b := range u.Data {
		ok := b.Counts[keygate.OutcomeKey(keygate.OutcomeValid)]
		rows[i] = append(append([]string{b.Start.UTC().Format(layout), strconv.FormatInt(b.Total, 10), strconv.FormatInt(ok, 10),
			strconv.FormatInt(b.Total-ok, 10)}, latencyCells(b.Latency)...), bar(ok, b.Total-ok, peak), orDash(otherOutcomes(b.Counts)))
	}
	if err := table(w, "START\tTOTAL\tVALID\tREFUSED\tP50 MS\tP95 MS\tP99 MS\t\tREFUSED BY", rows); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d requests, %d valid, %d refused\n", total, valid, total-valid)
	return err
}

// bar draws valid and refused counts as one bar scaled so that peak fills
// usageBarWidth; any non-zero count gets at least one cell.
func bar(valid, refused, peak int64) string {
	if peak <= 0 {
		return ""
	}
	cells := func(n int64) int {
		if n <= 0 {
			return 0
		}
		return max(int(n*usageBarWidth/peak), 1)
	}
	return strings.Repeat("█", cells(valid)) + strings.Repeat("░", cells(refused))
}

// otherOutcomes lists the refusal counts of a bucket, largest first.
func otherOutcomes(counts map[string]int64) string {
	type kv struct {
		k string
		v int64
	}
	var l []kv
	for k, v := range counts {
		if k != keygate.OutcomeKey(keygate.OutcomeValid) && v > 0 {
			l = append(l, kv{k, v})
		}
	}
	slices.SortFunc(l, func(a, b kv) int {
		if a.v != b.v {
			return int(b.v - a.v)
		}
		return strings.Compare(a.k, b.k)
	})
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = fmt.Sprintf("%s=%d", e.k, e.v)
	}
	return strings.Join(parts, " ")
}
