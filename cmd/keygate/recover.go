package main

import (
	"context"
	"fmt"
	"os"
	"os/user"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/postgres"
)

// runRootKeysRecover runs `keygate root-keys recover --db PATH`: it opens
// the store directly, as only someone who can read and write the database
// can, and issues a new root key with every permission, for an operator
// who lost every root key. It never talks to a server, and refuses to
// create a database that does not exist. The key is audited as created
// by manage.ActorRecovery, with the operating-system user and host.
func (m *Main) runRootKeysRecover(ctx context.Context, args []string) error {
	fs := m.newFlagSet("root-keys recover")
	db := fs.String("db", "", "the server's database: SQLite file `PATH_OR_URL` or postgres:// URL (required; with SQLite, stop the server first)")
	name := fs.String("name", "recovered", "`NAME` of the new root key")
	file := fs.String("root-key-file", "", "write the new root key to `PATH` (mode 0600, no symlinks) instead of printing it")
	pepper := fs.String("pepper", "", "the server's pepper, if it has one (prefer KEYGATE_PEPPER: flags show in ps)")
	if err := m.parseFlags(fs, args); err != nil {
		return err
	}
	if *db == "" {
		return fmt.Errorf("%w: root-keys recover needs --db (or KEYGATE_DB): the database the server uses", errUsage)
	}
	if err := checkDB(*db); err != nil {
		return err
	}
	if !postgres.IsURL(*db) {
		if _, err := os.Stat(*db); err != nil {
			return fmt.Errorf("no keygate database at %s: %w", *db, err)
		}
	}
	store, closeDB, err := openStore(ctx, *db, m.now)
	if err != nil {
		return fmt.Errorf("open database %s: %w (with SQLite, stop keygate serve first)", redactDB(*db), err)
	}
	defer closeDB()

	var out *os.File
	if *file != "" {
		if out, err = openSecretFile(*file); err != nil {
			return fmt.Errorf("open --root-key-file: %w", err)
		}
		defer out.Close()
	}
	var p []byte
	if *pepper != "" {
		p = []byte(*pepper)
	}
	adm := &manage.Service{Store: store, Hasher: apikey.NewHasher(p), Now: m.now}
	rk, plaintext, err := adm.RecoverRootKey(ctx, *name, recoveredBy())
	if err != nil {
		return fmt.Errorf("create a root key: %w", err)
	}
	if out != nil {
		if _, err := fmt.Fprintln(out, plaintext); err != nil {
			return fmt.Errorf("write --root-key-file: %w", err)
		}
		if err := out.Close(); err != nil {
			return fmt.Errorf("write --root-key-file: %w", err)
		}
		fmt.Fprintf(m.Stdout, "Created root key %s (%s…) with every permission; written to %s.\n", rk.ID, rk.Start, escapeLine(*file))
	} else {
		fmt.Fprintf(m.Stdout, "\nCreated root key %s with every permission. It is shown only this once; keep it safe:\n\n    %s\n\nUse it as:  export KEYGATE_ROOT_KEY=%s\n\n", rk.ID, plaintext, plaintext)
	}
	fmt.Fprintln(m.Stdout, "Running servers load it when they start: start (or restart) keygate serve. The audit log records the recovery (root_key.created by recovery).")
	return nil
}

// recoveredBy names who ran the recovery, for the audit log.
func recoveredBy() map[string]string {
	d := map[string]string{}
	if u, err := user.Current(); err == nil {
		d["os_user"] = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		d["host"] = h
	}
	return d
}
