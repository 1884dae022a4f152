package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// What the admin command groups share around call: running a group's
// subcommand, the arguments and flags most subcommands take (one ID, no
// arguments, a page of a list, points in time).

// subcommandFunc runs one subcommand of a group with its flag set, on
// which the admin options o are already declared, and the arguments
// after its name.
type subcommandFunc func(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error

// runGroup runs `keygate GROUP SUBCOMMAND …` with the subcommand subs
// names: the group's usage for -h, a usage error for none or for one it
// does not have.
func (m *Main) runGroup(ctx context.Context, args []string, group, usage string, subs map[string]subcommandFunc) error {
	sub, args, err := m.subcommand(args, group, usage)
	if err != nil {
		return err
	}
	run, ok := subs[sub]
	if !ok {
		return unknownSubcommand(group, sub, usage)
	}
	fs := m.newFlagSet(group + " " + sub)
	return run(ctx, m.adminFlags(fs), fs, args)
}

// parseID parses the arguments of a subcommand that takes one ID, which
// must start with prefix (oneID), and flags.
func parseID(fs *flag.FlagSet, args []string, cmd, prefix, what string) (string, error) {
	pos, err := parseCmd(fs, args)
	if err != nil {
		return "", err
	}
	return oneID(cmd, prefix, what, pos)
}

// parseFlagsOnly parses the arguments of a subcommand that takes flags
// only; any other argument is a usage error that says why.
func parseFlagsOnly(fs *flag.FlagSet, args []string, why string) error {
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: %s", errUsage, why)
	}
	return nil
}

// page is the --limit and --cursor of a list subcommand.
type page struct {
	limit  *int
	cursor *string
}

// pageFlags declares --limit and --cursor on fs; what names the items
// listed ("keys").
func pageFlags(fs *flag.FlagSet, what string) page {
	return page{
		limit:  fs.Int("limit", 0, "at most `N` "+what+" (default 50)"),
		cursor: fs.String("cursor", "", "continue after this `CURSOR` (from the previous page)"),
	}
}

// set adds the page asked for to q: the cursor when given, the limit when
// positive (the server's default otherwise).
func (p page) set(q url.Values) {
	setQuery(q, "cursor", *p.cursor)
	if *p.limit > 0 {
		q.Set("limit", strconv.Itoa(*p.limit))
	}
}

// setTimes sets, for each name, value pair whose value is given, the
// query parameter name to the point in time the value names (parseSince),
// in RFC 3339; a value it cannot read is a usage error naming the flag
// --name.
func setTimes(q url.Values, now time.Time, kv ...string) error {
	for i := 0; i+1 < len(kv); i += 2 {
		name, v := kv[i], kv[i+1]
		if v == "" {
			continue
		}
		t, err := parseSince(v, now)
		if err != nil {
			return fmt.Errorf("%w: --%s %q: %v", errUsage, name, v, err)
		}
		q.Set(name, t.UTC().Format(time.RFC3339))
	}
	return nil
}

// parseSince reads a point in time: RFC 3339, a UTC date, or a duration
// before now ("24h" or "7d" ago; "ago" may follow).
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(expandDays(strings.TrimSpace(strings.TrimSuffix(s, "ago"))))
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("give an RFC 3339 time (2026-11-28T09:00:00Z), a date (2026-11-28) or a duration ago (24h)")
	}
	return now.Add(-d), nil
}

// expandDays lets a duration ago be given in days ("7d"), which Go
// durations lack.
func expandDays(s string) string {
	if n, ok := strings.CutSuffix(strings.TrimSpace(s), "d"); ok {
		if d, err := strconv.Atoi(n); err == nil && d >= 0 {
			return strconv.Itoa(d*24) + "h"
		}
	}
	return s
}
