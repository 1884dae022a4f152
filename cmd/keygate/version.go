package main

import (
	"fmt"
	"runtime"

	"github.com/keygate/keygate"
)

// runVersion runs `keygate version`.
func (m *Main) runVersion() error {
	_, err := fmt.Fprintf(m.Stdout, "keygate %s (%s %s/%s)\n", keygate.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
