package sqlite

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked is the cause of Lock's error when another process holds the
// database.
var ErrLocked = errors.New("the database is in use by another keygate process")

// Lock makes this process the one keygate server on the SQLite database at
// path, for as long as it runs: it takes an exclusive flock(2) on the file
// path+".lock" beside it (created with mode 0600), writes its process ID
// there, and holds the lock until release is called or the process exits,
// however it exits. A second server on the same file gets an error wrapping
// ErrLocked at once, instead of starting and serving a copy of the state
// that the first does not see (revocations, quota counts).
//
// SQLite is keygate's single-instance store: several instances share a
// PostgreSQL database instead. Lock is separate from Open so that tools and
// tests may open a database a server holds.
func Lock(path string) (release func() error, err error) {
	lockPath := path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock %s: %w", lockPath, err)
	}
	if err := flock(f); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(lockPath); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf(" (process %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("sqlite: %s: %w%s, holding %s; SQLite serves one keygate instance: stop the other, or run every instance on PostgreSQL (--db postgres://…)",
				path, ErrLocked, holder, lockPath)
		}
		return nil, fmt.Errorf("sqlite: lock %s: %w", lockPath, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0) // informative only
	}
	return f.Close, nil // closing the file releases the lock
}
