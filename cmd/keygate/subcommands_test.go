package main

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSetTimes reads every form --since/--until (audit) and --from/--to
// (usage) take, and refuses the others with a usage error naming the flag.
func TestSetTimes(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{
		"2026-11-01T09:30:00Z":      "2026-11-01T09:30:00Z",
		"2026-11-01T09:30:00+01:00": "2026-11-01T08:30:00Z",
		"2026-11-01":                "2026-11-01T00:00:00Z",
		"24h":                       "2026-11-27T12:00:00Z",
		"90m ago":                   "2026-11-28T10:30:00Z",
		"7d":                        "2026-11-21T12:00:00Z",
		" 7d ago ":                  "2026-11-21T12:00:00Z",
	} {
		q := url.Values{}
		if err := setTimes(q, now, "since", in, "until", ""); err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := q.Get("since"); got != want || q.Has("until") {
			t.Errorf("%q: since=%q until=%q, want since=%q and no until", in, got, q.Get("until"), want)
		}
	}
	for _, in := range []string{"yesterday", "-24h", "7 days", "2026-13-01"} {
		err := setTimes(url.Values{}, now, "from", "2026-11-01", "to", in)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--to") || !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("--to %q: got %v, want a usage error that names --to and the forms", in, err)
		}
	}
}
