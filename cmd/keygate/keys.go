package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/manage"
)

const keysUsage = `Usage: keygate keys SUBCOMMAND [flags]

Subcommands:
  create --account ID [--name N] [--scope S …] [--tier T] …
                              issue a key (its plaintext is shown this once)
  list [--account ID] [--status S] …
                              list keys
  show KEY_ID                 show one key
  update KEY_ID [--name N] [--scope S …] [--quota N] …
                              change a key's name, scopes, limits, expiry or metadata
  rotate KEY_ID [--grace 24h] issue a replacement; the old key works for the grace period
  enable KEY_ID               let a disabled key verify again
  disable KEY_ID              refuse a key until it is enabled
  revoke KEY_ID [--reason R]  refuse a key for good

Each subcommand takes -h for its flags.
`

// runKeys runs `keygate keys SUBCOMMAND`.
func (m *Main) runKeys(ctx context.Context, args []string) error {
	return m.runGroup(ctx, args, "keys", keysUsage, map[string]subcommandFunc{
		"create":  m.keysCreate,
		"list":    m.keysList,
		"rotate":  m.keysRotate,
		"update":  m.keysUpdate,
		"show":    m.keyAction("show"),
		"revoke":  m.keyAction("revoke"),
		"enable":  m.keyAction("enable"),
		"disable": m.keyAction("disable"),
	})
}

func (m *Main) keysCreate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	var req api.KeyRequest
	var scopes, ips stringList
	var expires, meta, env string
	fs.StringVar(&req.AccountID, "account", "", "account `ID` that owns the key (required)")
	fs.StringVar(&req.Name, "name", "", "key `NAME`")
	fs.StringVar(&req.Tier, "tier", "", "`TIER` (default: the account's)")
	fs.StringVar(&env, "env", "live", "`ENV`: live or test")
	fs.Var(&scopes, "scope", "a `SCOPE` the key holds (repeatable, or comma-separated)")
	fs.Var(&ips, "ip", "an allowed client `CIDR` (repeatable, or comma-separated)")
	fs.StringVar(&expires, "expires", "", "expiry: an RFC 3339 `TIME` or a duration from now such as 720h")
	fs.StringVar(&meta, "meta", "", "metadata as a JSON `OBJECT`")
	quota := fs.Int64("quota", 0, "override the tier's requests per UTC day with `N`")
	rate := fs.Float64("rate", 0, "override the tier's sustained requests per second with `R`")
	burst := fs.Int64("burst", 0, "override the tier's burst with `B`")
	if _, err := parseCmd(fs, args); err != nil {
		return err
	}
	if req.AccountID == "" {
		return fmt.Errorf("%w: keys create needs --account (see keygate accounts list)", errUsage)
	}
	set := flagsSet(fs)
	if set["quota"] {
		req.QuotaPerDay = quota
	}
	if set["rate"] {
		req.RatePerSecond = rate
	}
	if set["burst"] {
		req.Burst = burst
	}
	req.Env, req.Scopes, req.IPAllow = keygate.Env(env), scopes, ips
	if expires != "" {
		t, err := parseExpiry(expires, m.now())
		if err != nil {
			return err
		}
		req.ExpiresAt = &t
	}
	if meta != "" {
		if !json.Valid([]byte(meta)) {
			return fmt.Errorf("%w: --meta is not valid JSON", errUsage)
		}
		req.Meta = json.RawMessage(meta)
	}
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.KeyView, error) {
		return c.CreateKey(ctx, req)
	}, func(w io.Writer, k *api.KeyView) error {
		if err := printKey(w, k); err != nil {
			return err
		}
		return printOnce(w, "Key", k.Plaintext)
	})
}

func (m *Main) keysList(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	account := fs.String("account", "", "only keys of this account `ID`")
	tier := fs.String("tier", "", "only keys with this `TIER` set on the key")
	env := fs.String("env", "", "only `ENV` keys: live or test")
	status := fs.String("status", "", "only keys with this `STATUS`: active, revoked, expired, disabled")
	pg := pageFlags(fs, "keys")
	if _, err := parseCmd(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	setQuery(q, "account_id", *account, "tier", *tier, "env", *env, "status", *status)
	pg.set(q)
	return callList(ctx, o, m.Stdout, m.Stderr, func(ctx context.Context, c *api.Client) (*api.List[api.KeyView], error) {
		return c.Keys(ctx, q)
	}, keyTable)
}

// keyAction returns the subcommand sub, which names one key and changes
// it at most in one step: show, revoke, enable, disable.
func (m *Main) keyAction(sub string) subcommandFunc {
	return func(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
		reason := ""
		if sub == "revoke" {
			fs.StringVar(&reason, "reason", "", "why the key is revoked (recorded in the audit log)")
		}
		id, err := parseKeyID(fs, args, sub)
		if err != nil {
			return err
		}
		return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.KeyView, error) {
			switch sub {
			case "show":
				return c.Key(ctx, id)
			case "revoke":
				return c.RevokeKey(ctx, id, reason)
			case "enable":
				return c.EnableKey(ctx, id)
			}
			return c.DisableKey(ctx, id)
		}, printKey)
	}
}

// rotatedKey is the JSON answer of keys rotate: the new key, with its
// plaintext, and when the old one stops working.
type rotatedKey struct {
	api.KeyView
	OldKeyWorksUntil *time.Time `json:"old_key_works_until,omitempty"`
}

func (m *Main) keysRotate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	grace := fs.String("grace", "0s", "how long the old key keeps working, as a `DURATION` such as 24h or 90m; 0s (the default, as in the API) revokes it at once")
	id, err := parseKeyID(fs, args, "rotate")
	if err != nil {
		return err
	}
	g, err := time.ParseDuration(strings.TrimSpace(*grace))
	if err != nil || g < 0 || g > manage.MaxGrace {
		return fmt.Errorf("%w: --grace %q: give a duration from 0s (revoke the old key at once) to %s, such as 24h or 90m", errUsage, *grace, fmtDuration(manage.MaxGrace))
	}
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (rotatedKey, error) {
		k, err := c.RotateKey(ctx, id, g.String())
		if err != nil {
			return rotatedKey{}, err
		}
		// The old key's record says exactly when it stops working.
		r := rotatedKey{KeyView: *k}
		if old, err := c.Key(ctx, id); err == nil && old.RevokedAt != nil {
			r.OldKeyWorksUntil = old.RevokedAt
		} else {
			t := m.now().Add(g).UTC()
			r.OldKeyWorksUntil = &t
		}
		return r, nil
	}, func(w io.Writer, r rotatedKey) error {
		if err := printKey(w, &r.KeyView); err != nil {
			return err
		}
		if err := printOnce(w, "New key", r.Plaintext); err != nil {
			return err
		}
		if g == 0 {
			_, err = fmt.Fprintf(w, "The old key %s was revoked at once: it answers REVOKED from now on.\n", id)
		} else {
			_, err = fmt.Fprintf(w, "The old key %s keeps working until %s (%s from now); then it answers REVOKED.\n",
				id, r.OldKeyWorksUntil.UTC().Format("2006-01-02 15:04:05 MST"), fmtDuration(g))
		}
		return err
	})
}

// parseKeyID parses the arguments of keys sub, which names one key.
func parseKeyID(fs *flag.FlagSet, args []string, sub string) (string, error) {
	return parseID(fs, args, "keys "+sub, keygate.PrefixKey, "key")
}

// parseExpiry reads --expires: an RFC 3339 time or a duration from now.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%w: --expires %q must be in the future", errUsage, s)
		}
		return now.Add(d).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: --expires %q: give an RFC 3339 time (2027-01-31T00:00:00Z) or a duration (720h)", errUsage, s)
	}
	return t, nil
}

func printKey(w io.Writer, k *api.KeyView) error {
	return keyTable(w, []api.KeyView{*k})
}

func keyTable(w io.Writer, ks []api.KeyView) error {
	rows := make([][]string, len(ks))
	for i, k := range ks {
		rows[i] = []string{k.ID, orDash(k.Name), k.AccountID, k.Start + "…" + k.Last4, string(k.Env), orDash(k.Tier), k.Status,
			orDash(strings.Join(k.Scopes, ",")), fmtTime(&k.CreatedAt), fmtTime(k.LastUsedAt)}
	}
	return table(w, "ID\tNAME\tACCOUNT\tKEY\tENV\tTIER\tSTATUS\tSCOPES\tCREATED\tLAST USED", rows)
}
