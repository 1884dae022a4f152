package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShutdownWaitsForExposureAudit: a key sent in a query string just
// before SIGTERM is audited as key.exposed even when the audit write is
// still waiting for the database as the shutdown begins.
func TestShutdownWaitsForExposureAudit(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keygate.db")
	s := startServer(t, "--db", db)
	root := rootKeyRE.FindString(s.stdout.String())
	var acct struct{ ID string }
	cliJSON(t, s, root, &acct, "accounts", "create", "--name", "Ada", "--email", "ada@example.com")
	var key struct{ ID, Key string }
	cliJSON(t, s, root, &key, "keys", "create", "--account", acct.ID)

	// Hold SQLite's write lock from here, so that the audit write waits.
	lockDB, err := sql.Open("sqlite", db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer lockDB.Close()
	ctx := context.Background()
	conn, err := lockDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	defer func() {
		if locked {
			conn.ExecContext(ctx, "ROLLBACK")
		}
	}()

	resp, err := http.Get(s.url + "/demo/weather?api_key=" + key.Key)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "KEY_IN_QUERY") {
		t.Fatalf("a key in the query: %d %s", resp.StatusCode, body)
	}
	time.Sleep(200 * time.Millisecond) // the audit write is waiting for the lock
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("keygate exited (%v) while a key.exposed audit write was still waiting; stderr:\n%s", err, s.stderr)
	case <-time.After(time.Second):
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	locked = false
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("keygate exited with %v\nstderr:\n%s", err, s.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("keygate did not stop once the database was free; stderr:\n%s", s.stderr)
	}

	s2 := startServer(t, "--db", db)
	var events struct {
		Data []struct {
			Action   string `json:"action"`
			TargetID string `json:"target_id"`
		} `json:"data"`
	}
	stdout, stderr, code := cli(t, s2, root, "audit", "--action", "key.exposed", "--json")
	if code != 0 {
		t.Fatalf("keygate audit: exit %d: %s", code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &events); err != nil {
		t.Fatalf("keygate audit: %v in %s", err, stdout)
	}
	if len(events.Data) != 1 || events.Data[0].TargetID != key.ID {
		t.Fatalf("key.exposed events after the restart: %s; want one against %s", stdout, key.ID)
	}
}
