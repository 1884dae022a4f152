package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestRootKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "root.key")
	s := startServer(t, "--db", filepath.Join(dir, "keygate.db"), "--root-key-file", path)
	if rootKeyRE.MatchString(s.stdout.String()) {
		t.Fatalf("with --root-key-file the key was printed too:\n%s", s.stdout)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("root key file mode: got %o, want 600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	root := strings.TrimSpace(string(data))
	if _, stderr, code := cli(t, s, root, "tiers", "list"); code != 0 {
		t.Fatalf("the written root key does not work: %s", stderr)
	}
	if strings.Contains(s.stderr.String(), root) {
		t.Fatal("the root key was logged")
	}
}

func TestServeRejectsBadFlags(t *testing.T) {
	tests := [][]string{
		{"serve", "--key-prefix", "BAD"},
		{"serve", "--trusted-proxies", "10.0.0.0/99"},
		{"serve", "--log-level", "loud"},
		{"serve", "--db", "mysql://x"},
		{"serve", "--db", "mysql://user:pw@host/db"},
	}
	for _, args := range tests {
		cmd := exec.Command(binary, args...)
		cmd.Env = cleanEnv()
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.HasPrefix(string(out), "keygate: ") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("keygate %v: got %v, %q; want exit 2 with a one-line reason", args, err, out)
		}
	}
}

func getJSON(t *testing.T, url, rootKey string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+rootKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

// TestShutdownFlushesUsage sends M requests, stops the server with SIGTERM
// right away, restarts it and finds exactly M usage events.
func TestShutdownFlushesUsage(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keygate.db")
	// A long flush interval: only the shutdown flush can have written them.
	s := startServer(t, "--db", db, "--usage-flush-interval", "1h")
	root := rootKeyRE.FindString(s.stdout.String())
	var acct struct{ ID string }
	cliJSON(t, s, root, &acct, "accounts", "create", "--name", "Load", "--email", "load@example.com", "--tier", "pro")
	var key struct {
		ID  string
		Key string `json:"key"`
	}
	cliJSON(t, s, root, &key, "keys", "create", "--account", acct.ID)

	const m = 600
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for w := range 6 {
		wg.Go(func() {
			for i := range m / 6 {
				k := key.Key
				if i%10 == 0 {
					k = "kg_live_nope" // malformed: still a verification, still an event
				}
				code, _ := weather(t, s, k)
				mu.Lock()
				statuses[code]++
				mu.Unlock()
				_ = w
			}
		})
	}
	wg.Wait()
	s.stop(t)
	if !strings.Contains(s.stderr.String(), fmt.Sprintf("usage_events_written=%d", m)) {
		t.Errorf("the shutdown log does not report %d events written:\n%s", m, s.stderr)
	}

	s2 := startServer(t, "--db", db)
	var usage struct {
		Data []struct {
			Total  int64
			Counts map[string]int64
		}
	}
	getJSON(t, s2.url+"/v1/usage?granularity=hour", root, &usage)
	var total, valid, malformed int64
	for _, b := range usage.Data {
		total += b.Total
		valid += b.Counts["valid"]
		malformed += b.Counts["malformed"]
	}
	if total != m || valid != int64(statuses[200]) || malformed != int64(statuses[401]) {
		t.Fatalf("after SIGTERM and restart: %d events (%d valid, %d malformed), want %d (%v)", total, valid, malformed, m, statuses)
	}
	var k struct {
		LastUsedAt string `json:"last_used_at"`
	}
	getJSON(t, s2.url+"/v1/keys/"+key.ID, root, &k)
	if k.LastUsedAt == "" {
		t.Fatal("last_used_at not set after usage")
	}

	// The metrics endpoint reports the verifications and the usage buffer.
	resp, err := http.Get(s2.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"keygate_verifications_total", "keygate_verification_duration_seconds_bucket", "keygate_usage_buffer_depth", "keygate_usage_dropped_total", "keygate_store_errors_total"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
