// Command keygate runs the keygate server and administers a running one.
//
//	keygate serve [flags]          run the server (embedded SQLite by default)
//	keygate accounts create|list|show|update
//	keygate keys create|list|show|update|rotate|enable|disable|revoke
//	keygate tiers list|show|create|update|delete
//	keygate audit [filters]
//	keygate usage [filters]
//	keygate root-keys create|list|revoke|recover
//	keygate invites create|list|show|revoke
//	keygate webhooks create|list|get|update|delete|rotate-secret|test|deliveries|redeliver
//	keygate import FILE            import legacy keys by SHA-256 hash
//	keygate version
//
// The admin commands talk to a running server at KEYGATE_URL with the root
// key in KEYGATE_ROOT_KEY.
//
// Each command group lives in the file named after it (keys.go,
// accounts.go, …); serve.go reads and checks the server's flags and
// server.go wires and runs the server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := NewMain()
	err := m.Run(ctx, os.Args[1:])
	if err == nil {
		err = m.Wait(ctx)
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	stop()
	os.Exit(m.exitCode(err))
}

// Main runs keygate command lines. Its fields are the process's standard
// streams and environment, so that tests can run commands in-process.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// LookupEnv reads a KEYGATE_* variable; os.LookupEnv in NewMain.
	// Secrets such as KEYGATE_ROOT_KEY are read through it when a command
	// runs, never into a flag's default, so that help never shows them.
	LookupEnv func(name string) (string, bool)
	// Now is the clock of every command, and of the server `keygate
	// serve` runs; nil means time.Now. Tests set it so that no answer
	// depends on when they run.
	Now func() time.Time

	// server is the server `keygate serve` started, until Close.
	server *runningServer
}

// NewMain returns a Main on the process's standard streams and
// environment.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv}
}

func (m *Main) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Run runs one command line. Admin commands return when they are done;
// `keygate serve` returns once the server is listening, and Wait and Close
// then run and stop it.
func (m *Main) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command given\n\n%s", errUsage, usage)
	}
	switch args[0] {
	case "serve":
		return m.runServe(ctx, args[1:])
	case "accounts", "account":
		return m.runAccounts(ctx, args[1:])
	case "keys", "key":
		return m.runKeys(ctx, args[1:])
	case "tiers", "tier":
		return m.runTiers(ctx, args[1:])
	case "audit":
		return m.runAudit(ctx, args[1:])
	case "usage":
		return m.runUsage(ctx, args[1:])
	case "root-keys", "root-key":
		return m.runRootKeys(ctx, args[1:])
	case "webhooks", "webhook":
		return m.runWebhooks(ctx, args[1:])
	case "invites", "invite":
		return m.runInvites(ctx, args[1:])
	case "import":
		return m.runImport(ctx, args[1:])
	case "demo":
		return m.runDemo(ctx, args[1:])
	case "routes", "route":
		return m.runRoutes(ctx, args[1:])
	case "version", "--version", "-version":
		return m.runVersion()
	case "help", "-h", "-help", "--help":
		fmt.Fprint(m.Stdout, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q\n\n%s", errUsage, args[0], usage)
}

// Wait blocks until ctx is done or the server started by Run stops on its
// own, and returns the server's error. Without a server it returns at once.
func (m *Main) Wait(ctx context.Context) error {
	if m.server == nil {
		return nil
	}
	return m.server.wait(ctx)
}

// Close stops the server started by Run, if any: it stops taking requests,
// lets those in flight finish, writes buffered usage and quota counters,
// and closes the store.
func (m *Main) Close() error {
	if m.server == nil {
		return nil
	}
	s := m.server
	m.server = nil
	return s.Close()
}

// exitCode prints err, if any, and returns the process's exit status: 0
// for success and help, 2 for usage mistakes, 1 for anything else.
func (m *Main) exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		msg := strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
		if head, rest, ok := strings.Cut(msg, "\n"); ok {
			// The usage text after a first line is ours, not user input.
			fmt.Fprintf(m.Stderr, "keygate: %s\n%s", escapeLine(head), rest)
		} else {
			fmt.Fprintf(m.Stderr, "keygate: %s\n", escapeLine(msg))
		}
		return 2
	default:
		fmt.Fprintf(m.Stderr, "keygate: %s\n", escapeLine(err.Error()))
		return 1
	}
}

// errUsage marks an error the user fixes by reading the usage text.
var errUsage = errors.New("usage")

const usage = `keygate — API keys for your HTTP API.

Usage:
  keygate serve [flags]                  run the server (see keygate serve -h)
  keygate accounts create|list|show|update
                                         manage accounts
  keygate keys create|list|show|update|rotate|enable|disable|revoke
                                         manage API keys
  keygate tiers list|show|create|update|delete
                                         manage usage tiers
  keygate audit [--action A] [--target ID] [--since 24h] …
                                         read the audit log
  keygate usage [--key ID | --account ID] [--granularity hour|day] [--from 7d] [--by route|status|outcome|key|account] [--top key|account]
                                         requests per hour or day with latency percentiles, a bar chart, or the busiest keys
  keygate root-keys create|list|revoke   manage admin credentials
  keygate root-keys recover --db PATH    offline: a new root key, with direct access to the store
  keygate invites create|list|show|revoke
                                         invitation codes for --registration invite
  keygate webhooks create|list|get|update|delete|rotate-secret|test|deliveries|redeliver
                                         signed event notifications to your endpoints
  keygate import FILE [--format csv|jsonl] [--on-error skip|stop]
                                         import keys issued elsewhere, by hash
  keygate demo [--addr HOST:PORT]        the weather API behind the gateway, with keys to try
  keygate routes check FILE              validate a gateway config file (route rules)
  keygate version                        print the version

Each command and group takes -h for its subcommands and flags.

Admin commands talk to a running server: set KEYGATE_URL (default
http://127.0.0.1:8080) and KEYGATE_ROOT_KEY (the root key printed at first
start). Add --json for machine-readable output.
`
