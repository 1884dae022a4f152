//go:build !unix

package sqlite

// freeSpace is not known here: the usage reserve is not checked.
func freeSpace(string) (uint64, bool) { return 0, false }
