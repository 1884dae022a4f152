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

// UsageResponse answers GET /v1/usage.
type UsageResponse struct {
	Granularity string                `json:"granularity"`
	From        time.Time             `json:"from"`
	To          time.Time             `json:"to"`
	KeyID       string                `json:"key_id,omitempty"`
	AccountID   string                `json:"account_id,omitempty"`
	Data        []keygate.UsageBucket `json:"data"`
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
		return writeUsageCSV(w, buckets)
	}
	return writeJSON(w, http.StatusOK, UsageResponse{
		Granularity: uq.Granularity, From: uq.From, To: uq.To, KeyID: uq.KeyID, AccountID: uq.AccountID, Data: buckets,
	})
}

// writeUsageCSV writes one row per bucket: start, total, then a column per
// outcome code.
func writeUsageCSV(w http.ResponseWriter, buckets []keygate.UsageBucket) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="keygate-usage.csv"`)
	cw := csv.NewWriter(w)
	header := []string{"start", "total"}
	for _, o := range keygate.Outcomes {
		header = append(header, keygate.OutcomeKey(o))
	}
	_ = cw.Write(header)
	row := make([]string, len(header))
	for _, b := range buckets {
		row[0] = b.Start.UTC().Format(time.RFC3339)
		row[1] = strconv.FormatInt(b.Total, 10)
		for i, o := range keygate.Outcomes {
			row[2+i] = strconv.FormatInt(b.Counts[keygate.OutcomeKey(o)], 10)
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	return nil // once streaming, a write error is a gone client
}
