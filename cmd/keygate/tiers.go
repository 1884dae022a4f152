package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

const tiersUsage = `Usage: keygate tiers SUBCOMMAND [flags]

Subcommands:
  list                                   list tiers
  show NAME                              show one tier
  create --name N --quota Q --rate R --burst B [--quota-scope account|key]
                                         create a tier
  update NAME [--quota Q] [--rate R] [--burst B] [--quota-scope account|key]
                                         change a tier's limits
  delete NAME                            delete a tier no account or key uses

Each subcommand takes -h for its flags.
`

// runTiers runs `keygate tiers SUBCOMMAND`.
func (m *Main) runTiers(ctx context.Context, args []string) error {
	return m.runGroup(ctx, args, "tiers", tiersUsage, map[string]subcommandFunc{
		"list": func(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
			if _, err := parseCmd(fs, args); err != nil {
				return err
			}
			return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) ([]*keygate.Tier, error) {
				return c.Tiers(ctx)
			}, tierTable)
		},
		"create": m.tiersCreate,
		"update": m.tiersUpdate,
		"show":   m.tierAction("show"),
		"delete": m.tierAction("delete"),
	})
}

// tierLimitFlags declares --quota, --rate, --burst and --quota-scope.
func tierLimitFlags(fs *flag.FlagSet) (quota *int64, rate *float64, burst *int64, scope *string) {
	quota = fs.Int64("quota", 0, "requests per UTC day (`Q`)")
	rate = fs.Float64("rate", 0, "sustained requests per second (`R`)")
	burst = fs.Int64("burst", 0, "requests allowed at once above the rate (`B`)")
	scope = fs.String("quota-scope", "", "count the quota and rate per `SCOPE`: account (all of an account's keys together; the default for new tiers) or key")
	return
}

func oneTier(cmd string, pos []string) (string, error) {
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		return "", fmt.Errorf("%w: %s needs one tier NAME (see keygate tiers list)", errUsage, cmd)
	}
	return strings.TrimSpace(pos[0]), nil
}

func (m *Main) tiersCreate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	name := fs.String("name", "", "tier `NAME`: lower-case letters, digits, - or _ (required)")
	quota, rate, burst, scope := tierLimitFlags(fs)
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	set := flagsSet(fs)
	if len(pos) == 1 && !set["name"] {
		*name = pos[0] // keygate tiers create gold --quota …
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: tiers create takes no arguments besides flags: --name, --quota, --rate, --burst", errUsage)
	}
	var missing []string
	if *name == "" {
		missing = append(missing, "--name")
	}
	for _, f := range []string{"quota", "rate", "burst"} {
		if !set[f] {
			missing = append(missing, "--"+f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: tiers create needs %s", errUsage, strings.Join(missing, ", "))
	}
	req := api.TierRequest{Name: *name, QuotaPerDay: *quota, RatePerSecond: *rate, Burst: *burst, QuotaScope: *scope}
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*keygate.Tier, error) {
		return c.CreateTier(ctx, req)
	}, printTier)
}

func (m *Main) tiersUpdate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	quota, rate, burst, scope := tierLimitFlags(fs)
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
	if set["quota-scope"] {
		p.QuotaScope = scope
	}
	if p == (api.TierPatch{}) {
		return fmt.Errorf("%w: tiers update needs at least one of --quota, --rate, --burst, --quota-scope", errUsage)
	}
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*keygate.Tier, error) {
		return c.UpdateTier(ctx, name, p)
	}, printTier)
}

// deletedTier is what tiers delete prints with --json.
type deletedTier struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
}

// tierAction returns the subcommand sub, show or delete, which names one
// tier.
func (m *Main) tierAction(sub string) subcommandFunc {
	return func(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
		pos, err := parseCmd(fs, args)
		if err != nil {
			return err
		}
		name, err := oneTier("tiers "+sub, pos)
		if err != nil {
			return err
		}
		if sub == "show" {
			return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*keygate.Tier, error) {
				return c.Tier(ctx, name)
			}, printTier)
		}
		return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (deletedTier, error) {
			return deletedTier{Name: name, Deleted: true}, c.DeleteTier(ctx, name)
		}, func(w io.Writer, d deletedTier) error {
			_, err := fmt.Fprintf(w, "Deleted tier %s.\n", escapeCell(d.Name))
			return err
		})
	}
}

func printTier(w io.Writer, t *keygate.Tier) error {
	return tierTable(w, []*keygate.Tier{t})
}

func tierTable(w io.Writer, ts []*keygate.Tier) error {
	rows := make([][]string, len(ts))
	for i, t := range ts {
		rows[i] = []string{t.Name, strconv.FormatInt(t.QuotaPerDay, 10), strconv.FormatFloat(t.RatePerSecond, 'f', -1, 64), strconv.FormatInt(t.Burst, 10), t.QuotaScope}
	}
	return table(w, "NAME\tQUOTA/DAY\tRATE/S\tBURST\tCOUNTED PER", rows)
}
