package engine_test

import (
	"context"
	"net/netip"
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
