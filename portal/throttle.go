package portal

import (
	"sync"
	"time"
)

// throttle counts failed sign-ins per key (an email address, a client IP)
// in fixed windows: once a key has failed limit times within window, it is
// refused until the window that began with its first failure ends. It
// lives in memory, per instance: a restart forgets it, which costs an
// attacker a restart they cannot cause.
type throttle struct {
	limit  int
	window time.Duration
	max    int // entries kept at most; the oldest windows go first

	mu      sync.Mutex
	entries map[string]*throttleEntry
}

type throttleEntry struct {
	failures int
	until    time.Time // end of the window that began with the first failure
}

func newThrottle(limit int, window time.Duration) *throttle {
	return &throttle{limit: limit, window: window, max: 100_000, entries: map[string]*throttleEntry{}}
}

// blocked reports whether key may not try now, and for how long.
func (t *throttle) blocked(key string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil || !now.Before(e.until) {
		return 0, false
	}
	if e.failures < t.limit {
		return 0, false
	}
	return e.until.Sub(now), true
}

// fail records a failure of key at now.
func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil || !now.Before(e.until) {
		if e == nil && len(t.entries) >= t.max {
			t.prune(now)
		}
		e = &throttleEntry{until: now.Add(t.window)}
		t.entries[key] = e
	}
	e.failures++
}

// reset forgets key's failures (after a successful sign-in).
func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.entries, key)
	t.mu.Unlock()
}

// prune drops ended windows, and when none has ended, the entry whose
// window ends first, so that the map stays bounded under a flood of keys.
func (t *throttle) prune(now time.Time) {
	var oldest string
	var oldestUntil time.Time
	for k, e := range t.entries {
		if !now.Before(e.until) {
			delete(t.entries, k)
			continue
		}
		if oldest == "" || e.until.Before(oldestUntil) {
			oldest, oldestUntil = k, e.until
		}
	}
	if len(t.entries) >= t.max && oldest != "" {
		delete(t.entries, oldest)
	}
}
