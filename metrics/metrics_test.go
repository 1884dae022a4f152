package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func TestScrape(t *testing.T) {
	m := New(Sources{
		UsageDepth:           func() int { return 7 },
		UsageDropped:         func() uint64 { return 3 },
		UsageWritten:         func() uint64 { return 42 },
		UsageWriteFailures:   func() uint64 { return 2 },
		CounterFlushErrors:   func() uint64 { return 1 },
		LimiterErrors:        func() uint64 { return 5 },
		WebhookAttempts:      func() (uint64, uint64, uint64) { return 9, 4, 1 },
		UsageCapped:          func() uint64 { return 11 },
		QuotaReserveFailures: func() uint64 { return 6 },
	})
	m.ObserveVerify(keygate.OutcomeValid, 3*time.Microsecond)
	m.ObserveVerify(keygate.OutcomeValid, 3*time.Microsecond)
	m.ObserveVerify(keygate.OutcomeRevoked, time.Microsecond)
	m.StoreError()

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`keygate_verifications_total{outcome="VALID"} 2`,
		`keygate_verifications_total{outcome="REVOKED"} 1`,
		`keygate_verifications_total{outcome="QUOTA_EXCEEDED"} 0`,
		`keygate_verification_duration_seconds_count 3`,
		`keygate_usage_buffer_depth 7`,
		`keygate_usage_dropped_total 3`,
		`keygate_usage_written_total 42`,
		`keygate_limiter_errors_total 5`,
		`keygate_usage_capped_total 11`,
		`keygate_quota_reserve_failures_total 6`,
		`keygate_store_errors_total{op="admin"} 1`,
		`keygate_store_errors_total{op="usage_write"} 2`,
		`keygate_store_errors_total{op="counter_flush"} 1`,
		`keygate_webhook_attempts_total{result="succeeded"} 9`,
		`keygate_webhook_attempts_total{result="retry"} 4`,
		`keygate_webhook_attempts_total{result="given_up"} 1`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
