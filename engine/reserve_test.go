package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/engine"
)

// Reservations made at once are all durable when Reserve returns, the
// larger count winning, and a closed store is reported to every caller.
func TestReserver(t *testing.T) {
	f := newFixture(t, false)
	r := engine.NewReserver(f.store, time.Second, nil)
	day := f.clock.Now().UTC().Format(time.DateOnly)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := r.Reserve(context.Background(), keygate.Counter{KeyID: fmt.Sprint("k", i%10), Day: day, Count: int64(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	cs, err := f.store.Counters(context.Background(), day)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, c := range cs {
		got[c.KeyID] = c.Count
	}
	for i := range 10 {
		if want := int64(40 + i); got[fmt.Sprint("k", i)] != want {
			t.Errorf("k%d: stored %d, want %d (the largest reserved)", i, got[fmt.Sprint("k", i)], want)
		}
	}
	f.store.Close()
	if err := r.Reserve(context.Background(), keygate.Counter{KeyID: "k0", Day: day, Count: 99}); keygate.ErrorCode(err) != keygate.EUNAVAILABLE {
		t.Fatalf("Reserve on a closed store: %v, want EUNAVAILABLE", err)
	}
}
