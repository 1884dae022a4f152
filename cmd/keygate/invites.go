package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

const invitesUsage = `Usage: keygate invites SUBCOMMAND [flags]

Invitation codes let one person each register while the server runs with
--registration invite. A code is shown once, works once, and expires.

Subcommands:
  create [--note N] [--expires 168h]   issue a code (shown this once)
  list [--limit N] [--cursor C]        list invitations, newest first
  show INVITE_ID                       show one invitation
  revoke INVITE_ID                     make an unused code unusable

Each subcommand takes -h for its flags.
`

// runInvites runs `keygate invites SUBCOMMAND`.
func (m *Main) runInvites(ctx context.Context, args []string) error {
	return m.runGroup(ctx, args, "invites", invitesUsage, map[string]subcommandFunc{
		"create": m.invitesCreate,
		"list":   m.invitesList,
		"show":   m.inviteAction("show"),
		"revoke": m.inviteAction("revoke"),
	})
}

func (m *Main) invitesList(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	limit := fs.Int("limit", keygate.DefaultPageSize, "invitations per page (`N`)")
	cursor := fs.String("cursor", "", "the `CURSOR` the previous page printed")
	if err := parseFlagsOnly(fs, args, "invites list takes no arguments"); err != nil {
		return err
	}
	q := url.Values{}
	setQuery(q, "limit", strconv.Itoa(*limit), "cursor", *cursor)
	return callList(ctx, o, m.Stdout, m.Stderr, func(ctx context.Context, c *api.Client) (*api.List[api.InviteView], error) {
		return c.Invites(ctx, q)
	}, inviteTable)
}

// inviteAction returns the subcommand sub, show or revoke, which names
// one invitation.
func (m *Main) inviteAction(sub string) subcommandFunc {
	return func(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
		id, err := parseID(fs, args, "invites "+sub, keygate.PrefixInvite, "invitation")
		if err != nil {
			return err
		}
		return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.InviteView, error) {
			if sub == "show" {
				return c.Invite(ctx, id)
			}
			return c.RevokeInvite(ctx, id)
		}, printInvite)
	}
}

func (m *Main) invitesCreate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	note := fs.String("note", "", "a `NOTE` for yourself, such as whom the code is for")
	expires := fs.Duration("expires", keygate.DefaultInviteTTL, "how long the code works (`DURATION`, at most 2160h)")
	if err := parseFlagsOnly(fs, args, "invites create takes only flags: --note, --expires"); err != nil {
		return err
	}
	req := api.InviteRequest{Note: *note, ExpiresIn: expires.String()}
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.InviteView, error) {
		return c.CreateInvite(ctx, req)
	}, func(w io.Writer, inv *api.InviteView) error {
		if err := printInvite(w, inv); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "\nInvitation code (shown only this once; it works once, until %s):\n\n    %s\n\n"+
			"Register with:  curl -X POST $KEYGATE_URL/v1/register -H 'Content-Type: application/json' -d '{\"name\":\"…\",\"email\":\"…\",\"invite\":\"%s\"}'\n",
			inv.ExpiresAt.UTC().Format(time.RFC3339), inv.Code, inv.Code)
		return err
	})
}

func printInvite(w io.Writer, inv *api.InviteView) error {
	return inviteTable(w, []api.InviteView{*inv})
}

func inviteTable(w io.Writer, invs []api.InviteView) error {
	rows := make([][]string, len(invs))
	for i, inv := range invs {
		rows[i] = []string{inv.ID, inv.Start + "…", inv.Status, orDash(inv.UsedBy), fmtTime(&inv.ExpiresAt), orDash(inv.Note)}
	}
	return table(w, "ID\tCODE\tSTATUS\tUSED BY\tEXPIRES\tNOTE", rows)
}
