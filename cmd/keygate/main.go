// Command keygate runs the keygate server and administers a running one.
//
//	keygate serve [flags]          run the server (embedded SQLite by default)
//	keygate accounts create|list|show|update
//	keygate keys create|list|show|update|rotate|enable|disable|revoke
//	keygate tiers list|show|create|update|delete
//	keygate audit [filters]
//	keygate root-keys create|list|revoke
//	keygate import FILE            import legacy keys by SHA-256 hash
//	keygate version
//
// The admin commands talk to a running server at KEYGATE_URL with the root
// key in KEYGATE_ROOT_KEY.
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

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
  keygate usage [--key ID | --account ID] [--granularity hour|day] [--from 7d]
                                         requests per hour or day, with a bar chart
  keygate root-keys create|list|revoke   manage admin credentials
  keygate import FILE [--format csv|jsonl] [--on-error skip|stop]
                                         import keys issued elsewhere, by hash
  keygate version                        print the version

Each command takes -h for its flags.

Admin commands talk to a running server: set KEYGATE_URL (default
http://127.0.0.1:8080) and KEYGATE_ROOT_KEY (the root key printed at first
start). Add --json for machine-readable output.
`

// errUsage marks an error the user fixes by reading the usage text.
var errUsage = errors.New("usage")

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	case "accounts", "account":
		err = runAccounts(ctx, args[1:], stdout, stderr)
	case "keys", "key":
		err = runKeys(ctx, args[1:], stdout, stderr)
	case "tiers", "tier":
		err = runTiers(ctx, args[1:], stdout, stderr)
	case "audit":
		err = runAudit(ctx, args[1:], stdout, stderr)
	case "usage":
		err = runUsage(ctx, args[1:], stdout, stderr)
	case "root-keys", "root-key":
		err = runRootKeys(ctx, args[1:], stdout, stderr)
	case "import":
		err = runImport(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		err = runVersion(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "keygate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "keygate: %s\n", strings.TrimPrefix(err.Error(), "usage: "))
		return 2
	default:
		fmt.Fprintf(stderr, "keygate: %s\n", err)
		return 1
	}
}
