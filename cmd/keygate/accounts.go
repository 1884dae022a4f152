package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

const accountsUsage = `Usage: keygate accounts SUBCOMMAND [flags]

Subcommands:
  create --name N --email E [--tier T]   create an account
  list [--email E] [--tier T]            list accounts
  show ACCOUNT_ID                        show one account
  update ACCOUNT_ID [--name N] [--email E] [--tier T]
                                         change an account

Each subcommand takes -h for its flags.
`

// runAccounts runs `keygate accounts SUBCOMMAND`.
func (m *Main) runAccounts(ctx context.Context, args []string) error {
	return m.runGroup(ctx, args, "accounts", accountsUsage, map[string]subcommandFunc{
		"create": m.accountsCreate,
		"list":   m.accountsList,
		"show": func(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
			id, err := parseID(fs, args, "accounts show", keygate.PrefixAccount, "account")
			if err != nil {
				return err
			}
			return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*keygate.Account, error) {
				return c.Account(ctx, id)
			}, printAccount)
		},
		"update": m.accountsUpdate,
	})
}

func (m *Main) accountsCreate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
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
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*keygate.Account, error) {
		return c.CreateAccount(ctx, req)
	}, printAccount)
}

func (m *Main) accountsList(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	email := fs.String("email", "", "only the account with this `EMAIL`")
	tier := fs.String("tier", "", "only accounts on this `TIER`")
	pg := pageFlags(fs, "accounts")
	if _, err := parseCmd(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	setQuery(q, "email", *email, "tier", *tier)
	pg.set(q)
	return callList(ctx, o, m.Stdout, m.Stderr, func(ctx context.Context, c *api.Client) (*api.List[*keygate.Account], error) {
		return c.Accounts(ctx, q)
	}, accountTable)
}

func (m *Main) accountsUpdate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	name := fs.String("name", "", "new account `NAME`")
	email := fs.String("email", "", "new contact `EMAIL`")
	tier := fs.String("tier", "", "new `TIER`; keys without a tier of their own follow it at once")
	id, err := parseID(fs, args, "accounts update", keygate.PrefixAccount, "account")
	if err != nil {
		return err
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
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*keygate.Account, error) {
		return c.UpdateAccount(ctx, id, p)
	}, printAccount)
}

func printAccount(w io.Writer, a *keygate.Account) error {
	return accountTable(w, []*keygate.Account{a})
}

func accountTable(w io.Writer, as []*keygate.Account) error {
	rows := make([][]string, len(as))
	for i, a := range as {
		rows[i] = []string{a.ID, a.Name, a.Email, a.Tier, fmtTime(&a.CreatedAt)}
	}
	return table(w, "ID\tNAME\tEMAIL\tTIER\tCREATED", rows)
}
