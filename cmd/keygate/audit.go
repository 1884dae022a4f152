package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

// auditDetailsWidth bounds the DETAILS column of the audit table; --json
// shows them whole.
const auditDetailsWidth = 80

// runAudit runs `keygate audit`: one page of the audit log, newest first.
func (m *Main) runAudit(ctx context.Context, args []string) error {
	fs := m.newFlagSet("audit")
	o := m.adminFlags(fs)
	actor := fs.String("actor", "", "only events by this `ACTOR`, such as root_key:rk_… or system")
	action := fs.String("action", "", "only this `ACTION`, such as key.created, key.rotated, key.revoked, tier.updated")
	targetType := fs.String("target-type", "", "only events about this `TYPE`: key, account, tier or root_key")
	target := fs.String("target", "", "only events about this `ID`: a key ID (key_…), account ID (acc_…), root key ID (rk_…) or tier name")
	since := fs.String("since", "", "only events at or after `TIME`: RFC 3339, a date (2026-11-28), or a duration ago such as 24h")
	until := fs.String("until", "", "only events before `TIME` (same forms as --since)")
	limit := fs.Int("limit", 0, "at most `N` events (default 50)")
	cursor := fs.String("cursor", "", "continue after this `CURSOR` (from the previous page)")
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: audit takes only flags, such as --action key.revoked or --target key_…", errUsage)
	}
	if looksLikeKey(*target) {
		return fmt.Errorf("%w: --target takes an ID (key_…), not a key; plaintext keys never appear in the audit log", errUsage)
	}
	q := url.Values{}
	setQuery(q, "actor", *actor, "action", *action, "target_type", *targetType, "target_id", strings.TrimSpace(*target), "cursor", *cursor)
	now := m.now()
	for _, b := range []struct{ name, v string }{{"since", *since}, {"until", *until}} {
		if b.v == "" {
			continue
		}
		t, err := parseSince(b.v, now)
		if err != nil {
			return fmt.Errorf("%w: --%s %q: %v", errUsage, b.name, b.v, err)
		}
		q.Set(b.name, t.UTC().Format(time.RFC3339))
	}
	if *limit < 0 || *limit > keygate.MaxPageSize {
		return fmt.Errorf("%w: --limit must be from 1 to %d", errUsage, keygate.MaxPageSize)
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.List[*keygate.AuditEvent], error) {
		return c.Audit(ctx, q)
	}, func(w io.Writer, l *api.List[*keygate.AuditEvent]) error {
		if err := auditTable(w, l); err != nil {
			return err
		}
		return nextPage(m.Stderr, l.NextCursor)
	})
}

// parseSince reads a point in time: RFC 3339, a UTC date, or a duration
// before now ("24h" means 24 hours ago).
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(strings.TrimSuffix(s, "ago")))
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("give an RFC 3339 time (2026-11-28T09:00:00Z), a date (2026-11-28) or a duration ago (24h)")
	}
	return now.Add(-d), nil
}

func auditTable(w io.Writer, l *api.List[*keygate.AuditEvent]) error {
	rows := make([][]string, len(l.Data))
	for i, e := range l.Data {
		target := e.TargetID
		if target == "" {
			target = e.TargetType
		}
		rows[i] = []string{e.Time.UTC().Format("2006-01-02 15:04:05"), e.Actor, e.Action, orDash(target), orDash(compactDetails(e.Details, auditDetailsWidth))}
	}
	return table(w, "TIME\tACTOR\tACTION\tTARGET\tDETAILS", rows)
}

// compactDetails renders JSON on one line, cut to at most width characters.
func compactDetails(raw json.RawMessage, width int) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		b.Reset()
		b.Write(raw)
	}
	s := strings.Join(strings.Fields(b.String()), " ") // no tabs or newlines in a table cell
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:width-1]) + "…"
}
