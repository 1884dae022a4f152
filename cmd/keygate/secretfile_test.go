//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenSecretFileRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "root.key")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if f, err := openSecretFile(link); err == nil {
		f.Close()
		t.Fatal("openSecretFile followed a symbolic link")
	} else if !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("error %q does not say why", err)
	}
	if data, _ := os.ReadFile(target); string(data) != "keep me" {
		t.Errorf("the link's target was changed: %q", data)
	}
}

func TestOpenSecretFileRefusesOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making a file another user owns needs root")
	}
	path := filepath.Join(t.TempDir(), "root.key")
	if err := os.WriteFile(path, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if f, err := openSecretFile(path); err == nil {
		f.Close()
		t.Fatal("openSecretFile wrote a file another user owns")
	} else if !strings.Contains(err.Error(), "another user") {
		t.Errorf("error %q does not say why", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "theirs" {
		t.Errorf("the other user's file was changed: %q", data)
	}
}

func TestOpenSecretFileTightensMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	if err := os.WriteFile(path, []byte("old contents, longer than the new"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := openSecretFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("new"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", fi.Mode().Perm())
	}
	if data, _ := os.ReadFile(path); string(data) != "new" {
		t.Errorf("contents %q, want %q", data, "new")
	}
}

// A start with --root-key-file naming a symbolic link stops before any
// root key is made, and a database file others can read is warned about.
func TestServeRootKeyFileSymlinkAndDBMode(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "root.key")
	if err := os.Symlink(filepath.Join(dir, "target"), link); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "keygate.db")
	var stdout, stderr lockedBuffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, LookupEnv: func(string) (string, bool) { return "", false }}
	err := m.Run(t.Context(), []string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--root-key-file", link})
	if err == nil {
		m.Close()
		t.Fatal("serve started with --root-key-file a symbolic link")
	}
	if !strings.Contains(err.Error(), "symbolic link") || rootKeyRE.MatchString(stdout.String()+stderr.String()) {
		t.Fatalf("got %v; stdout %q", err, stdout.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "target")); err == nil {
		t.Fatal("the link's target was created")
	}

	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--db", db)
	s.stop(t)
	if !strings.Contains(s.stderr.String(), "the database file can be read by other users") {
		t.Errorf("no warning for a database file of mode 0644; stderr:\n%s", s.stderr)
	}
}
