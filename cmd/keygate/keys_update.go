package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate/api"
)

// keysUpdate runs `keygate keys update KEY_ID`: each field changes only
// when its flag is given, and each --no-… flag clears a field.
func (m *Main) keysUpdate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	var scopes, ips stringList
	name := fs.String("name", "", "new key `NAME`")
	fs.Var(&scopes, "scope", "the key's scopes become these: a `SCOPE` (repeatable, or comma-separated)")
	noScopes := fs.Bool("no-scopes", false, "remove all scopes")
	fs.Var(&ips, "ip", "the allowed client networks become these: a `CIDR` (repeatable, or comma-separated)")
	noIPs := fs.Bool("no-ips", false, "allow every client IP")
	tier := fs.String("tier", "", "put the key on `TIER`")
	inheritTier := fs.Bool("inherit-tier", false, "drop the key's own tier: it follows its account's")
	quota := fs.Int64("quota", 0, "requests per UTC day for this key, overriding its tier (`N`)")
	noQuota := fs.Bool("no-quota", false, "drop the quota override: the tier's applies")
	rate := fs.Float64("rate", 0, "requests per second for this key, overriding its tier (`R`)")
	noRate := fs.Bool("no-rate", false, "drop the rate override")
	burst := fs.Int64("burst", 0, "burst for this key, overriding its tier (`B`)")
	noBurst := fs.Bool("no-burst", false, "drop the burst override")
	expires := fs.String("expires", "", "expiry: an RFC 3339 `TIME` or a duration from now such as 720h")
	noExpiry := fs.Bool("no-expiry", false, "the key never expires")
	meta := fs.String("meta", "", "metadata as a JSON `OBJECT` (replaces the old one)")
	noMeta := fs.Bool("no-meta", false, "remove the metadata")
	id, err := parseKeyID(fs, args, "update")
	if err != nil {
		return err
	}
	set := flagsSet(fs)
	on := func(name string, v bool) bool { return set[name] && v }
	for _, pair := range [][2]string{{"scope", "no-scopes"}, {"ip", "no-ips"}, {"tier", "inherit-tier"}, {"quota", "no-quota"},
		{"rate", "no-rate"}, {"burst", "no-burst"}, {"expires", "no-expiry"}, {"meta", "no-meta"}} {
		if set[pair[0]] && set[pair[1]] {
			return fmt.Errorf("%w: keys update: --%s and --%s contradict each other; give one", errUsage, pair[0], pair[1])
		}
	}
	var p api.KeyPatch
	if set["name"] {
		p.Name = api.Some(*name)
	}
	switch {
	case set["scope"] && len(scopes) == 0:
		return fmt.Errorf("%w: keys update: --scope is empty; use --no-scopes to remove all scopes", errUsage)
	case set["scope"]:
		p.Scopes = api.Some([]string(scopes))
	case on("no-scopes", *noScopes):
		p.Scopes = api.Some([]string{})
	}
	switch {
	case set["ip"] && len(ips) == 0:
		return fmt.Errorf("%w: keys update: --ip is empty; use --no-ips to allow every client IP", errUsage)
	case set["ip"]:
		p.IPAllow = api.Some([]string(ips))
	case on("no-ips", *noIPs):
		p.IPAllow = api.Some([]string{})
	}
	switch {
	case set["tier"] && strings.TrimSpace(*tier) == "":
		return fmt.Errorf("%w: keys update: --tier is empty; use --inherit-tier to follow the account's tier", errUsage)
	case set["tier"]:
		p.Tier = api.Some(strings.TrimSpace(*tier))
	case on("inherit-tier", *inheritTier):
		p.Tier = api.Null[string]()
	}
	switch {
	case set["quota"]:
		p.QuotaPerDay = api.Some(*quota)
	case on("no-quota", *noQuota):
		p.QuotaPerDay = api.Null[int64]()
	}
	switch {
	case set["rate"]:
		p.RatePerSecond = api.Some(*rate)
	case on("no-rate", *noRate):
		p.RatePerSecond = api.Null[float64]()
	}
	switch {
	case set["burst"]:
		p.Burst = api.Some(*burst)
	case on("no-burst", *noBurst):
		p.Burst = api.Null[int64]()
	}
	switch {
	case set["expires"]:
		t, err := parseExpiry(*expires, m.now())
		if err != nil {
			return err
		}
		p.ExpiresAt = api.Some(t)
	case on("no-expiry", *noExpiry):
		p.ExpiresAt = api.Null[time.Time]()
	}
	switch {
	case set["meta"]:
		if !json.Valid([]byte(*meta)) {
			return fmt.Errorf("%w: --meta is not valid JSON", errUsage)
		}
		p.Meta = api.Some(json.RawMessage(*meta))
	case on("no-meta", *noMeta):
		p.Meta = api.Null[json.RawMessage]()
	}
	if b, _ := json.Marshal(p); string(b) == "{}" {
		return fmt.Errorf("%w: keys update needs at least one change, such as --name, --scope, --no-scopes, --ip, --tier, --quota, --rate, --burst, --expires or --meta (see keygate keys update -h)", errUsage)
	}
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.KeyView, error) {
		return c.UpdateKey(ctx, id, p)
	}, printKey)
}
