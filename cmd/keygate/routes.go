package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/keygate/keygate/route"
)

const routesUsage = `Usage: keygate routes SUBCOMMAND

Subcommands:
  check FILE                             validate a gateway config file and list its route rules

See README, "Gateway", for the file's format.
`

// runRoutes runs `keygate routes check FILE`.
func (m *Main) runRoutes(_ context.Context, args []string) error {
	sub, args, err := m.subcommand(args, "routes", routesUsage)
	if err != nil {
		return err
	}
	if sub != "check" {
		return unknownSubcommand("routes", sub, routesUsage)
	}
	pos, err := parseCmd(m.newFlagSet("routes check"), args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: keygate routes check needs one FILE\n\n%s", errUsage, routesUsage)
	}
	file := pos[0]
	c, err := route.Load(file)
	if err != nil {
		return err
	}
	rules := c.Routes.Rules()
	fmt.Fprintf(m.Stdout, "%s: %d rules and the default, first match wins:\n", file, len(rules)-1)
	for _, r := range rules {
		methods := "*"
		if len(r.Methods) > 0 {
			methods = strings.Join(r.Methods, ",")
		}
		path := r.Path
		if path == "" {
			path = "(default)"
		}
		need := "a valid key"
		switch {
		case r.Public:
			need = "public"
		case len(r.Scopes) > 0:
			need = "scopes " + strings.Join(r.Scopes, " ")
		}
		fmt.Fprintf(m.Stdout, "  %-8s %-32s %-24s %s\n", methods, path, r.Label(), need)
	}
	return nil
}
