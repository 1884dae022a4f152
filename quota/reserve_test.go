package quota

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// reservations is a store of counters that keeps the larger count, as
// keygate.Store.SaveCounters does.
type reservations struct {
	mu    sync.Mutex
	m     map[string]int64
	calls int
	fail  bool
	delay time.Duration
}

func (r *reservations) reserve(_ context.Context, c keygate.Counter) error {
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail {
		return errors.New("store down")
	}
	if r.m == nil {
		r.m = map[string]int64{}
	}
	r.m[c.KeyID+" "+c.Day] = max(r.m[c.KeyID+" "+c.Day], c.Count)
	return nil
}

func (r *reservations) get(key string, day time.Time) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[key+" "+day.Format(time.DateOnly)]
}

func (r *reservations) counters() []keygate.Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []keygate.Counter
	for k, n := range r.m {
		out = append(out, keygate.Counter{KeyID: k[:len(k)-11], Day: k[len(k)-10:], Count: n})
	}
	return out
}

func small(quota int64) keygate.Limits {
	return keygate.Limits{QuotaPerDay: quota, RatePerSecond: 1e9, Burst: 1 << 30}
}

// Every admitted request is covered by a stored reservation before Take
// returns; a limiter restored from what was stored (a restart after a
// crash) admits nothing beyond the quota.
func TestReserveBeforeAdmitting(t *testing.T) {
	c := newClock(noon)
	var st reservations
	l := NewLocal(Options{Now: c.Now, Reserve: st.reserve})
	for i := int64(1); i <= 50; i++ {
		if r := l.take("k", small(50)); !r.Allowed() {
			t.Fatalf("request %d refused: %+v", i, r)
		}
		if got := st.get("k", noon); got < i {
			t.Fatalf("after %d admitted, %d reserved: a crash now would give quota back", i, got)
		}
	}
	if r := l.take("k", small(50)); r.Outcome != keygate.OutcomeQuotaExceeded {
		t.Fatalf("request 51: %+v", r)
	}
	if st.calls != 50 {
		t.Errorf("reservations for a quota of 50: %d, want 50 (one step each)", st.calls)
	}
	// A crash: nothing saved by Dirty, only the reservations.
	l2 := NewLocal(Options{Now: c.Now, Reserve: st.reserve})
	l2.Restore(st.counters())
	if r := l2.take("k", small(50)); r.Outcome != keygate.OutcomeQuotaExceeded {
		t.Fatalf("after a restart from the reservations: %+v, want QUOTA_EXCEEDED", r)
	}
}

// Large quotas are reserved in steps of quota/ReserveSteps, and a crash
// counts at most one step that was not used.
func TestReserveSteps(t *testing.T) {
	c := newClock(noon)
	var st reservations
	l := NewLocal(Options{Now: c.Now, Reserve: st.reserve, ReserveSteps: 10})
	takeN(t, l, "k", small(1000), 250)
	if st.calls != 3 || st.get("k", noon) != 300 {
		t.Fatalf("250 of 1000 in steps of 100: %d reservations up to %d, want 3 up to 300", st.calls, st.get("k", noon))
	}
	l2 := NewLocal(Options{Now: c.Now, Reserve: st.reserve, ReserveSteps: 10})
	l2.Restore(st.counters())
	if r := l2.peek("k", small(1000)); r.QuotaRemaining != 700 {
		t.Fatalf("after a restart: %d remaining, want 700 (the unused 50 of the step count as used)", r.QuotaRemaining)
	}
	// The next day starts over.
	c.Advance(24 * time.Hour)
	takeN(t, l, "k", small(1000), 1)
	if got := st.get("k", noon.Add(24*time.Hour)); got != 100 {
		t.Fatalf("next day's first reservation: %d, want 100", got)
	}
}

// A failing Reserve lets requests pass (limits fail open), counted as
// without reservations, and is tried again after ReserveRetry.
func TestReserveFailure(t *testing.T) {
	c := newClock(noon)
	st := reservations{fail: true}
	l := NewLocal(Options{Now: c.Now, Reserve: st.reserve})
	takeN(t, l, "k", small(50), 10)
	if st.calls != 1 || l.ReserveFailures() != 1 {
		t.Fatalf("while failing: %d calls, %d failures; want 1 and 1 (no retry before ReserveRetry)", st.calls, l.ReserveFailures())
	}
	if d := l.Dirty(); len(d) != 1 || d[0].Count != 10 {
		t.Fatalf("Dirty: %+v, want the 10 counted", d)
	}
	st.mu.Lock()
	st.fail = false
	st.mu.Unlock()
	c.Advance(ReserveRetry)
	takeN(t, l, "k", small(50), 1)
	if st.get("k", noon) != 11 {
		t.Fatalf("after the store is back: reserved %d, want 11", st.get("k", noon))
	}
}

// Concurrent requests of one key wait for one reservation at a time and
// never get past what is reserved, nor past the quota.
func TestReserveConcurrent(t *testing.T) {
	c := newClock(noon)
	st := reservations{delay: time.Millisecond}
	l := NewLocal(Options{Now: c.Now, Reserve: st.reserve})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 20 {
				if l.take("k", small(100)).Allowed() {
					n := admitted.Add(1)
					if r := st.get("k", noon); r < n {
						t.Errorf("%d admitted with %d reserved", n, r)
					}
				}
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 100 || st.get("k", noon) != 100 {
		t.Fatalf("admitted %d, reserved %d; want 100 and 100", admitted.Load(), st.get("k", noon))
	}
}
