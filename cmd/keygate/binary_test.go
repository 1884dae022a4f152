package main

// The end-to-end tests run the real binary, built once by TestMain; the
// helpers here start `keygate serve` and run commands against it.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the keygate binary built once for the end-to-end tests.
var binary string

// testVersion is the keygate.Version the binary is built with.
const testVersion = "v9.8.7-test"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keygate-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "keygate")
	args := []string{"build", "-o", binary, "-ldflags", "-X github.com/keygate/keygate.Version=" + testVersion}
	// Under -cover, the binary is built with coverage too and writes its
	// counters where the test binary writes its own, so that go test
	// counts what the end-to-end tests run in the binary as cmd/keygate's
	// coverage (README, "Coverage").
	flag.Parse()
	if mode := testing.CoverMode(); mode != "" {
		if f := flag.Lookup("test.gocoverdir"); f != nil && f.Value.String() != "" {
			args = append(args, "-cover", "-covermode="+mode, "-coverpkg=github.com/keygate/keygate/cmd/keygate")
			os.Setenv("GOCOVERDIR", f.Value.String())
		}
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building keygate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type server struct {
	cmd            *exec.Cmd
	url            string
	stdout, stderr *lockedBuffer
	// main and now are set for a server run in-process (startInProcess).
	main *Main
	now  func() time.Time
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs `keygate serve` and waits until /healthz answers.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	return startServerEnv(t, nil, args...)
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	if s.main != nil {
		if err := s.main.Close(); err != nil {
			t.Errorf("keygate serve: Close: %v\nstderr:\n%s", err, s.stderr)
		}
		return
	}
	if s.cmd.ProcessState != nil {
		return
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("keygate exited with %v\nstderr:\n%s", err, s.stderr)
	}
}

var rootKeyRE = regexp.MustCompile(`kgr_live_[0-9A-Za-z]+`)

// cleanEnv is the environment without any KEYGATE_ variables of the caller.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYGATE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// cli runs an admin command against s and returns stdout, stderr and the exit code.
func cli(t *testing.T, s *server, rootKey string, args ...string) (string, string, int) {
	t.Helper()
	return cliStdin(t, s, rootKey, "", args...)
}

func cliJSON(t *testing.T, s *server, rootKey string, out any, args ...string) {
	t.Helper()
	stdout, stderr, code := cli(t, s, rootKey, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("keygate %v: exit %d: %s", args, code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("keygate %v: %v in %q", args, err, stdout)
	}
}

func weather(t *testing.T, s *server, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+"/demo/weather", nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct{ Code string }
	body, _ := io.ReadAll(resp.Body)
	json.Unmarshal(body, &p)
	return resp.StatusCode, p.Code
}

// cliStdin is cli with data on standard input.
func cliStdin(t *testing.T, s *server, rootKey, stdin string, args ...string) (string, string, int) {
	t.Helper()
	if s.main != nil {
		return s.runInProcess(rootKey, stdin, args...)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv("KEYGATE_URL="+s.url, "KEYGATE_ROOT_KEY="+rootKey)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}
