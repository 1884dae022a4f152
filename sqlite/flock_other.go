//go:build !unix

package sqlite

import "os"

// flock does nothing where flock(2) does not exist: a second server on the
// same file is not detected there.
func flock(*os.File) error { return nil }
