package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keygate/keygate/sqlite"
)

// TestLock checks that a second Lock on the same database fails, naming the
// holder, and succeeds once the first is released. (Two real processes are
// tested in cmd/keygate.)
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	release, err := sqlite.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path + ".lock")
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file: got %q, %v; want this process's ID", b, err)
	}
	_, err = sqlite.Lock(path)
	if !errors.Is(err, sqlite.ErrLocked) || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) ||
		!strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("second Lock: got %v, want ErrLocked naming the holder and PostgreSQL", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	release2, err := sqlite.Lock(path)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	release2()
}
