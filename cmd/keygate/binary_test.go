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
	"strconv"
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
	// Under -cover the binary is built with coverage too and writes its
	// counters beside the test's own; once the tests have run they are
	// added to the test's profile (README, "Run the tests").
	flag.Parse()
	binCover := ""
	if mode := testing.CoverMode(); mode != "" {
		if f := flag.Lookup("test.gocoverdir"); f != nil && f.Value.String() != "" {
			binCover = f.Value.String()
		} else {
			binCover = filepath.Join(dir, "cover")
			if err := os.Mkdir(binCover, 0o700); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		args = append(args, "-cover", "-covermode="+mode, "-coverpkg=github.com/keygate/keygate/cmd/keygate")
		os.Setenv("GOCOVERDIR", binCover)
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building keygate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		code = checkNoPlaintextKeys()
	}
	if binCover != "" && code == 0 {
		if err := addBinaryCoverage(binCover); err != nil {
			fmt.Fprintf(os.Stderr, "adding the binary's coverage: %v\n", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// addBinaryCoverage appends the counters in dir — the end-to-end
// binary's, and the test's own — to the test's coverage profile
// (-test.coverprofile, which go test merges into the -coverprofile asked
// for; cover tools add up blocks that appear twice), and prints the
// package's coverage with them.
//
// go test itself takes an instrumented subprocess's counters into its
// "coverage:" line only when that build matches the test's exactly: it
// does for `go test -cover ./cmd/keygate`, not when several packages are
// tested at once. The profile holds them either way.
func addBinaryCoverage(dir string) error {
	f := flag.Lookup("test.coverprofile")
	if f == nil || f.Value.String() == "" {
		return nil
	}
	profile := f.Value.String()
	if !filepath.IsAbs(profile) {
		if d := flag.Lookup("test.outputdir"); d != nil && d.Value.String() != "" {
			profile = filepath.Join(d.Value.String(), profile)
		}
	}
	text := filepath.Join(filepath.Dir(binary), "binary.cov")
	if out, err := exec.Command("go", "tool", "covdata", "textfmt", "-i="+dir, "-o="+text).CombinedOutput(); err != nil {
		return fmt.Errorf("go tool covdata: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(text)
	if err != nil {
		return err
	}
	_, blocks, _ := strings.Cut(string(bin), "\n") // after the mode line
	out, err := os.OpenFile(profile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := out.WriteString(blocks); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	all, err := os.ReadFile(profile)
	if err != nil {
		return err
	}
	fmt.Printf("coverage: %.1f%% of statements, the end-to-end binary's included\n", profilePercent(string(all)))
	return nil
}

// profilePercent is the share of statements a text coverage profile
// covers, counting a block that appears more than once as covered when
// any of its lines says so.
func profilePercent(profile string) float64 {
	type block struct{ stmts, count int }
	blocks := map[string]block{}
	for _, line := range strings.Split(profile, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || strings.HasPrefix(line, "mode:") {
			continue
		}
		stmts, _ := strconv.Atoi(f[1])
		count, _ := strconv.Atoi(f[2])
		b := blocks[f[0]]
		b.stmts, b.count = stmts, b.count+count
		blocks[f[0]] = b
	}
	var total, covered int
	for _, b := range blocks {
		total += b.stmts
		if b.count > 0 {
			covered += b.stmts
		}
	}
	if total == 0 {
		return 0
	}
	return 100 * float64(covered) / float64(total)
}

// lockedBuffer collects a process's output while it runs.
// Every one that is written to is searched for plaintext keys once the
// tests have run (checkNoPlaintextKeys).
type lockedBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	tracked bool
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.tracked {
		l.tracked = true
		trackLog(l)
	}
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
		stdout, stderr, code := s.runInProcess(rootKey, stdin, args...)
		logScanner.Issued(stdout)
		return stdout, stderr, code
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
	logScanner.Issued(out.String())
	return out.String(), errOut.String(), code
}
