//go:build !unix

package main

import "os"

// openSecretFile opens path for writing a secret, creating it with mode
// 0600 and emptying it.
func openSecretFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
}

// othersCanRead reports whether fi's mode lets its group or other users
// read or write the file; file modes say nothing of access here.
func othersCanRead(os.FileInfo) bool { return false }
