package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/keygate/keygate"
)

// Reserver writes quota reservations (quota.Options.Reserve) to a store,
// committing the reservations that arrive while one write is under way
// together in the next: at the start of a day, when every active key
// reserves at once, that is one transaction (one fsync on SQLite) per
// round instead of one per key. It is safe for concurrent use.
type Reserver struct {
	store   keygate.Store
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	queue   []reservation
	writing bool
}

type reservation struct {
	c    keygate.Counter
	done chan error
}

// NewReserver returns a Reserver on store; one write waits at most timeout
// (0 = 2s) before its callers are told it failed, which is logged to log
// (nil: not logged).
func NewReserver(store keygate.Store, timeout time.Duration, log *slog.Logger) *Reserver {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reserver{store: store, timeout: timeout, log: log}
}

// Reserve stores c (the larger count wins, as Store.SaveCounters keeps it)
// and returns once it is durable, or with the write's error.
func (r *Reserver) Reserve(ctx context.Context, c keygate.Counter) error {
	done := make(chan error, 1)
	r.mu.Lock()
	r.queue = append(r.queue, reservation{c, done})
	if !r.writing {
		r.writing = true
		go r.write()
	}
	r.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write commits the queued reservations, round after round, until none
// are left.
func (r *Reserver) write() {
	for {
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		if len(batch) == 0 {
			r.writing = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		cs := make([]keygate.Counter, len(batch))
		for i, b := range batch {
			cs[i] = b.c
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		err := r.store.SaveCounters(ctx, mergeCounters(cs[:1], cs[1:]))
		cancel()
		if err != nil {
			r.log.Error("reserving quota failed: requests pass unreserved for a second (a crash now may give back up to a flush interval of quota)", "counters", len(cs), "err", err)
		}
		for _, b := range batch {
			b.done <- err
		}
	}
}
