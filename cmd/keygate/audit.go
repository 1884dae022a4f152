package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
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
	pg := pageFlags(fs, "events")
	if err := parseFlagsOnly(fs, args, "audit takes only flags, such as --action key.revoked or --target key_…"); err != nil {
		return err
	}
	if looksLikeKey(*target) {
		return fmt.Errorf("%w: --target takes an ID (key_…), not a key; plaintext keys never appear in the audit log", errUsage)
	}
	q := url.Values{}
	setQuery(q, "actor", *actor, "action", *action, "target_type", *targetType, "target_id", strings.TrimSpace(*target))
	if err := setTimes(q, m.now(), "since", *since, "until", *until); err != nil {
		return err
	}
	if *pg.limit < 0 || *pg.limit > keygate.MaxPageSize {
		return fmt.Errorf("%w: --limit must be from 1 to %d", errUsage, keygate.MaxPageSize)
	}
	pg.set(q)
	return callList(ctx, o, m.Stdout, m.Stderr, func(ctx context.Context, c *api.Client) (*api.List[*keygate.AuditEvent], error) {
		return c.Audit(ctx, q)
	}, auditTable)
}

func auditTable(w io.Writer, es []*keygate.AuditEvent) error {
	rows := make([][]string, len(es))
	for i, e := range es {
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
