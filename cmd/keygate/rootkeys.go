package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

const rootKeysUsage = `Usage: keygate root-keys SUBCOMMAND [flags]

Subcommands:
  create --name N --permission P [--permission P …]
                              issue a root key (its plaintext is shown this once)
  list                        list root keys
  revoke ROOT_KEY_ID          revoke a root key
  recover --db PATH_OR_URL    offline, with direct access to the database: issue a
                              new root key with every permission, for when every
                              root key is lost (audited; talks to no server)

Each subcommand takes -h for its flags.
`

// runRootKeys runs `keygate root-keys SUBCOMMAND`.
func (m *Main) runRootKeys(ctx context.Context, args []string) error {
	return m.runGroup(ctx, args, "root-keys", rootKeysUsage, map[string]subcommandFunc{
		"create": m.rootKeysCreate,
		"list": func(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
			if err := parseFlagsOnly(fs, args, "root-keys list takes no arguments"); err != nil {
				return err
			}
			return callAll(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) ([]api.RootKeyView, error) {
				return c.RootKeys(ctx)
			}, rootKeyTable)
		},
		"revoke": func(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
			id, err := parseID(fs, args, "root-keys revoke", keygate.PrefixRootKey, "root key")
			if err != nil {
				return err
			}
			return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.RootKeyView, error) {
				return c.RevokeRootKey(ctx, id)
			}, printRootKey)
		},
		// Offline: it opens the store itself, and takes none of the admin options.
		"recover": func(ctx context.Context, _ *cliOpts, _ *flag.FlagSet, args []string) error {
			return m.runRootKeysRecover(ctx, args)
		},
	})
}

func (m *Main) rootKeysCreate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	var req api.RootKeyRequest
	var perms stringList
	fs.StringVar(&req.Name, "name", "", "root key `NAME`, such as the service or person that uses it (required)")
	fs.Var(&perms, "permission", "a `PERMISSION` the key holds: "+strings.Join(keygate.AllPermissions, ", ")+" (repeatable, or comma-separated)")
	if _, err := parseCmd(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(req.Name) == "" || len(perms) == 0 {
		return fmt.Errorf("%w: root-keys create needs --name and at least one --permission (%s)", errUsage, strings.Join(keygate.AllPermissions, ", "))
	}
	req.Permissions = perms
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.RootKeyView, error) {
		return c.CreateRootKey(ctx, req)
	}, func(w io.Writer, rk *api.RootKeyView) error {
		if err := printRootKey(w, rk); err != nil {
			return err
		}
		return printOnce(w, "Root key", rk.Plaintext)
	})
}

func printRootKey(w io.Writer, rk *api.RootKeyView) error {
	return rootKeyTable(w, []api.RootKeyView{*rk})
}

func rootKeyTable(w io.Writer, rks []api.RootKeyView) error {
	rows := make([][]string, len(rks))
	for i, rk := range rks {
		status := "active"
		if rk.RevokedAt != nil {
			status = "revoked " + fmtTime(rk.RevokedAt)
		}
		rows[i] = []string{rk.ID, orDash(rk.Name), rk.Start + "…" + rk.Last4, strings.Join(rk.Permissions, ","), status, fmtTime(&rk.CreatedAt)}
	}
	return table(w, "ID\tNAME\tKEY\tPERMISSIONS\tSTATUS\tCREATED", rows)
}
