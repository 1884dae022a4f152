package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/manage"
)

// parseCmd is parseArgs for commands whose bad flags are usage errors: it
// keeps the flag package from printing the whole usage on a mistyped flag,
// turns the mistake into one line and exit 2, and prints the usage only
// for -h.
func parseCmd(fs *flag.FlagSet, args []string) ([]string, error) {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	pos, err := parseArgs(fs, args)
	fs.SetOutput(out)
	switch {
	case err == nil:
		return pos, nil
	case errors.Is(err, flag.ErrHelp):
		if syn, ok := synopses[fs.Name()]; ok {
			fmt.Fprintf(out, "Usage: %s\n\nFlags:\n", syn)
		} else {
			fmt.Fprintf(out, "Usage of %s:\n", fs.Name())
		}
		fs.PrintDefaults()
		return nil, err
	}
	return nil, fmt.Errorf("%w: %s: %v (see %s -h)", errUsage, strings.TrimPrefix(fs.Name(), "keygate "), err, fs.Name())
}

// synopses are the usage lines of the commands that take arguments.
var synopses = map[string]string{
	"keygate accounts show":    "keygate accounts show ACCOUNT_ID",
	"keygate accounts update":  "keygate accounts update ACCOUNT_ID [--name N] [--email E] [--tier T]",
	"keygate keys show":        "keygate keys show KEY_ID",
	"keygate keys revoke":      "keygate keys revoke KEY_ID [--reason R]",
	"keygate keys rotate":      "keygate keys rotate KEY_ID [--grace 24h]",
	"keygate keys enable":      "keygate keys enable KEY_ID",
	"keygate keys disable":     "keygate keys disable KEY_ID",
	"keygate keys update":      "keygate keys update KEY_ID [--name N] [--scope S … | --no-scopes] [--ip CIDR … | --no-ips] [--tier T | --inherit-tier] [--quota N | --no-quota] [--rate R | --no-rate] [--burst B | --no-burst] [--expires TIME | --no-expiry] [--meta JSON | --no-meta]",
	"keygate tiers create":     "keygate tiers create --name N --quota Q --rate R --burst B",
	"keygate tiers update":     "keygate tiers update NAME [--quota Q] [--rate R] [--burst B]",
	"keygate tiers show":       "keygate tiers show NAME",
	"keygate tiers delete":     "keygate tiers delete NAME",
	"keygate audit":            "keygate audit [--actor A] [--action A] [--target-type T] [--target ID] [--since TIME] [--until TIME] [--limit N] [--cursor C]",
	"keygate root-keys create": "keygate root-keys create --name N --permission P [--permission P …]",
	"keygate root-keys revoke": "keygate root-keys revoke ROOT_KEY_ID",
	"keygate import": "keygate import FILE|- [--format csv|jsonl] [--batch 5000] [--on-error skip|stop]\n\n" +
		"FILE is CSV with a header row, or JSON Lines, with the fields hash (SHA-256 hex of the key)\n" +
		"and account_id, and optionally tier, name, env, scopes, ip_allow, start, expires_at, meta.",
}

// flagsSet returns the names of the flags given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// oneID checks that exactly one positional argument was given and that it
// has the ID prefix; it never echoes a wrong argument, which may be a
// plaintext key pasted by mistake.
func oneID(cmd, prefix, what string, pos []string) (string, error) {
	if len(pos) != 1 {
		return "", fmt.Errorf("%w: %s needs one %s ID (%s…)", errUsage, cmd, what, prefix)
	}
	id := strings.TrimSpace(pos[0])
	if !strings.HasPrefix(id, prefix) {
		return "", fmt.Errorf("%w: %s takes a %s ID, which starts with %q; the argument given does not (never pass a plaintext key here)", errUsage, cmd, what, prefix)
	}
	return id, nil
}

func keyID(sub string, pos []string) (string, error) {
	return oneID("keys "+sub, keygate.PrefixKey, "key", pos)
}

// printKey prints one key as JSON or as a table row.
func printKey(w io.Writer, o *cliOpts, k *api.KeyView) error {
	if o.json {
		return printJSON(w, k)
	}
	return keyTable(w, []api.KeyView{*k})
}

// rotatedKey is the JSON answer of keys rotate: the new key, with its
// plaintext, and when the old one stops working.
type rotatedKey struct {
	api.KeyView
	OldKeyWorksUntil *time.Time `json:"old_key_works_until,omitempty"`
}

func keysRotate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	grace := fs.String("grace", "0s", "how long the old key keeps working, as a `DURATION` such as 24h or 90m; 0s (the default, as in the API) revokes it at once")
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	id, err := keyID("rotate", pos)
	if err != nil {
		return err
	}
	g, err := time.ParseDuration(strings.TrimSpace(*grace))
	if err != nil || g < 0 || g > manage.MaxGrace {
		return fmt.Errorf("%w: --grace %q: give a duration from 0s (revoke the old key at once) to %s, such as 24h or 90m", errUsage, *grace, fmtDuration(manage.MaxGrace))
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	k, err := c.RotateKey(ctx, id, g.String())
	if err != nil {
		return o.explain(err)
	}
	// The old key's record says exactly when it stops working.
	var until *time.Time
	if old, err := c.Key(ctx, id); err == nil && old.RevokedAt != nil {
		until = old.RevokedAt
	} else {
		t := time.Now().Add(g).UTC()
		until = &t
	}
	if o.json {
		return printJSON(stdout, rotatedKey{KeyView: *k, OldKeyWorksUntil: until})
	}
	if err := keyTable(stdout, []api.KeyView{*k}); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "\nNew key (shown only this once; store it now):\n\n    %s\n\n", k.Plaintext); err != nil {
		return err
	}
	if g == 0 {
		_, err = fmt.Fprintf(stdout, "The old key %s was revoked at once: it answers REVOKED from now on.\n", id)
	} else {
		_, err = fmt.Fprintf(stdout, "The old key %s keeps working until %s (%s from now); then it answers REVOKED.\n",
			id, until.UTC().Format("2006-01-02 15:04:05 MST"), fmtDuration(g))
	}
	return err
}

// fmtDuration writes d without the trailing zero units Go adds (24h, not 24h0m0s).
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// keyAction runs a subcommand that names one key and changes it at most
// in one step: show, revoke, enable, disable.
func keyAction(ctx context.Context, o *cliOpts, fs *flag.FlagSet, sub string, args []string, stdout io.Writer) error {
	reason := ""
	if sub == "revoke" {
		fs.StringVar(&reason, "reason", "", "why the key is revoked (recorded in the audit log)")
	}
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	id, err := keyID(sub, pos)
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	var k *api.KeyView
	switch sub {
	case "show":
		k, err = c.Key(ctx, id)
	case "revoke":
		k, err = c.RevokeKey(ctx, id, reason)
	case "enable":
		k, err = c.EnableKey(ctx, id)
	default:
		k, err = c.DisableKey(ctx, id)
	}
	if err != nil {
		return o.explain(err)
	}
	return printKey(stdout, o, k)
}

func keysUpdate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string, stdout io.Writer) error {
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
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	id, err := keyID("update", pos)
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
		t, err := parseExpiry(*expires)
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
	c, err := o.client()
	if err != nil {
		return err
	}
	k, err := c.UpdateKey(ctx, id, p)
	if err != nil {
		return o.explain(err)
	}
	return printKey(stdout, o, k)
}

func tierTable(w io.Writer, ts []*keygate.Tier) error {
	rows := make([][]string, len(ts))
	for i, t := range ts {
		rows[i] = []string{t.Name, strconv.FormatInt(t.QuotaPerDay, 10), strconv.FormatFloat(t.RatePerSecond, 'f', -1, 64), strconv.FormatInt(t.Burst, 10)}
	}
	return table(w, "NAME\tQUOTA/DAY\tRATE/S\tBURST", rows)
}

func printTier(w io.Writer, o *cliOpts, t *keygate.Tier) error {
	if o.json {
		return printJSON(w, t)
	}
	return tierTable(w, []*keygate.Tier{t})
}

// tierLimitFlags declares --quota, --rate and --burst.
func tierLimitFlags(fs *flag.FlagSet) (quota *int64, rate *float64, burst *int64) {
	quota = fs.Int64("quota", 0, "requests per UTC day (`Q`)")
	rate = fs.Float64("rate", 0, "sustained requests per second (`R`)")
	burst = fs.Int64("burst", 0, "requests allowed at once above the rate (`B`)")
	return
}

func oneTier(cmd string, pos []string) (string, error) {
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		return "", fmt.Errorf("%w: %s needs one tier NAME (see keygate tiers list)", errUsage, cmd)
	}
	return strings.TrimSpace(pos[0]), nil
}

func tiersCreate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	name := fs.String("name", "", "tier `NAME`: lower-case letters, digits, - or _ (required)")
	quota, rate, burst := tierLimitFlags(fs)
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 1 && !flagsSet(fs)["name"] {
		*name = pos[0] // keygate tiers create gold --quota …
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: tiers create takes no arguments besides flags: --name, --quota, --rate, --burst", errUsage)
	}
	var missing []string
	set := flagsSet(fs)
	for _, f := range []string{"quota", "rate", "burst"} {
		if !set[f] {
			missing = append(missing, "--"+f)
		}
	}
	if *name == "" {
		missing = append([]string{"--name"}, missing...)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: tiers create needs %s", errUsage, strings.Join(missing, ", "))
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	t, err := c.CreateTier(ctx, api.TierRequest{Name: *name, QuotaPerDay: *quota, RatePerSecond: *rate, Burst: *burst})
	if err != nil {
		return o.explain(err)
	}
	return printTier(stdout, o, t)
}

func tiersUpdate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	quota, rate, burst := tierLimitFlags(fs)
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	name, err := oneTier("tiers update", pos)
	if err != nil {
		return err
	}
	set := flagsSet(fs)
	var p api.TierPatch
	if set["quota"] {
		p.QuotaPerDay = quota
	}
	if set["rate"] {
		p.RatePerSecond = rate
	}
	if set["burst"] {
		p.Burst = burst
	}
	if p == (api.TierPatch{}) {
		return fmt.Errorf("%w: tiers update needs at least one of --quota, --rate, --burst", errUsage)
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	t, err := c.UpdateTier(ctx, name, p)
	if err != nil {
		return o.explain(err)
	}
	return printTier(stdout, o, t)
}

func tiersShowDelete(ctx context.Context, o *cliOpts, fs *flag.FlagSet, sub string, args []string, stdout io.Writer) error {
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	name, err := oneTier("tiers "+sub, pos)
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	if sub == "show" {
		t, err := c.Tier(ctx, name)
		if err != nil {
			return o.explain(err)
		}
		return printTier(stdout, o, t)
	}
	if err := c.DeleteTier(ctx, name); err != nil {
		return o.explain(err)
	}
	if o.json {
		return printJSON(stdout, map[string]any{"name": name, "deleted": true})
	}
	_, err = fmt.Fprintf(stdout, "Deleted tier %s.\n", name)
	return err
}

func accountsUpdate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	name := fs.String("name", "", "new account `NAME`")
	email := fs.String("email", "", "new contact `EMAIL`")
	tier := fs.String("tier", "", "new `TIER`; keys without a tier of their own follow it at once")
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: accounts update needs one account ID (acc_…)", errUsage)
	}
	set := flagsSet(fs)
	var p api.AccountPatch
	if set["name"] {
		p.Name = name
	}
	if set["email"] {
		p.Email = email
	}
	if set["tier"] {
		p.Tier = tier
	}
	if p == (api.AccountPatch{}) {
		return fmt.Errorf("%w: accounts update needs at least one of --name, --email, --tier", errUsage)
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	a, err := c.UpdateAccount(ctx, pos[0], p)
	if err != nil {
		return o.explain(err)
	}
	if o.json {
		return printJSON(stdout, a)
	}
	return accountTable(stdout, []*keygate.Account{a})
}
