package quota_test

import (
	"context"
	"fmt"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/quota"
)

var (
	_ engine.Limiter       = (*quota.Local)(nil)
	_ engine.LocalCounters = (*quota.Local)(nil)
)

func ExampleLocal() {
	now := time.Date(2025, 3, 14, 23, 59, 58, 0, time.UTC)
	l := quota.NewLocal(quota.Options{Now: func() time.Time { return now }})
	lim := keygate.Limits{QuotaPerDay: 2, RatePerSecond: 1, Burst: 1}

	for _, step := range []time.Duration{0, 0, time.Second, 0, time.Second} {
		now = now.Add(step)
		r, _ := l.Take(context.Background(), "key_1", lim, now)
		fmt.Printf("%s %s quota=%d tokens=%d retry=%v\n",
			now.Format(time.TimeOnly), r.Outcome, r.QuotaRemaining, r.RateRemaining, r.RetryAfter)
	}
	fmt.Println(l.Dirty())
	// Output:
	// 23:59:58 VALID quota=1 tokens=0 retry=0s
	// 23:59:58 RATE_LIMITED quota=1 tokens=0 retry=1s
	// 23:59:59 VALID quota=0 tokens=0 retry=0s
	// 23:59:59 RATE_LIMITED quota=0 tokens=0 retry=1s
	// 00:00:00 VALID quota=1 tokens=0 retry=0s
	// [{key_1 2025-03-14 2} {key_1 2025-03-15 1}]
}
