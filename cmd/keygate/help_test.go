package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretRootKey is a root key that must never show in help, errors or
// output of the commands below.
const secretRootKey = "kgr_live_SeCrEt0123456789abcdefghijklmnopqrstuvwxyzABCDEF"

// runMain runs one command line in-process with env as the whole
// environment, and returns its exit code, stdout and stderr.
func runMain(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}}
	err := m.Run(context.Background(), args)
	if err == nil {
		err = m.Wait(context.Background())
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return m.exitCode(err), stdout.String(), stderr.String()
}

// commands are every command line that takes -h: the groups, each of
// their subcommands, and the commands without subcommands.
var commands = [][]string{
	{"serve"}, {"audit"}, {"usage"}, {"import"},
	{"accounts"}, {"accounts", "create"}, {"accounts", "list"}, {"accounts", "show"}, {"accounts", "update"},
	{"keys"}, {"keys", "create"}, {"keys", "list"}, {"keys", "show"}, {"keys", "update"}, {"keys", "rotate"},
	{"keys", "enable"}, {"keys", "disable"}, {"keys", "revoke"},
	{"tiers"}, {"tiers", "list"}, {"tiers", "show"}, {"tiers", "create"}, {"tiers", "update"}, {"tiers", "delete"},
	{"root-keys"}, {"root-keys", "create"}, {"root-keys", "list"}, {"root-keys", "revoke"}, {"root-keys", "recover"},
	{"invites"}, {"invites", "create"}, {"invites", "list"}, {"invites", "show"}, {"invites", "revoke"},
	{"routes"}, {"routes", "check"}, {"demo"},
	{"webhooks"}, {"webhooks", "create"}, {"webhooks", "list"}, {"webhooks", "get"}, {"webhooks", "update"},
	{"webhooks", "delete"}, {"webhooks", "rotate-secret"}, {"webhooks", "test"}, {"webhooks", "deliveries"},
	{"webhooks", "redeliver"},
}

func TestHelpExitsZeroAndShowsNoSecret(t *testing.T) {
	env := map[string]string{"KEYGATE_ROOT_KEY": secretRootKey, "KEYGATE_PEPPER": "pepper-secret-value", "KEYGATE_URL": "http://admin:url-password@127.0.0.1:1"}
	for _, cmd := range commands {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string{}, cmd...), h)
			code, stdout, stderr := runMain(t, env, args...)
			if code != 0 || !strings.Contains(stdout, "Usage") || stderr != "" {
				t.Errorf("keygate %s: exit %d, stdout %q, stderr %q; want exit 0 and usage on stdout", strings.Join(args, " "), code, stdout, stderr)
			}
			for _, secret := range []string{secretRootKey, "pepper-secret-value", "url-password"} {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("keygate %s shows a secret from the environment:\n%s", strings.Join(args, " "), stdout)
				}
			}
		}
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"keys", "help"}, {"tiers", "help"}} {
		if code, stdout, _ := runMain(t, env, args...); code != 0 || !strings.Contains(stdout, "Usage") {
			t.Errorf("keygate %s: exit %d, %q", strings.Join(args, " "), code, stdout)
		}
	}
}

func TestGroupUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"keys"}, "keygate keys needs a subcommand"},
		{[]string{"accounts", "frobnicate"}, `unknown subcommand "accounts frobnicate"`},
		{[]string{"tiers", "nope"}, `unknown subcommand "tiers nope"`},
		{[]string{"root-keys"}, "keygate root-keys needs a subcommand"},
		{[]string{"routes"}, "keygate routes needs a subcommand"},
		{[]string{"routes", "lint"}, `unknown subcommand "routes lint"`},
		{[]string{"routes", "check"}, "keygate routes check needs one FILE"},
	}
	for _, tt := range tests {
		code, _, stderr := runMain(t, nil, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "Subcommands:") {
			t.Errorf("keygate %v: exit %d, stderr %q; want exit 2, %q and the group's subcommands", tt.args, code, stderr, tt.want)
		}
	}
}

func TestErrorsShowNoSecret(t *testing.T) {
	env := map[string]string{"KEYGATE_ROOT_KEY": secretRootKey, "KEYGATE_URL": "http://admin:url-password@" + freeAddr(t)}
	for _, args := range [][]string{
		{"accounts", "list"},                 // the server cannot be reached
		{"accounts", "list", "--json"},       // likewise, for scripts
		{"keys", "show", secretRootKey},      // a key where an ID belongs
		{"keys", "create", "--bogus"},        // an unknown flag
		{"audit", "--target", secretRootKey}, // a key where an ID belongs
		{"keys", "revoke", "key_x", "--root-key", secretRootKey},
	} {
		code, stdout, stderr := runMain(t, env, args...)
		if code == 0 {
			t.Errorf("keygate %v: exit 0, want a failure", args)
		}
		for _, secret := range []string{secretRootKey, "url-password"} {
			if strings.Contains(stdout+stderr, secret) {
				t.Errorf("keygate %v shows a secret:\nstdout %q\nstderr %q", args, stdout, stderr)
			}
		}
	}
}

// TestServeChecksFlagsFirst checks that a bad setting stops serve before
// the database is created.
func TestServeChecksFlagsFirst(t *testing.T) {
	for _, bad := range [][]string{
		{"--log-level", "loud"}, {"--log-format", "xml"}, {"--key-prefix", "kgr"}, {"--trusted-proxies", "10.0.0.0/99"},
		{"--failure-limit", "0"}, {"--failure-window", "0s"}, {"--registration", "sometimes"}, {"--registration-limit", "0"},
		{"--registration-window", "0s"}, {"--max-keys-per-account", "-1"}, {"--usage-buffer", "0"}, {"--usage-flush-interval", "0s"},
		{"--usage-retention", "-1h"}, {"--db", "mysql://x"}, {"--github-keys-file", "/nonexistent/github-keys.json"}, {"--github-keys-url", "ftp://x"}, {"stray-argument"},
	} {
		db := filepath.Join(t.TempDir(), "keygate.db")
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, bad...)
		code, _, stderr := runMain(t, nil, args...)
		if code != 2 || !strings.HasPrefix(stderr, "keygate: ") {
			t.Errorf("serve %v: exit %d, stderr %q; want exit 2 and a reason", bad, code, stderr)
		}
		if _, err := os.Stat(db); !os.IsNotExist(err) {
			t.Errorf("serve %v: the database was created before the flags were checked (%v)", bad, err)
		}
	}
	// A bad value from the environment is refused the same way, and a
	// secret one is not quoted.
	code, _, stderr := runMain(t, map[string]string{"KEYGATE_FAILURE_WINDOW": "soon"}, "serve", "--db", filepath.Join(t.TempDir(), "k.db"))
	if code != 2 || !strings.Contains(stderr, `KEYGATE_FAILURE_WINDOW="soon"`) {
		t.Errorf("bad KEYGATE_FAILURE_WINDOW: exit %d, %q", code, stderr)
	}
}

// TestCommandsListIsComplete checks that commands names every subcommand
// each group's help lists, so that the secret checks cover all of them.
func TestCommandsListIsComplete(t *testing.T) {
	have := map[string]bool{}
	for _, c := range commands {
		have[strings.Join(c, " ")] = true
	}
	for _, c := range commands {
		if len(c) != 1 {
			continue
		}
		_, stdout, _ := runMain(t, nil, c[0], "-h")
		_, subs, ok := strings.Cut(stdout, "Subcommands:\n")
		if !ok {
			continue
		}
		for _, line := range strings.Split(subs, "\n") {
			if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "   ") {
				continue
			}
			sub := strings.Fields(line)[0]
			if !have[c[0]+" "+sub] {
				t.Errorf("keygate %s %s is missing from commands", c[0], sub)
			}
		}
	}
}

// TestNoCommandShowsASecret runs every command but serve and demo, with
// and without --json, with secrets in the environment and a server that
// cannot be reached, and checks that no secret appears in what it prints.
func TestNoCommandShowsASecret(t *testing.T) {
	env := map[string]string{
		"KEYGATE_ROOT_KEY": secretRootKey, "KEYGATE_PEPPER": "pepper-secret-value",
		"KEYGATE_URL": "http://admin:url-password@" + freeAddr(t),
	}
	for _, cmd := range commands {
		if cmd[0] == "serve" || cmd[0] == "demo" {
			continue
		}
		for _, extra := range [][]string{nil, {"--json"}, {"key_01m8h24gba7qgqbkxwqdmc6n7v", "--json"}, {secretRootKey}} {
			args := append(append([]string{}, cmd...), extra...)
			_, stdout, stderr := runMain(t, env, args...)
			for _, secret := range []string{secretRootKey, "pepper-secret-value", "url-password"} {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("keygate %s shows a secret:\nstdout %q\nstderr %q", strings.Join(args, " "), stdout, stderr)
				}
			}
		}
	}
}

// TestHelpCoversEveryCommand checks that the commands TestHelpExitsZero…
// runs include every command and subcommand the top-level usage lists,
// so that a new group is tested for -h as soon as it is documented.
func TestHelpCoversEveryCommand(t *testing.T) {
	listed := map[string]bool{}
	for _, c := range commands {
		listed[strings.Join(c, " ")] = true
	}
	for _, line := range strings.Split(usage, "\n") {
		f := strings.Fields(line)
		if !strings.HasPrefix(line, "  keygate ") || len(f) < 2 || f[1] == "version" {
			continue
		}
		var want []string
		if len(f) > 2 && !strings.HasPrefix(f[2], "-") && !strings.HasPrefix(f[2], "[") && strings.ToLower(f[2]) == f[2] {
			for _, sub := range strings.Split(f[2], "|") {
				want = append(want, f[1]+" "+sub)
			}
		}
		want = append(want, f[1])
		for _, w := range want {
			if !listed[w] {
				t.Errorf("keygate %s is in the usage but not in commands: add it so that its -h is tested", w)
			}
		}
	}
}
