package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/keygate/keygate/manage"
)

// bootstrap creates the first root key on a store with none and hands it
// over once: written to path (mode 0600) or printed to stdout. The file is
// opened before the key is created, so a path that cannot be written stops
// the start instead of losing the only root key.
func bootstrap(ctx context.Context, adm *manage.Service, path string, stdout io.Writer, log *slog.Logger) error {
	need, err := adm.NeedsBootstrap(ctx)
	if err != nil || !need {
		return err
	}
	var f *os.File
	if path != "" {
		if f, err = openSecretFile(path); err != nil {
			return fmt.Errorf("open --root-key-file: %w", err)
		}
		defer f.Close()
	}
	rk, plaintext, err := adm.Bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("create the first root key: %w", err)
	}
	if f != nil {
		if _, err := fmt.Fprintln(f, plaintext); err != nil {
			return fmt.Errorf("write --root-key-file: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write --root-key-file: %w", err)
		}
		log.Info("first start: root key written", "path", path, "root_key_id", rk.ID, "start", rk.Start)
		return nil
	}
	fmt.Fprintf(stdout, "\nFirst start: created root key %s. It is shown only this once; keep it safe:\n\n    %s\n\nUse it as:  export KEYGATE_ROOT_KEY=%s\n\n", rk.ID, plaintext, plaintext)
	log.Info("first start: root key printed", "root_key_id", rk.ID, "start", rk.Start)
	return nil
}
