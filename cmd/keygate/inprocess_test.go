package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// startInProcess runs `keygate serve` in this process with clock as its
// Main.Now, and returns once it listens. cli and cliJSON then run their
// commands in-process on the same clock, so that neither the server's
// hourly and daily buckets and quota days nor the CLI's relative times
// (--from 7d) depend on the wall clock.
func startInProcess(t *testing.T, clock func() time.Time, args ...string) *server {
	t.Helper()
	s := &server{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, now: clock}
	s.main = &Main{Stdin: strings.NewReader(""), Stdout: s.stdout, Stderr: s.stderr, Now: clock,
		LookupEnv: func(string) (string, bool) { return "", false }}
	if err := s.main.Run(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)); err != nil {
		t.Fatalf("keygate serve: %v\nstderr:\n%s", err, s.stderr)
	}
	t.Cleanup(func() { s.stop(t) })
	s.url = checkedURL(t, "http://"+s.main.server.addr, nil)
	return s
}

// runInProcess runs one command line in-process against s, on s's clock.
func (s *server) runInProcess(rootKey, stdin string, args ...string) (string, string, int) {
	var stdout, stderr strings.Builder
	env := map[string]string{"KEYGATE_URL": s.url, "KEYGATE_ROOT_KEY": rootKey}
	m := &Main{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr, Now: s.now,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	code := m.exitCode(m.Run(context.Background(), args)) // prints the error on stderr
	return stdout.String(), stderr.String(), code
}
