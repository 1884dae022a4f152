package api_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/keygate/keygate/internal/secretscan"
)

// logScanner holds the slog output of every test server (newServer) and
// every key their answers issued; TestMain searches the logs for keys once
// the tests have run.
var logScanner secretscan.Scanner

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		logs, issued := logScanner.Counts()
		if err := logScanner.Check(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: no plaintext key in logs:", err)
			code = 1
		} else if testing.Verbose() {
			fmt.Printf("no plaintext key in %d server logs (%d issued keys searched for)\n", logs, issued)
		}
	}
	os.Exit(code)
}
