package engine

import (
	"context"
	"time"

	"github.com/keygate/keygate"
)

// Feed carries change notifications between keygate instances that share
// one store, so that a change committed on one (a revocation, a key, tier,
// account or root key change) reaches every other instance's index
// without waiting for a poll. redis.Feed is one, on Redis pub/sub.
//
// Delivery is best effort: a notification published while an instance is
// not subscribed is lost to it. The engine makes up for that with Sync,
// which it runs each time the feed (re)subscribes and, as a backstop,
// every Options.FeedSyncInterval.
type Feed interface {
	// Publish hands a change this instance committed to the feed, for
	// every other instance. It must not block: a feed that drops changes
	// delivers a ChangeResync instead.
	Publish(c keygate.Change)
	// Subscribe calls apply with every change another instance publishes
	// until ctx is done, and up(true) each time it has subscribed (the
	// first time and after every reconnection), up(false) each time it
	// lost the subscription. It returns when ctx is done.
	Subscribe(ctx context.Context, apply func(keygate.Change), up func(bool)) error
}

// ChangeResync is the kind of change a Feed delivers in place of changes
// it had to drop (such as the thousands of keys of a bulk import): the
// engine then catches up from the store with Sync.
const ChangeResync keygate.ChangeKind = "resync"

// SyncOverlap is how far before the last catch-up Sync asks the store for
// changes: records carry their writer's clock, and a write stamped just
// before one Sync may commit just after it. Instances' clocks must agree
// to well within this, as NTP keeps them.
const SyncOverlap = 10 * time.Second

// Sync catches the index up with writes made by other instances sharing
// the store: it asks the store for every record changed since a little
// before the last Load or Sync began (SyncOverlap) and applies each.
// Applying a change twice is harmless.
func (e *Engine) Sync(ctx context.Context) error {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	start := e.now()
	cs, err := e.store.ChangedSince(ctx, e.mark.Add(-SyncOverlap))
	if err != nil {
		e.syncFailures.Add(1)
		return err
	}
	for _, c := range cs {
		if c.Kind == keygate.ChangeKey && c.Key != nil && e.current(c.Key) {
			continue // the common case: nothing new
		}
		e.Apply(ctx, c)
	}
	e.mark = start
	e.syncs.Add(1)
	return nil
}

// current reports whether the index holds k as it is: at the same
// UpdatedAt, and with the same enabled and revoked state, which two writes
// in one millisecond could change without moving UpdatedAt.
func (e *Engine) current(k *keygate.Key) bool {
	sum, ok := keygate.ParseHash(k.Hash)
	if !ok {
		return false
	}
	e.mu.RLock()
	old := e.keys[sum]
	e.mu.RUnlock()
	if old == nil || old.updated != k.UpdatedAt.UnixNano() || old.enabled != k.Enabled {
		return false
	}
	var revoked *time.Time
	if old.rare != nil {
		revoked = old.rare.revokedAt
	}
	return (revoked == nil) == (k.RevokedAt == nil) && (revoked == nil || revoked.Equal(*k.RevokedAt))
}

// Syncs returns how many Syncs succeeded, and SyncFailures how many failed.
func (e *Engine) Syncs() uint64        { return e.syncs.Load() }
func (e *Engine) SyncFailures() uint64 { return e.syncFailures.Load() }

// FeedUp reports whether the Feed is subscribed.
func (e *Engine) FeedUp() bool { return e.feedUp.Load() }

// follow keeps the index current with other instances until ctx is done:
// it subscribes to the Feed, if any, and runs Sync when the feed
// (re)subscribes, every SyncInterval while it is not subscribed, and every
// FeedSyncInterval while it is.
func (e *Engine) follow(ctx context.Context) {
	resync := make(chan struct{}, 1)
	done := make(chan struct{})
	if e.feed != nil {
		go func() {
			defer close(done)
			wake := func() {
				select {
				case resync <- struct{}{}:
				default:
				}
			}
			_ = e.feed.Subscribe(ctx, func(c keygate.Change) {
				if c.Kind == ChangeResync {
					wake()
					return
				}
				e.Apply(ctx, c)
			}, func(up bool) {
				e.feedUp.Store(up)
				if up {
					wake()
				}
			})
		}()
	} else {
		close(done)
	}
	defer func() { <-done }()
	t := time.NewTimer(e.syncEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-resync:
		}
		if err := e.Sync(ctx); err != nil {
			if !failing && ctx.Err() == nil {
				e.log.Warn("catching up with other instances' changes failed; retrying", "err", err)
			}
			failing = true
		} else if failing {
			failing = false
			e.log.Info("caught up with other instances' changes again")
		}
		next := e.syncEvery
		if e.feedUp.Load() {
			next = e.feedSyncEv
		}
		t.Reset(next)
	}
}
