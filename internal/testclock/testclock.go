// Package testclock is the clock keygate's tests hand to what they build —
// stores, engines, limiters, servers all take a Now func — so that no test
// depends on when it runs: an hour or a day turning over mid-test cannot
// split a usage bucket or reset a quota.
package testclock

import (
	"sync"
	"time"
)

// Clock is a test clock, safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

// New returns a clock at t that moves a millisecond on at each reading,
// so that records made one after another have times and IDs in that
// order, as they would in production.
func New(t time.Time) *Clock { return &Clock{t: t, step: time.Millisecond} }

// Fixed returns a clock at t that moves only when told to.
func Fixed(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time, then moves it on by its step.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// Peek returns the clock's time without moving it.
func (c *Clock) Peek() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
