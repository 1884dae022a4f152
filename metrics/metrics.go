// Package metrics exposes keygate's Prometheus metrics: verifications by
// outcome, verification latency, the usage buffer's depth and drops,
// store errors, and webhook delivery attempts.
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keygate/keygate"
)

// Sources are read when Prometheus scrapes; nil sources are not exported.
type Sources struct {
	UsageDepth         func() int
	UsageDropped       func() uint64
	UsageWritten       func() uint64
	UsageWriteFailures func() uint64
	CounterFlushErrors func() uint64
	// LimiterErrors counts requests that passed without limits because
	// the limiter failed (see engine.Limiter).
	LimiterErrors func() uint64
	// RootKeyFailures counts wrong root keys presented to the API (see
	// engine.Engine.AuthenticateRoot).
	RootKeyFailures func() uint64
	// WebhookAttempts returns the webhook delivery attempts recorded:
	// succeeded, failed to be retried, failed and given up (see
	// webhook.Dispatcher.Counts).
	WebhookAttempts func() (succeeded, retried, gaveUp uint64)
	// SharedCounting reports whether rate limits and quotas are counted in
	// Redis (true) or, Redis being unreachable, by this instance alone;
	// LocalDecisions counts the requests decided locally meanwhile (see
	// redis.Limiter). FeedUp reports whether the change feed is
	// subscribed, and SyncFailures counts failed catch-ups from the store
	// (see engine.Engine.Sync). Set only with --redis (SyncFailures also on
	// PostgreSQL alone).
	SharedCounting func() bool
	LocalDecisions func() uint64
	FeedUp         func() bool
	SyncFailures   func() uint64
	// UsageCapped counts raw usage events counted as aggregates because
	// their client IP passed its per-minute allowance (see
	// engine.UsageOptions.PerIPEvents).
	UsageCapped func() uint64
	// QuotaReserveFailures counts quota reservations the store could not
	// take (see quota.Options.Reserve); requests passed unreserved.
	QuotaReserveFailures func() uint64
}

// Metrics holds keygate's collectors in their own registry.
type Metrics struct {
	reg           *prometheus.Registry
	verifications map[keygate.Outcome]prometheus.Counter
	latency       prometheus.Histogram
	storeErrors   *storeErrors
}

// storeErrors exports one counter per failing operation: the API's admin
// writes, counted here, and the background writers' own counts.
type storeErrors struct {
	desc  *prometheus.Desc
	admin atomic.Uint64
	funcs map[string]func() uint64
}

func (c *storeErrors) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *storeErrors) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.admin.Load()), "admin")
	for op, f := range c.funcs {
		if f != nil {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(f()), op)
		}
	}
}

// New returns Metrics with every collector registered.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), verifications: map[keygate.Outcome]prometheus.Counter{}}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keygate_verifications_total",
		Help: "Key verifications, by outcome code.",
	}, []string{"outcome"})
	// Resolve every child once: the hot path then costs one atomic add.
	for _, o := range keygate.Outcomes {
		m.verifications[o] = vec.WithLabelValues(string(o))
	}
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "keygate_verification_duration_seconds",
		Help:    "Time to verify one key, from finding it in the request to the verdict.",
		Buckets: []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2},
	})
	m.storeErrors = &storeErrors{
		desc: prometheus.NewDesc("keygate_store_errors_total", "Store operations that failed, by operation.", []string{"op"}, nil),
		funcs: map[string]func() uint64{
			"usage_write":   src.UsageWriteFailures,
			"counter_flush": src.CounterFlushErrors,
		},
	}
	m.reg.MustRegister(vec, m.latency, m.storeErrors)

	if src.UsageDepth != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keygate_usage_buffer_depth",
			Help: "Usage events waiting to be written to the store.",
		}, func() float64 { return float64(src.UsageDepth()) }))
	}
	if src.UsageDropped != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keygate_usage_dropped_total",
			Help: "Usage events dropped because the buffer was full (the requests still passed).",
		}, func() float64 { return float64(src.UsageDropped()) }))
	}
	if src.UsageCapped != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keygate_usage_capped_total",
			Help: "Requests recorded as counts only, not raw usage events, because their client IP passed --usage-per-ip.",
		}, func() float64 { return float64(src.UsageCapped()) }))
	}
	if src.QuotaReserveFailures != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keygate_quota_reserve_failures_total",
			Help: "Quota reservations the store could not take; requests then passed unreserved for a second, and a crash meanwhile could give quota back.",
		}, func() float64 { return float64(src.QuotaReserveFailures()) }))
	}
	if src.LimiterErrors != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keygate_limiter_errors_total",
			Help: "Requests that passed without rate limit or quota because the limiter failed.",
		}, func() float64 { return float64(src.LimiterErrors()) }))
	}
	gauge := func(name, help string, f func() bool) {
		if f == nil {
			return
		}
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if f() {
				return 1
			}
			return 0
		}))
	}
	counter := func(name, help string, f func() uint64) {
		if f == nil {
			return
		}
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) }))
	}
	gauge("keygate_redis_shared_counting", "1 while rate limits and quotas are counted in Redis, shared by every instance; 0 while Redis is unreachable and this instance counts alone.", src.SharedCounting)
	counter("keygate_limiter_local_decisions_total", "Requests whose rate limit and quota were decided by this instance alone because Redis was unreachable.", src.LocalDecisions)
	gauge("keygate_change_feed_up", "1 while the Redis change feed is subscribed; 0 while changes made on other instances arrive only by polling the store.", src.FeedUp)
	counter("keygate_sync_failures_total", "Failed attempts to catch up with other instances' changes from the store.", src.SyncFailures)
	if src.RootKeyFailures != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keygate_root_key_failures_total",
			Help: "Requests with a wrong root key (unknown, revoked or mistyped); each counts against its client IP's failure throttle.",
		}, func() float64 { return float64(src.RootKeyFailures()) }))
	}
	if src.WebhookAttempts != nil {
		m.reg.MustRegister(&webhookAttempts{
			desc: prometheus.NewDesc("keygate_webhook_attempts_total",
				"Webhook delivery attempts, by result: succeeded, retry (failed, to be retried) or given_up (failed for 24 hours, marked failed).",
				[]string{"result"}, nil),
			f: src.WebhookAttempts,
		})
	}
	if src.UsageWritten != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keygate_usage_written_total",
			Help: "Usage events written to the store.",
		}, func() float64 { return float64(src.UsageWritten()) }))
	}
	return m
}

// ObserveVerify counts one verification and its duration.
func (m *Metrics) ObserveVerify(o keygate.Outcome, d time.Duration) {
	if c := m.verifications[o]; c != nil {
		c.Inc()
	}
	m.latency.Observe(d.Seconds())
}

// StoreError counts a store operation of the API that failed.
func (m *Metrics) StoreError() { m.storeErrors.admin.Add(1) }

// webhookAttempts exports the dispatcher's attempt counts as one counter
// per result.
type webhookAttempts struct {
	desc *prometheus.Desc
	f    func() (succeeded, retried, gaveUp uint64)
}

func (c *webhookAttempts) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *webhookAttempts) Collect(ch chan<- prometheus.Metric) {
	ok, retry, gaveUp := c.f()
	for result, n := range map[string]uint64{"succeeded": ok, "retry": retry, "given_up": gaveUp} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), result)
	}
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
