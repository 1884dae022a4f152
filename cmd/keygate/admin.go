package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

// DefaultURL is where the admin commands look for a server when KEYGATE_URL
// is not set.
const DefaultURL = "http://127.0.0.1:8080"

// cliOpts are the options every admin command takes.
type cliOpts struct {
	url     string
	rootKey string
	json    bool
}

func (o *cliOpts) flags(fs *flag.FlagSet) {
	u := os.Getenv("KEYGATE_URL")
	if u == "" {
		u = DefaultURL
	}
	fs.StringVar(&o.url, "url", u, "keygate server `URL` (env KEYGATE_URL)")
	fs.StringVar(&o.rootKey, "root-key", os.Getenv("KEYGATE_ROOT_KEY"), "root `KEY` (env KEYGATE_ROOT_KEY; prefer the environment: flags show in ps)")
	fs.BoolVar(&o.json, "json", false, "print JSON for scripts instead of a table")
}

func (o *cliOpts) client() (*api.Client, error) {
	if strings.TrimSpace(o.rootKey) == "" {
		return nil, errors.New("KEYGATE_ROOT_KEY is not set: export the root key that `keygate serve` printed on its first start (or the contents of its --root-key-file)")
	}
	return api.NewClient(o.url, strings.TrimSpace(o.rootKey)), nil
}

// explain turns an API error into one line a person can act on.
func (o *cliOpts) explain(err error) error {
	switch api.ErrorCode(err) {
	case "":
		if strings.Contains(err.Error(), "connection refused") {
			return fmt.Errorf("cannot reach keygate at %s: connection refused; is `keygate serve` running there? (set KEYGATE_URL)", o.url)
		}
		return err
	case keygate.EUNAUTHORIZED:
		return fmt.Errorf("the server at %s refused the root key in KEYGATE_ROOT_KEY: it is unknown, revoked or mistyped", o.url)
	case keygate.EFORBIDDEN:
		var e *api.Error
		errors.As(err, &e)
		return fmt.Errorf("not allowed: %s", e.Problem.Detail)
	}
	var e *api.Error
	errors.As(err, &e)
	return errors.New(e.Problem.Detail)
}

// parseArgs parses flags and positional arguments in any order, so that
// `keygate keys revoke key_123 --reason leaked` works.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("keygate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// stringList is a repeatable flag; each use may also hold a comma-separated list.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

func runVersion(stdout io.Writer) error {
	_, err := fmt.Fprintf(stdout, "keygate %s (%s %s/%s)\n", keygate.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}

func subcommand(args []string, name, choices string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, fmt.Errorf("%w: keygate %s needs a subcommand: %s", errUsage, name, choices)
	}
	return args[0], args[1:], nil
}

func runAccounts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand(args, "accounts", "create, list, show, update")
	if err != nil {
		return err
	}
	var o cliOpts
	fs := newFlagSet("accounts "+sub, stderr)
	o.flags(fs)
	switch sub {
	case "create":
		var req api.AccountRequest
		fs.StringVar(&req.Name, "name", "", "account `NAME` (required)")
		fs.StringVar(&req.Email, "email", "", "contact `EMAIL` (required)")
		fs.StringVar(&req.Tier, "tier", "", "`TIER` (default: the server's default tier)")
		if _, err := parseCmd(fs, args); err != nil {
			return err
		}
		if req.Name == "" || req.Email == "" {
			return fmt.Errorf("%w: accounts create needs --name and --email", errUsage)
		}
		c, err := o.client()
		if err != nil {
			return err
		}
		a, err := c.CreateAccount(ctx, req)
		if err != nil {
			return o.explain(err)
		}
		if o.json {
			return printJSON(stdout, a)
		}
		return accountTable(stdout, []*keygate.Account{a})
	case "list":
		q := url.Values{}
		email := fs.String("email", "", "only the account with this `EMAIL`")
		tier := fs.String("tier", "", "only accounts on this `TIER`")
		limit := fs.Int("limit", 0, "at most `N` accounts (default 50)")
		cursor := fs.String("cursor", "", "continue after this `CURSOR` (from the previous page)")
		if _, err := parseCmd(fs, args); err != nil {
			return err
		}
		setQuery(q, "email", *email, "tier", *tier, "cursor", *cursor)
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		c, err := o.client()
		if err != nil {
			return err
		}
		l, err := c.Accounts(ctx, q)
		if err != nil {
			return o.explain(err)
		}
		if o.json {
			return printJSON(stdout, l)
		}
		if err := accountTable(stdout, l.Data); err != nil {
			return err
		}
		return nextPage(stderr, l.NextCursor)
	case "update":
		return accountsUpdate(ctx, &o, fs, args, stdout)
	case "show":
		pos, err := parseCmd(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return fmt.Errorf("%w: accounts show needs one account ID", errUsage)
		}
		c, err := o.client()
		if err != nil {
			return err
		}
		a, err := c.Account(ctx, pos[0])
		if err != nil {
			return o.explain(err)
		}
		if o.json {
			return printJSON(stdout, a)
		}
		return accountTable(stdout, []*keygate.Account{a})
	}
	return fmt.Errorf("%w: unknown subcommand \"accounts %s\": use create, list, show or update", errUsage, sub)
}

func setQuery(q url.Values, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
}

func nextPage(w io.Writer, cursor string) error {
	if cursor != "" {
		_, err := fmt.Fprintf(w, "more: add --cursor %s\n", cursor)
		return err
	}
	return nil
}

func accountTable(w io.Writer, as []*keygate.Account) error {
	rows := make([][]string, len(as))
	for i, a := range as {
		rows[i] = []string{a.ID, a.Name, a.Email, a.Tier, fmtTime(&a.CreatedAt)}
	}
	return table(w, "ID\tNAME\tEMAIL\tTIER\tCREATED", rows)
}

func keyTable(w io.Writer, ks []api.KeyView) error {
	rows := make([][]string, len(ks))
	for i, k := range ks {
		rows[i] = []string{k.ID, orDash(k.Name), k.AccountID, k.Start + "…" + k.Last4, string(k.Env), orDash(k.Tier), k.Status,
			orDash(strings.Join(k.Scopes, ",")), fmtTime(&k.CreatedAt), fmtTime(k.LastUsedAt)}
	}
	return table(w, "ID\tNAME\tACCOUNT\tKEY\tENV\tTIER\tSTATUS\tSCOPES\tCREATED\tLAST USED", rows)
}

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand(args, "keys", "create, list, show, update, rotate, enable, disable, revoke")
	if err != nil {
		return err
	}
	var o cliOpts
	fs := newFlagSet("keys "+sub, stderr)
	o.flags(fs)
	switch sub {
	case "create":
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
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "quota":
				req.QuotaPerDay = quota
			case "rate":
				req.RatePerSecond = rate
			case "burst":
				req.Burst = burst
			}
		})
		req.Env, req.Scopes, req.IPAllow = keygate.Env(env), scopes, ips
		if expires != "" {
			t, err := parseExpiry(expires)
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
		c, err := o.client()
		if err != nil {
			return err
		}
		k, err := c.CreateKey(ctx, req)
		if err != nil {
			return o.explain(err)
		}
		if o.json {
			return printJSON(stdout, k)
		}
		if err := keyTable(stdout, []api.KeyView{*k}); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "\nKey (shown only this once; store it now):\n\n    %s\n\n", k.Plaintext)
		return err
	case "list":
		q := url.Values{}
		account := fs.String("account", "", "only keys of this account `ID`")
		tier := fs.String("tier", "", "only keys with this `TIER` set on the key")
		env := fs.String("env", "", "only `ENV` keys: live or test")
		status := fs.String("status", "", "only keys with this `STATUS`: active, revoked, expired, disabled")
		limit := fs.Int("limit", 0, "at most `N` keys (default 50)")
		cursor := fs.String("cursor", "", "continue after this `CURSOR` (from the previous page)")
		if _, err := parseCmd(fs, args); err != nil {
			return err
		}
		setQuery(q, "account_id", *account, "tier", *tier, "env", *env, "status", *status, "cursor", *cursor)
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		c, err := o.client()
		if err != nil {
			return err
		}
		l, err := c.Keys(ctx, q)
		if err != nil {
			return o.explain(err)
		}
		if o.json {
			return printJSON(stdout, l)
		}
		if err := keyTable(stdout, l.Data); err != nil {
			return err
		}
		return nextPage(stderr, l.NextCursor)
	case "rotate":
		return keysRotate(ctx, &o, fs, args, stdout)
	case "update":
		return keysUpdate(ctx, &o, fs, args, stdout)
	case "show", "revoke", "enable", "disable":
		return keyAction(ctx, &o, fs, sub, args, stdout)
	}
	return fmt.Errorf("%w: unknown subcommand \"keys %s\": use create, list, show, update, rotate, enable, disable or revoke", errUsage, sub)
}

func parseExpiry(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%w: --expires %q must be in the future", errUsage, s)
		}
		return time.Now().Add(d).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: --expires %q: give an RFC 3339 time (2027-01-31T00:00:00Z) or a duration (720h)", errUsage, s)
	}
	return t, nil
}

func runTiers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand(args, "tiers", "list, show, create, update, delete")
	if err != nil {
		return err
	}
	var o cliOpts
	fs := newFlagSet("tiers "+sub, stderr)
	o.flags(fs)
	switch sub {
	case "create":
		return tiersCreate(ctx, &o, fs, args, stdout)
	case "update":
		return tiersUpdate(ctx, &o, fs, args, stdout)
	case "show", "delete":
		return tiersShowDelete(ctx, &o, fs, sub, args, stdout)
	case "list":
	default:
		return fmt.Errorf("%w: unknown subcommand \"tiers %s\": use list, show, create, update or delete", errUsage, sub)
	}
	if _, err := parseCmd(fs, args); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	ts, err := c.Tiers(ctx)
	if err != nil {
		return o.explain(err)
	}
	if o.json {
		return printJSON(stdout, ts)
	}
	return tierTable(stdout, ts)
}
