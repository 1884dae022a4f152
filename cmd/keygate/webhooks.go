package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

const webhooksUsage = `Usage: keygate webhooks SUBCOMMAND [flags]

Subcommands:
  create --endpoint URL --event E [--event E …] [--description D]
                              register an endpoint (its signing secret is shown this once)
  list                        list endpoints
  get WEBHOOK_ID              show one endpoint
  update WEBHOOK_ID [--endpoint URL] [--event E …] [--description D] [--enable | --disable]
                              change an endpoint
  delete WEBHOOK_ID           delete an endpoint and its delivery log
  rotate-secret WEBHOOK_ID    give an endpoint a new signing secret (shown this once)
  test WEBHOOK_ID             send a webhook.test event to the endpoint
  deliveries WEBHOOK_ID [--status pending|succeeded|failed]
                              the endpoint's delivery log, newest first
  redeliver WEBHOOK_ID DELIVERY_ID
                              send a delivery again

Events: key.created, key.rotated, key.revoked, key.expiring, key.leaked,
quota.threshold, account.created. Deliveries are signed per the Standard
Webhooks specification; see docs/WEBHOOKS.md to verify them.

Each subcommand takes -h for its flags.
`

// runWebhooks runs `keygate webhooks SUBCOMMAND`.
func (m *Main) runWebhooks(ctx context.Context, args []string) error {
	return m.runGroup(ctx, args, "webhooks", webhooksUsage, map[string]subcommandFunc{
		"create":        m.webhooksCreate,
		"list":          m.webhooksList,
		"update":        m.webhooksUpdate,
		"deliveries":    m.webhooksDeliveries,
		"redeliver":     m.webhooksRedeliver,
		"get":           m.webhookAction("get"),
		"show":          m.webhookAction("show"),
		"delete":        m.webhookAction("delete"),
		"rotate-secret": m.webhookAction("rotate-secret"),
		"test":          m.webhookAction("test"),
	})
}

func (m *Main) webhooksList(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	if err := parseFlagsOnly(fs, args, "webhooks list takes no arguments"); err != nil {
		return err
	}
	return callAll(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) ([]*keygate.Webhook, error) {
		return c.Webhooks(ctx)
	}, webhookTable)
}

func (m *Main) webhooksRedeliver(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || !strings.HasPrefix(pos[0], keygate.PrefixWebhook) || !strings.HasPrefix(pos[1], keygate.PrefixDelivery) {
		return fmt.Errorf("%w: webhooks redeliver needs a webhook ID (%s…) and a delivery ID (%s…), from keygate webhooks deliveries", errUsage, keygate.PrefixWebhook, keygate.PrefixDelivery)
	}
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*keygate.WebhookDelivery, error) {
		return c.Redeliver(ctx, pos[0], pos[1])
	}, func(w io.Writer, d *keygate.WebhookDelivery) error {
		_, err := fmt.Fprintf(w, "Delivery %s of event %s (%s) is pending again.\n", d.ID, d.EventID, escapeCell(d.EventType))
		return err
	})
}

func (m *Main) webhooksCreate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	var req api.WebhookRequest
	var events stringList
	// --url is the keygate server's, as in every admin command.
	fs.StringVar(&req.URL, "endpoint", "", "the endpoint's `URL`: http:// or https:// (required; or give it as the argument)")
	fs.Var(&events, "event", "an event `TYPE` to send: "+strings.Join(keygate.WebhookEventTypes, ", ")+" (repeatable, or comma-separated; required)")
	fs.StringVar(&req.Description, "description", "", "what the endpoint is for (`TEXT`)")
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 1 && req.URL == "" {
		req.URL = pos[0] // keygate webhooks create https://… --event …
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: webhooks create takes one endpoint URL, as --endpoint or the argument", errUsage)
	}
	if req.URL == "" || len(events) == 0 {
		return fmt.Errorf("%w: webhooks create needs --endpoint and at least one --event (%s)", errUsage, strings.Join(keygate.WebhookEventTypes, ", "))
	}
	req.Events = events
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.WebhookSecretView, error) {
		return c.CreateWebhook(ctx, req)
	}, printWebhookSecret)
}

// printWebhookSecret shows an endpoint and its signing secret, which the
// server shows only in this answer.
func printWebhookSecret(w io.Writer, v *api.WebhookSecretView) error {
	if err := webhookTable(w, []*keygate.Webhook{v.Webhook}); err != nil {
		return err
	}
	return printOnce(w, "Signing secret", v.Secret)
}

func (m *Main) webhooksUpdate(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	var events stringList
	u := fs.String("endpoint", "", "the endpoint's new `URL`")
	fs.Var(&events, "event", "the event `TYPE`s to send, replacing the current ones (repeatable, or comma-separated)")
	desc := fs.String("description", "", "a new description (`TEXT`; \"\" clears it)")
	enable := fs.Bool("enable", false, "send deliveries to the endpoint again")
	disable := fs.Bool("disable", false, "stop sending new events to the endpoint")
	id, err := parseID(fs, args, "webhooks update", keygate.PrefixWebhook, "webhook")
	if err != nil {
		return err
	}
	set := flagsSet(fs)
	var p api.WebhookPatch
	if set["endpoint"] {
		p.URL = u
	}
	if set["event"] {
		ev := []string(events)
		p.Events = &ev
	}
	if set["description"] {
		p.Description = desc
	}
	switch {
	case *enable && *disable:
		return fmt.Errorf("%w: webhooks update takes --enable or --disable, not both", errUsage)
	case *enable, *disable:
		on := *enable
		p.Enabled = &on
	}
	if p == (api.WebhookPatch{}) {
		return fmt.Errorf("%w: webhooks update needs at least one of --endpoint, --event, --description, --enable, --disable", errUsage)
	}
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*keygate.Webhook, error) {
		return c.UpdateWebhook(ctx, id, p)
	}, printWebhook)
}

func (m *Main) webhooksDeliveries(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
	status := fs.String("status", "", "only deliveries with this `STATUS`: pending, succeeded, failed")
	pg := pageFlags(fs, "deliveries")
	id, err := parseID(fs, args, "webhooks deliveries", keygate.PrefixWebhook, "webhook")
	if err != nil {
		return err
	}
	q := url.Values{}
	setQuery(q, "status", *status)
	pg.set(q)
	return callList(ctx, o, m.Stdout, m.Stderr, func(ctx context.Context, c *api.Client) (*api.List[*keygate.WebhookDelivery], error) {
		return c.WebhookDeliveries(ctx, id, q)
	}, deliveryTable)
}

// deletedWebhook is what webhooks delete prints with --json.
type deletedWebhook struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// webhookAction returns the subcommand sub, which takes one webhook ID
// and no flags of its own: get (or show), delete, rotate-secret, test.
func (m *Main) webhookAction(sub string) subcommandFunc {
	return func(ctx context.Context, o *cliOpts, fs *flag.FlagSet, args []string) error {
		id, err := parseID(fs, args, "webhooks "+sub, keygate.PrefixWebhook, "webhook")
		if err != nil {
			return err
		}
		return m.webhookByID(ctx, o, sub, id)
	}
}

// webhookByID runs webhooks sub on the endpoint id.
func (m *Main) webhookByID(ctx context.Context, o *cliOpts, sub, id string) error {
	switch sub {
	case "delete":
		return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (deletedWebhook, error) {
			return deletedWebhook{ID: id, Deleted: true}, c.DeleteWebhook(ctx, id)
		}, func(w io.Writer, d deletedWebhook) error {
			_, err := fmt.Fprintf(w, "Deleted webhook %s and its deliveries.\n", d.ID)
			return err
		})
	case "rotate-secret":
		return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*api.WebhookSecretView, error) {
			return c.RotateWebhookSecret(ctx, id)
		}, printWebhookSecret)
	case "test":
		return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*keygate.WebhookEvent, error) {
			return c.TestWebhook(ctx, id)
		}, func(w io.Writer, ev *keygate.WebhookEvent) error {
			_, err := fmt.Fprintf(w, "Queued %s event %s for %s; see keygate webhooks deliveries %s.\n", escapeCell(ev.Type), ev.ID, id, id)
			return err
		})
	}
	return call(ctx, o, m.Stdout, func(ctx context.Context, c *api.Client) (*keygate.Webhook, error) {
		return c.Webhook(ctx, id)
	}, printWebhook)
}

func printWebhook(w io.Writer, h *keygate.Webhook) error {
	return webhookTable(w, []*keygate.Webhook{h})
}

func webhookTable(w io.Writer, hs []*keygate.Webhook) error {
	rows := make([][]string, len(hs))
	for i, h := range hs {
		state := "enabled"
		if !h.Enabled {
			state = "disabled"
		}
		rows[i] = []string{h.ID, h.URL, strings.Join(h.Events, ","), state, orDash(h.Description), fmtTime(&h.CreatedAt)}
	}
	return table(w, "ID\tURL\tEVENTS\tSTATE\tDESCRIPTION\tCREATED", rows)
}

func deliveryTable(w io.Writer, ds []*keygate.WebhookDelivery) error {
	rows := make([][]string, len(ds))
	for i, d := range ds {
		last := "-"
		switch {
		case d.LastStatus != 0:
			last = strconv.Itoa(d.LastStatus)
		case d.LastError != "":
			last = d.LastError
		}
		rows[i] = []string{d.ID, d.EventType, d.EventID, d.Status, strconv.Itoa(d.Attempts), last, fmtTime(d.NextAttemptAt), fmtTime(&d.CreatedAt)}
	}
	return table(w, "ID\tEVENT\tWEBHOOK-ID\tSTATUS\tATTEMPTS\tLAST\tNEXT ATTEMPT\tCREATED", rows)
}
