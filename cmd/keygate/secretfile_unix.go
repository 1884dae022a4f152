//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// openSecretFile opens path for writing a secret, creating it with mode
// 0600. It refuses to follow a symbolic link (O_NOFOLLOW: a link planted
// where the file should be would send the secret elsewhere), to write
// anything but a regular file, and to write a file that another user owns.
// The file is emptied only once these checks pass.
func openSecretFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s is a symbolic link; give the path of the file itself", path)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		f.Close()
		return nil, fmt.Errorf("%s belongs to another user (uid %d); keygate writes secrets only to its own files", path, st.Uid)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	// OpenFile keeps an existing file's mode; make sure it is 0600.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// othersCanRead reports whether fi's mode lets its group or other users
// read or write the file.
func othersCanRead(fi os.FileInfo) bool { return fi.Mode().Perm()&0o077 != 0 }
