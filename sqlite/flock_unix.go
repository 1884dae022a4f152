//go:build unix

package sqlite

import (
	"os"
	"syscall"
)

// flock takes an exclusive lock on f without waiting; EWOULDBLOCK when
// another open file holds it.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
