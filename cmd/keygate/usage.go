package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

// usageBarWidth is the width of the longest bar of `keygate usage`.
const usageBarWidth = 40

// runUsage runs `keygate usage`: requests per hour or day, as a chart.
func (m *Main) runUsage(ctx context.Context, args []string) error {
	fs := m.newFlagSet("usage")
	o := m.adminFlags(fs)
	key := fs.String("key", "", "only this key's usage (`KEY_ID`)")
	account := fs.String("account", "", "only the usage of this account's keys (`ACCOUNT_ID`)")
	granularity := fs.String("granularity", "day", "bucket size: `hour` or day")
	from := fs.String("from", "", "start `TIME`: RFC 3339, a date, or a duration ago such as 7d or 48h (default: 30 days, or 24 hours by the hour)")
	to := fs.String("to", "", "end `TIME` (same forms; default: now)")
	asCSV := fs.Bool("csv", false, "print the server's CSV export instead of a table")
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: usage takes only flags, such as --key key_… or --account acc_…", errUsage)
	}
	if *granularity != keygate.GranularityHour && *granularity != keygate.GranularityDay {
		return fmt.Errorf("%w: --granularity must be hour or day", errUsage)
	}
	if looksLikeKey(*key) {
		return fmt.Errorf("%w: --key takes a key ID (key_…), not the key itself", errUsage)
	}
	q := url.Values{}
	setQuery(q, "key_id", *key, "account_id", *account, "granularity", *granularity)
	now := m.now()
	for _, b := range []struct{ name, v string }{{"from", *from}, {"to", *to}} {
		if b.v == "" {
			continue
		}
		t, err := parseSince(expandDays(b.v), now)
		if err != nil {
			return fmt.Errorf("%w: --%s %q: %v", errUsage, b.name, b.v, err)
		}
		q.Set(b.name, t.UTC().Format(time.RFC3339))
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
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.UsageResponse, error) {
		return c.Usage(ctx, q)
	}, usageChart)
}

// expandDays lets a duration ago be given in days ("7d"), which Go
// durations lack.
func expandDays(s string) string {
	if n, ok := strings.CutSuffix(strings.TrimSpace(s), "d"); ok {
		if d, err := strconv.Atoi(n); err == nil && d >= 0 {
			return strconv.Itoa(d*24) + "h"
		}
	}
	return s
}

// usageChart prints one row per bucket with the valid and refused counts,
// the other outcomes, and a bar of the total scaled to the busiest bucket:
// █ for valid requests, ░ for refused ones.
func usageChart(w io.Writer, u *api.UsageResponse) error {
	scope := "all keys"
	switch {
	case u.KeyID != "":
		scope = "key " + u.KeyID
	case u.AccountID != "":
		scope = "account " + u.AccountID
	}
	layout := "2006-01-02"
	if u.Granularity == keygate.GranularityHour {
		layout = "2006-01-02 15:00"
	}
	fmt.Fprintf(w, "Usage of %s by %s, %s to %s (UTC)\n\n", escapeCell(scope), u.Granularity, u.From.UTC().Format(layout), u.To.UTC().Format(layout))
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
		rows[i] = []string{b.Start.UTC().Format(layout), strconv.FormatInt(b.Total, 10), strconv.FormatInt(ok, 10),
			strconv.FormatInt(b.Total-ok, 10), bar(ok, b.Total-ok, peak), orDash(otherOutcomes(b.Counts))}
	}
	if err := table(w, "START\tTOTAL\tVALID\tREFUSED\t\tREFUSED BY", rows); err != nil {
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
