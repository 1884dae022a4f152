package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate"
)

// Store is what the Dispatcher needs of the store's outbox.
type Store interface {
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*keygate.WebhookDelivery, error)
	RecordDeliveryAttempt(ctx context.Context, id string, a keygate.DeliveryAttempt) error
	PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error)
}

// Defaults of a Dispatcher's settings.
const (
	DefaultPollInterval = time.Second
	DefaultBatch        = 32
	DefaultConcurrency  = 8
	// DefaultKeep is how long finished deliveries stay in the log.
	DefaultKeep = 30 * 24 * time.Hour
	// FirstRetry is the wait after a first failed attempt; each further
	// failure doubles it, up to MaxRetry.
	FirstRetry = 5 * time.Second
	MaxRetry   = time.Hour
)

// Dispatcher sends due deliveries from the outbox, signed, and records
// each attempt: a 2xx answer is a success; anything else, or no answer,
// is retried with exponential backoff and jitter until the delivery's
// give-up time (24 hours after it was raised), when it is marked failed.
//
// Delivery is at least once: a delivery is leased while it is sent, and
// an instance that dies before recording the attempt leaves the lease to
// run out and the delivery to be sent again, by it or by another instance.
// Receivers deduplicate by the webhook-id header.
type Dispatcher struct {
	Store Store
	// Client sends the requests; nil means NewClient(AllowPrivate).
	Client *http.Client
	// AllowPrivate lets the default Client reach loopback and private
	// addresses (--webhooks-allow-private).
	AllowPrivate bool
	// PollInterval is how often the outbox is checked when Wake is not
	// called; zero means DefaultPollInterval.
	PollInterval time.Duration
	// Batch is how many deliveries one claim takes, Concurrency how many
	// are sent at once; zero means the defaults.
	Batch, Concurrency int
	// Keep is how long finished deliveries are kept; zero means
	// DefaultKeep.
	Keep time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Jitter spreads a retry delay; nil picks uniformly from [d/2, d].
	Jitter func(d time.Duration) time.Duration
	Logger *slog.Logger

	once   sync.Once
	client *http.Client
	wake   chan struct{}

	// Attempts recorded, by result; see Counts.
	succeeded, failed, gaveUp atomic.Uint64
}

// Counts returns how many attempts this Dispatcher recorded since it
// started: successes, failures that will be retried, and failures after
// which the delivery was given up (marked failed). Metrics export them.
func (d *Dispatcher) Counts() (succeeded, retried, gaveUp uint64) {
	return d.succeeded.Load(), d.failed.Load(), d.gaveUp.Load()
}

func (d *Dispatcher) init() {
	d.once.Do(func() {
		d.client = d.Client
		if d.client == nil {
			d.client = NewClient(d.AllowPrivate)
		}
		d.wake = make(chan struct{}, 1)
	})
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Dispatcher) log() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Wake makes Run check the outbox now rather than at its next poll. It
// never blocks.
func (d *Dispatcher) Wake() {
	d.init()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// lease is how long a claimed delivery is reserved for its sender: longer
// than an attempt can take.
func lease() time.Duration { return 3 * Timeout }

// Run delivers until ctx is done, checking the outbox every PollInterval
// or when woken, and prunes finished deliveries older than Keep hourly.
// Attempts cut short by ctx are not recorded: their leases run out and
// the next run sends them again.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.init()
	poll := d.PollInterval
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	keep := d.Keep
	if keep <= 0 {
		keep = DefaultKeep
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	var lastPrune time.Time
	for {
		n, err := d.DeliverDue(ctx)
		if err != nil && ctx.Err() == nil {
			d.log().Warn("webhook deliveries", "err", err)
		}
		if now := d.now(); now.Sub(lastPrune) >= time.Hour {
			lastPrune = now
			if _, err := d.Store.PruneWebhookDeliveries(ctx, now.Add(-keep)); err != nil && ctx.Err() == nil {
				d.log().Warn("prune webhook deliveries", "err", err)
			}
		}
		if err == nil && n == d.batch() {
			if ctx.Err() != nil {
				return nil
			}
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-d.wake:
		}
	}
}

func (d *Dispatcher) batch() int {
	if d.Batch > 0 {
		return d.Batch
	}
	return DefaultBatch
}

// DeliverDue claims the deliveries due now, sends them and records the
// attempts, and returns how many it claimed.
func (d *Dispatcher) DeliverDue(ctx context.Context) (int, error) {
	d.init()
	ds, err := d.Store.ClaimDeliveries(ctx, d.now(), lease(), d.batch())
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	conc := d.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, del := range ds {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := d.deliver(ctx, del); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return len(ds), errors.Join(errs...)
}

// deliver makes one attempt at del and records it.
func (d *Dispatcher) deliver(ctx context.Context, del *keygate.WebhookDelivery) error {
	at := d.now()
	status, sendErr := d.send(ctx, del, at)
	if ctx.Err() != nil {
		return nil // shutting down: the lease runs out and the attempt is made again
	}
	a := keygate.DeliveryAttempt{At: at, Status: status, Succeeded: sendErr == nil}
	if sendErr != nil {
		a.Error = truncate(sendErr.Error(), 300)
		if next := at.Add(d.backoff(del.Attempts + 1)); next.Before(del.GiveUpAt) {
			a.NextAttemptAt = next
		}
		d.log().Info("webhook delivery failed", "delivery", del.ID, "webhook", del.WebhookID,
			"event", del.EventID, "attempt", del.Attempts+1, "status", status, "err", sendErr, "retry", !a.NextAttemptAt.IsZero())
	}
	if err := d.Store.RecordDeliveryAttempt(ctx, del.ID, a); err != nil {
		return fmt.Errorf("record attempt on %s: %w", del.ID, err)
	}
	switch {
	case a.Succeeded:
		d.succeeded.Add(1)
	case a.NextAttemptAt.IsZero():
		d.gaveUp.Add(1)
		d.log().Warn("webhook delivery given up", "delivery", del.ID, "webhook", del.WebhookID, "event", del.EventID,
			"attempts", del.Attempts+1, "status", status)
	default:
		d.failed.Add(1)
	}
	return nil
}

// send posts del's payload, signed at time at, and returns the answer's
// status and, unless it was a 2xx, why the attempt failed.
func (d *Dispatcher) send(ctx context.Context, del *keygate.WebhookDelivery, at time.Time) (int, error) {
	sig, err := Sign(del.Secret, del.EventID, at, del.Payload)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, del.URL, bytes.NewReader(del.Payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keygate-webhooks/"+keygate.Version)
	req.Header.Set("webhook-id", del.EventID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Drain a little so the connection can be reused; the body is not
	// kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the endpoint answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return resp.StatusCode, nil
}

// Backoff returns the wait after the n-th failed attempt (n from 1),
// before jitter: FirstRetry doubled n-1 times, at most MaxRetry.
func Backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 20 {
		return MaxRetry
	}
	return min(FirstRetry<<(n-1), MaxRetry)
}

func (d *Dispatcher) backoff(n int) time.Duration {
	b := Backoff(n)
	if d.Jitter != nil {
		return d.Jitter(b)
	}
	return b/2 + rand.N(b/2+1)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
