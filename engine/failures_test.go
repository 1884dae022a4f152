package engine_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/engine"
)

func TestTooManyFailures(t *testing.T) {
	f := newFixture(t, false)
	f.engine = engine.New(f.store, engine.Options{Hasher: f.hasher, Now: f.clock.Now, FailureLimit: 5, FailureWindow: time.Minute})
	if err := f.engine.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, valid := f.key(t, nil)
	unknown, _ := apikey.Generate(apikey.DefaultPrefix, keygate.EnvLive)
	from := func(key, ip string) keygate.Verification {
		return f.engine.Verify(context.Background(), keygate.VerifyRequest{Key: key, IP: netip.MustParseAddr(ip)})
	}

	for i := range 5 {
		if got := from(unknown, "203.0.113.9").Outcome; got != keygate.OutcomeNotFound {
			t.Fatalf("guess %d: got %s, want NOT_FOUND", i, got)
		}
	}
	v := from(valid, "203.0.113.9")
	if v.Outcome != keygate.OutcomeTooManyFailures || v.Limits.RetryAfter != 12*time.Second {
		t.Fatalf("after 5 failures in a minute, even a valid key: got %s retry %s, want TOO_MANY_FAILURES retry 12s", v.Outcome, v.Limits.RetryAfter)
	}
	if got := from(valid, "203.0.113.10").Outcome; got != keygate.OutcomeValid {
		t.Fatalf("another IP: got %s, want VALID", got)
	}
	if got := f.engine.Verify(context.Background(), keygate.VerifyRequest{Key: valid}).Outcome; got != keygate.OutcomeValid {
		t.Fatalf("no IP known (verify API without ip): got %s, want VALID", got)
	}
	f.clock.Add(12 * time.Second)
	if got := from(valid, "203.0.113.9").Outcome; got != keygate.OutcomeValid {
		t.Fatalf("after one token refilled: got %s, want VALID", got)
	}
	// A missing key is not a guess.
	for range 20 {
		f.engine.Verify(context.Background(), keygate.VerifyRequest{IP: netip.MustParseAddr("198.51.100.1")})
	}
	if got := from(valid, "198.51.100.1").Outcome; got != keygate.OutcomeValid {
		t.Fatalf("after requests without a key: got %s, want VALID", got)
	}
	// IPv6 clients are counted per /64.
	for i := range 5 {
		from("garbage-"+string(rune('a'+i)), "2001:db8:1:2::"+string(rune('1'+i)))
	}
	if got := from(valid, "2001:db8:1:2:ffff::1").Outcome; got != keygate.OutcomeTooManyFailures {
		t.Fatalf("same /64: got %s, want TOO_MANY_FAILURES", got)
	}
	if got := from(valid, "2001:db8:1:3::1").Outcome; got != keygate.OutcomeValid {
		t.Fatalf("another /64: got %s, want VALID", got)
	}
}

// BenchmarkVerifyWhileFailing measures valid verifications from parallel
// clients while other client IPs are tracked by the failure throttle: the
// figure at ips=100000 must match the one at ips=0. With attack=true each
// operation is one valid verification plus one failed one from an IP not
// seen before, as under a spread-out guessing attack that keeps the
// throttle full.
func BenchmarkVerifyWhileFailing(b *testing.B) {
	for _, c := range []struct {
		ips    int
		attack bool
	}{{0, false}, {100_000, false}, {100_000, true}} {
		n := c.ips
		b.Run(fmt.Sprintf("ips=%d/attack=%t", n, c.attack), func(b *testing.B) {
			f := newFixture(b, false)
			_, valid := f.key(b, nil)
			eng := productionEngine(b, f, false)
			unknown, _ := apikey.Generate(apikey.DefaultPrefix, keygate.EnvLive)
			ctx := context.Background()
			for i := range n {
				ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				if got := eng.Verify(ctx, keygate.VerifyRequest{Key: unknown, IP: ip}).Outcome; got != keygate.OutcomeNotFound {
					b.Fatalf("failing IP %s: got %s, want NOT_FOUND", ip, got)
				}
			}
			var next atomic.Uint32
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(1)
				req := keygate.VerifyRequest{Key: valid, IP: netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})}
				bad := keygate.VerifyRequest{Key: unknown}
				for j := uint32(0); pb.Next(); j++ {
					if v := eng.Verify(ctx, req); v.Outcome != keygate.OutcomeValid {
						b.Fatalf("got %s, want VALID", v.Outcome)
					}
					if c.attack {
						bad.IP = netip.AddrFrom4([4]byte{byte(20 + i), byte(j >> 16), byte(j >> 8), byte(j)})
						eng.Verify(ctx, bad)
					}
				}
			})
		})
	}
}
