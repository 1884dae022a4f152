package main

import (
	"fmt"
	"os"
	"regexp"
	"sync/atomic"
	"testing"

	"github.com/keygate/keygate/internal/secretscan"
)

// logScanner holds the output of every server the end-to-end tests run
// (each lockedBuffer written to) and every key the admin commands issued.
var logScanner secretscan.Scanner

// issuance are the prints that hand a key over once, on stdout: the
// first start's root key and the demo's keys.
var issuance = []*regexp.Regexp{
	regexp.MustCompile(`First start: created root key \S+ It is shown only this once; keep it safe:\n\n    (\S+)\n\nUse it as:  export KEYGATE_ROOT_KEY=\S+\n`),
	regexp.MustCompile(`(?s)keygate demo: the weather API .*?Stop with Ctrl-C\.\n`),
}

var logCount atomic.Int64

func trackLog(l *lockedBuffer) {
	n := logCount.Add(1)
	logScanner.Log(fmt.Sprintf("server output #%d", n), func() string { return l.String() }, issuance...)
}

// checkNoPlaintextKeys searches every server's logs and output for any
// key, and for each key the suite was issued, outside the one print that
// issued it. It returns the exit code.
func checkNoPlaintextKeys() int {
	logs, issued := logScanner.Counts()
	if err := logScanner.Check(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: no plaintext key in logs:", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Printf("no plaintext key in %d server outputs (%d issued keys searched for)\n", logs, issued)
	}
	return 0
}
