package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// newFlagSet returns the flag set of one command, named as the user types
// it ("keygate keys create"). Help asked for with -h goes to standard
// output: it is what the user asked to see.
func (m *Main) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("keygate "+name, flag.ContinueOnError)
	fs.SetOutput(m.Stdout)
	return fs
}

// subcommand splits off the subcommand of a command group such as keys.
// For -h, --help or help it prints the group's usage and returns
// flag.ErrHelp (exit 0); with none it returns a usage error.
func (m *Main) subcommand(args []string, group, usage string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, fmt.Errorf("%w: keygate %s needs a subcommand\n\n%s", errUsage, group, usage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(m.Stdout, usage)
		return "", nil, flag.ErrHelp
	}
	return args[0], args[1:], nil
}

// unknownSubcommand is the error for a subcommand a group does not have.
func unknownSubcommand(group, sub, usage string) error {
	return fmt.Errorf("%w: unknown subcommand \"%s %s\"\n\n%s", errUsage, group, sub, usage)
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

// parseCmd is parseArgs for commands whose bad flags are usage errors: it
// keeps the flag package from printing the whole usage on a mistyped flag,
// turns the mistake into one line and exit 2, and prints the usage only
// for -h.
func parseCmd(fs *flag.FlagSet, args []string) ([]string, error) {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	pos, err := parseArgs(fs, args)
	fs.SetOutput(out)
	switch {
	case err == nil:
		return pos, nil
	case errors.Is(err, flag.ErrHelp):
		if syn, ok := synopses[fs.Name()]; ok {
			fmt.Fprintf(out, "Usage: %s\n\nFlags:\n", syn)
		} else {
			fmt.Fprintf(out, "Usage of %s:\n", fs.Name())
		}
		fs.PrintDefaults()
		return nil, err
	}
	return nil, fmt.Errorf("%w: %s: %v (see %s -h)", errUsage, strings.TrimPrefix(fs.Name(), "keygate "), err, fs.Name())
}

// synopses are the usage lines of the commands that take arguments.
var synopses = map[string]string{
	"keygate accounts show":    "keygate accounts show ACCOUNT_ID",
	"keygate accounts update":  "keygate accounts update ACCOUNT_ID [--name N] [--email E] [--tier T]",
	"keygate keys show":        "keygate keys show KEY_ID",
	"keygate keys revoke":      "keygate keys revoke KEY_ID [--reason R]",
	"keygate keys rotate":      "keygate keys rotate KEY_ID [--grace 24h]",
	"keygate keys enable":      "keygate keys enable KEY_ID",
	"keygate keys disable":     "keygate keys disable KEY_ID",
	"keygate keys update":      "keygate keys update KEY_ID [--name N] [--scope S … | --no-scopes] [--ip CIDR … | --no-ips] [--tier T | --inherit-tier] [--quota N | --no-quota] [--rate R | --no-rate] [--burst B | --no-burst] [--expires TIME | --no-expiry] [--meta JSON | --no-meta]",
	"keygate tiers create":     "keygate tiers create --name N --quota Q --rate R --burst B [--quota-scope account|key]",
	"keygate tiers update":     "keygate tiers update NAME [--quota Q] [--rate R] [--burst B] [--quota-scope account|key]",
	"keygate tiers show":       "keygate tiers show NAME",
	"keygate tiers delete":     "keygate tiers delete NAME",
	"keygate audit":            "keygate audit [--actor A] [--action A] [--target-type T] [--target ID] [--since TIME] [--until TIME] [--limit N] [--cursor C]",
	"keygate root-keys create": "keygate root-keys create --name N --permission P [--permission P …]",
	"keygate root-keys revoke": "keygate root-keys revoke ROOT_KEY_ID",
	"keygate root-keys recover": "keygate root-keys recover --db PATH_OR_URL [--name N] [--root-key-file PATH]\n\n" +
		"Run it on the database's host, with the server stopped (SQLite). Set KEYGATE_PEPPER if the server has a pepper.",
	"keygate invites create": "keygate invites create [--note N] [--expires 168h]",
	"keygate invites list":   "keygate invites list [--limit N] [--cursor C]",
	"keygate invites show":   "keygate invites show INVITE_ID",
	"keygate invites revoke": "keygate invites revoke INVITE_ID",
	"keygate routes check":   "keygate routes check FILE",
	"keygate serve":          "keygate serve [flags]\n\nEvery flag can also be set as KEYGATE_<NAME> (--db is KEYGATE_DB, --root-key-file is KEYGATE_ROOT_KEY_FILE); flags win.",
	"keygate import": "keygate import FILE|- [--format csv|jsonl] [--batch 10000] [--on-error skip|stop]\n\n" +
		"FILE is CSV with a header row, or JSON Lines, with the fields hash (SHA-256 hex of the key)\n" +
		"and account_id, and optionally tier, name, env, scopes, ip_allow, start, expires_at, meta.",
}

// secretFlags name the flags whose values are secrets: an error never
// quotes them.
var secretFlags = map[string]bool{"pepper": true, "root-key": true}

// parseFlags parses a command that takes only flags, then fills every flag
// not given on the command line from KEYGATE_<NAME> (dashes become
// underscores). The environment is read after parsing, so help shows the
// built-in defaults, never a value from the environment.
func (m *Main) parseFlags(fs *flag.FlagSet, args []string) error {
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: %s takes only flags; unexpected argument %q", errUsage, fs.Name(), pos[0])
	}
	set := flagsSet(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := envName(f.Name)
		v, ok := m.LookupEnv(name)
		if !ok {
			return
		}
		if e := f.Value.Set(v); e != nil {
			if secretFlags[f.Name] {
				err = fmt.Errorf("%w: %s is not valid", errUsage, name)
			} else {
				err = fmt.Errorf("%w: %s=%q: %v", errUsage, name, v, e)
			}
		}
	})
	return err
}

// envName is the environment variable of a flag: --root-key-file is
// KEYGATE_ROOT_KEY_FILE.
func envName(flagName string) string {
	return "KEYGATE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// flagsSet returns the names of the flags given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// stringList is a repeatable flag; each use may also hold a comma-separated list.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

// Set adds the comma-separated values of one use of the flag.
func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}
