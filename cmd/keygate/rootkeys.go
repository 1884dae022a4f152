package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

func runRootKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand(args, "root-keys", "create, list, revoke")
	if err != nil {
		return err
	}
	var o cliOpts
	fs := newFlagSet("root-keys "+sub, stderr)
	o.flags(fs)
	switch sub {
	case "create":
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
		c, err := o.client()
		if err != nil {
			return err
		}
		rk, err := c.CreateRootKey(ctx, req)
		if err != nil {
			return o.explain(err)
		}
		if o.json {
			return printJSON(stdout, rk)
		}
		if err := rootKeyTable(stdout, []api.RootKeyView{*rk}); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "\nRoot key (shown only this once; store it now):\n\n    %s\n\n", rk.Plaintext)
		return err
	case "list":
		pos, err := parseCmd(fs, args)
		if err != nil {
			return err
		}
		if len(pos) > 0 {
			return fmt.Errorf("%w: root-keys list takes no arguments", errUsage)
		}
		c, err := o.client()
		if err != nil {
			return err
		}
		rks, err := c.RootKeys(ctx)
		if err != nil {
			return o.explain(err)
		}
		if o.json {
			if rks == nil {
				rks = []api.RootKeyView{}
			}
			return printJSON(stdout, api.List[api.RootKeyView]{Data: rks})
		}
		return rootKeyTable(stdout, rks)
	case "revoke":
		pos, err := parseCmd(fs, args)
		if err != nil {
			return err
		}
		id, err := oneID("root-keys revoke", keygate.PrefixRootKey, "root key", pos)
		if err != nil {
			return err
		}
		c, err := o.client()
		if err != nil {
			return err
		}
		rk, err := c.RevokeRootKey(ctx, id)
		if err != nil {
			return o.explain(err)
		}
		if o.json {
			return printJSON(stdout, rk)
		}
		return rootKeyTable(stdout, []api.RootKeyView{*rk})
	}
	return fmt.Errorf("%w: unknown subcommand \"root-keys %s\": use create, list or revoke", errUsage, sub)
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
