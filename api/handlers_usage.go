package api

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate"
)

// Bounds on one usage query, so that an hourly query cannot ask for years
// of buckets.
const (
	MaxUsageHours = 31 * 24
	MaxUsageDays  = 3 * 366
)

// Bounds on GET /v1/usage/top's limit.
const (
	DefaultUsageTop = 10
	MaxUsageTop     = 100
)

// UsageResponse answers GET /v1/usage.
type UsageResponse struct {
	Granularity string                `json:"granularity"`
	From        time.Time             `json:"from"`
	To          time.Time             `json:"to"`
	KeyID       string                `json:"key_id,omitempty"`
	AccountID   string                `json:"account_id,omitempty"`
	GroupBy     string                `json:"group_by,omitempty"`
	Data        []keygate.UsageBucket `json:"data"`
}

// UsageTopResponse answers GET /v1/usage/top.
type UsageTopResponse struct {
	By          string               `json:"by"`
	Granularity string               `json:"granularity"`
	From        time.Time            `json:"from"`
	To          time.Time            `json:"to"`
	KeyID       string               `json:"key_id,omitempty"`
	AccountID   string               `json:"account_id,omitempty"`
	Data        []keygate.UsageGroup `json:"data"`
}

// usageQuery reads and checks the query parameters of GET /v1/usage.
func (s *Server) usageQuery(r *http.Request) (keygate.UsageQuery, error) {
	q := r.URL.Query()
	uq := keygate.UsageQuery{KeyID: q.Get("key_id"), AccountID: q.Get("account_id"), Granularity: q.Get("granularity")}
	var unit time.Duration
	var maxBuckets int
	switch uq.Granularity {
	case "", keygate.GranularityDay:
		uq.Granularity, unit, maxBuckets = keygate.GranularityDay, 24*time.Hour, MaxUsageDays
	case keygate.GranularityHour:
		unit, maxBuckets = time.Hour, MaxUsageHours
	default:
		return uq, keygate.Errorf(keygate.EINVALID, "granularity must be \"hour\" or \"day\".")
	}
	var err error
	if uq.To, err = queryTime(q.Get("to"), "to"); err != nil {
		return uq, err
	}
	if uq.From, err = queryTime(q.Get("from"), "from"); err != nil {
		return uq, err
	}
	if uq.To.IsZero() {
		uq.To = s.now().UTC().Truncate(unit).Add(unit) // through the current bucket
	}
	if uq.From.IsZero() {
		defaultSpan := 30 * 24 * time.Hour
		if unit == time.Hour {
			defaultSpan = 24 * time.Hour
		}
		uq.From = uq.To.Add(-defaultSpan)
	}
	uq.From, uq.To = uq.From.UTC(), uq.To.UTC()
	if !uq.From.Before(uq.To) {
		return uq, keygate.Errorf(keygate.EINVALID, "from must be before to.")
	}
	if uq.To.Sub(uq.From) > time.Duration(maxBuckets)*unit {
		return uq, keygate.Errorf(keygate.EINVALID, "At most %d %ss per query; narrow from and to, or use granularity=day.", maxBuckets, uq.Granularity)
	}
	return uq, nil
}

// RouteUsageResponse answers GET /v1/usage/routes.
type RouteUsageResponse struct {
	From time.Time            `json:"from"`
	To   time.Time            `json:"to"`
	Data []keygate.RouteCount `json:"data"`
}

// routeUsage answers the hourly request counts per route and outcome:
// the one record of anonymous and throttled requests, which are counted
// rather than stored one by one.
func (s *Server) routeUsage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for _, p := range []string{"key_id", "account_id", "granularity", "format"} {
		if q.Has(p) {
			return keygate.Errorf(keygate.EINVALID, "Route counts are hourly and for every request: %s is not a parameter here (see GET /v1/usage).", p)
		}
	}
	q.Set("granularity", keygate.GranularityHour)
	rq := r.Clone(r.Context())
	rq.URL.RawQuery = q.Encode()
	uq, err := s.usageQuery(rq)
	if err != nil {
		return err
	}
	counts, err := s.UsageStore.RouteUsage(r.Context(), uq.From, uq.To)
	if err != nil {
		return err
	}
	if counts == nil {
		counts = []keygate.RouteCount{}
	}
	return writeJSON(w, http.StatusOK, RouteUsageResponse{From: uq.From, To: uq.To, Data: counts})
}

func (s *Server) usage(w http.ResponseWriter, r *http.Request) error {
	uq, err := s.usageQuery(r)
	if err != nil {
		return err
	}
	uq.GroupBy = r.URL.Query().Get("group_by")
	if err := keygate.CheckGroupBy(uq.GroupBy); err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "csv" {
		return keygate.Errorf(keygate.EINVALID, "format must be \"json\" or \"csv\".")
	}
	buckets, err := s.UsageStore.Usage(r.Context(), uq)
	if err != nil {
		return err
	}
	if buckets == nil {
		buckets = []keygate.UsageBucket{}
	}
	if format == "csv" {
		return writeUsageCSV(w, uq.GroupBy, buckets)
	}
	return writeJSON(w, http.StatusOK, UsageResponse{
		Granularity: uq.Granularity, From: uq.From, To: uq.To, KeyID: uq.KeyID, AccountID: uq.AccountID, GroupBy: uq.GroupBy, Data: buckets,
	})
}

// usageTop answers GET /v1/usage/top: the keys or accounts with the most
// requests in a period.
func (s *Server) usageTop(w http.ResponseWriter, r *http.Request) error {
	uq, err := s.usageQuery(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	tq := keygate.UsageTopQuery{By: q.Get("by"), KeyID: uq.KeyID, AccountID: uq.AccountID, From: uq.From, To: uq.To,
		Granularity: uq.Granularity, Limit: DefaultUsageTop}
	if tq.By == "" {
		tq.By = keygate.GroupByKey
	}
	if err := keygate.CheckTopBy(tq.By); err != nil {
		return err
	}
	if v := q.Get("limit"); v != "" {
		if tq.Limit, err = strconv.Atoi(v); err != nil || tq.Limit < 1 || tq.Limit > MaxUsageTop {
			return keygate.Errorf(keygate.EINVALID, "limit must be a whole number from 1 to %d.", MaxUsageTop)
		}
	}
	top, err := s.UsageStore.UsageTop(r.Context(), tq)
	if err != nil {
		return err
	}
	if top == nil {
		top = []keygate.UsageGroup{}
	}
	return writeJSON(w, http.StatusOK, UsageTopResponse{
		By: tq.By, Granularity: tq.Granularity, From: tq.From, To: tq.To, KeyID: tq.KeyID, AccountID: tq.AccountID, Data: top,
	})
}

// writeUsageCSV writes one row per bucket, or per group of a bucket when
// grouped: start, the group's value under the group_by name, total, a
// column per outcome code, then the latency percentiles in milliseconds
// (empty for usage recorded without latencies).
func writeUsageCSV(w http.ResponseWriter, groupBy string, buckets []keygate.UsageBucket) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="keygate-usage.csv"`)
	cw := csv.NewWriter(w)
	header := []string{"start"}
	if groupBy != "" {
		header = append(header, groupBy)
	}
	header = append(header, "total")
	for _, o := range keygate.Outcomes {
		header = append(header, keygate.OutcomeKey(o))
	}
	header = append(header, "p50_ms", "p95_ms", "p99_ms")
	_ = cw.Write(header)
	write := func(start time.Time, group []string, total int64, counts map[string]int64, lat *keygate.LatencyPercentiles) {
		row := append([]string{start.UTC().Format(time.RFC3339)}, group...)
		row = append(row, strconv.FormatInt(total, 10))
		for _, o := range keygate.Outcomes {
			row = append(row, strconv.FormatInt(counts[keygate.OutcomeKey(o)], 10))
		}
		if lat != nil {
			for _, p := range []float64{lat.P50, lat.P95, lat.P99} {
				row = append(row, strconv.FormatFloat(p, 'f', -1, 64))
			}
		} else {
			row = append(row, "", "", "")
		}
		_ = cw.Write(row)
	}
	for _, b := range buckets {
		if groupBy == "" {
			write(b.Start, nil, b.Total, b.Counts, b.Latency)
			continue
		}
		for _, g := range b.Groups {
			write(b.Start, []string{g.Value}, g.Total, g.Counts, g.Latency)
		}
	}
	cw.Flush()
	return nil // once streaming, a write error is a gone client
}
