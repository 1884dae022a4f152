package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// legacyKey makes a key the classic way: "doda_" + token_urlsafe(32), and
// the SHA-256 hex it is stored by.
func legacyKey(t *testing.T) (raw, hash string) {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	raw = "doda_" + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(raw))
	return raw, hex.EncodeToString(sum[:])
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestImportCLI(t *testing.T) {
	s, root, acct := setup(t)

	// CSV, columns in any order, with a column keygate does not know.
	var csvRaw []string
	var b strings.Builder
	b.WriteString("name,account_id,hash,tier,scopes,created_at\n")
	for i := range 5 {
		raw, hash := legacyKey(t)
		csvRaw = append(csvRaw, raw)
		fmt.Fprintf(&b, "legacy %d,%s,%s,pro,weather:read;billing:read,2019-01-01\n", i, acct, hash)
	}
	csvPath := writeFile(t, "legacy.csv", b.String())
	out, stderr, code := cli(t, s, root, "import", csvPath)
	if code != 0 || !strings.HasPrefix(out, "5 imported, 0 already present, 0 invalid") {
		t.Fatalf("import CSV: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	if !strings.Contains(stderr, `ignoring unknown column(s) "created_at"`) {
		t.Errorf("no warning about the unknown column: %q", stderr)
	}

	// JSONL, with a blank line and scopes as an array.
	var jsonlRaw []string
	b.Reset()
	for i := range 3 {
		raw, hash := legacyKey(t)
		jsonlRaw = append(jsonlRaw, raw)
		row, _ := json.Marshal(map[string]any{"hash": hash, "account_id": acct, "tier": "free", "name": fmt.Sprintf("j%d", i), "scopes": []string{"weather:read"}})
		b.Write(row)
		b.WriteString("\n\n")
	}
	jsonlPath := writeFile(t, "legacy.jsonl", b.String())
	var sum struct{ Rows, Inserted, Skipped, Invalid, Batches int }
	cliJSON(t, s, root, &sum, "import", jsonlPath)
	if sum.Rows != 3 || sum.Inserted != 3 || sum.Invalid != 0 {
		t.Fatalf("import JSONL --json: %+v", sum)
	}

	// The imported keys work, unchanged.
	for i, raw := range append(csvRaw, jsonlRaw...) {
		wantWeather(t, s, raw, 200, "")
		v := verifyKey(t, s, root, raw)
		wantTier := "pro"
		if i >= len(csvRaw) {
			wantTier = "free"
		}
		if !v.Valid || v.Code != "VALID" || !strings.HasPrefix(v.KeyID, "key_") || v.Tier != wantTier || !slices.Contains(v.Scopes, "weather:read") {
			t.Fatalf("verify imported key %d: %+v", i, v)
		}
	}

	// Re-running imports nothing new; standard input works with --format.
	out, _, code = cli(t, s, root, "import", csvPath)
	if code != 0 || !strings.HasPrefix(out, "0 imported, 5 already present, 0 invalid") {
		t.Fatalf("re-import CSV: exit %d: %s", code, out)
	}
	data, _ := os.ReadFile(jsonlPath)
	out, _, code = cliStdin(t, s, root, string(data), "import", "-", "--format", "jsonl")
	if code != 0 || !strings.HasPrefix(out, "0 imported, 3 already present, 0 invalid") {
		t.Fatalf("re-import JSONL from stdin: exit %d: %s", code, out)
	}
	wantFail(t, s, root, 2, "needs --format", "import", "-")

	// Bad rows are reported by their line in the file, whether keygate
	// finds them (bad hash, missing field) or the server does (unknown
	// account or tier), across batches.
	good := make([]string, 4)
	hashes := make([]string, 4)
	for i := range good {
		good[i], hashes[i] = legacyKey(t)
	}
	plainInHash, _ := legacyKey(t)
	_, h5 := legacyKey(t)
	_, h6 := legacyKey(t)
	_, h8 := legacyKey(t)
	bad := strings.Join([]string{
		"hash,account_id,tier,name",                 // 1
		hashes[0] + "," + acct + ",,first",          // 2 ok
		plainInHash + "," + acct + ",,leaked",       // 3 a plaintext key where the hash goes
		hashes[1] + "," + acct + ",,\"two\nlines\"", // 4-5 a quoted newline: a name may not hold one
		h5 + ",acc_nope,,orphan",                    // 6 unknown account (server)
		h6 + "," + acct + ",gold,golden",            // 7 unknown tier (server)
		h8 + "," + acct,                             // 8 too few fields
		"abc," + acct + ",,short",                   // 9 bad hash
		hashes[2] + "," + acct + ",,later",          // 10 ok
		hashes[0] + "," + acct + ",,again",          // 11 repeats line 2: already present
	}, "\n") + "\n"
	badPath := writeFile(t, "bad.csv", bad)
	out, stderr, code = cli(t, s, root, "import", badPath, "--batch", "2")
	if code != 0 || !strings.HasPrefix(out, "2 imported, 1 already present, 6 invalid") {
		t.Fatalf("import with bad rows (skip): exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if _, rest, ok := strings.Cut(l, "bad.csv: line "); ok {
			n, _, _ := strings.Cut(rest, ":")
			lines = append(lines, n)
		}
	}
	if want := []string{"3", "4", "6", "7", "8", "9"}; !slices.Equal(lines, want) {
		t.Fatalf("bad lines reported: got %v, want %v; stderr:\n%s", lines, want, stderr)
	}
	for _, want := range []string{"line 4: name holds the control character U+000A", "line 6: account \"acc_nope\" does not exist", "line 7: tier \"gold\" does not exist", "line 8: has 2 fields", "line 9: hash is not 64 hex"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, plainInHash) {
		t.Fatalf("a plaintext key in the hash column was echoed:\n%s", stderr)
	}
	for _, raw := range []string{good[0], good[2]} {
		wantWeather(t, s, raw, 200, "")
	}

	// Stop mode: the first bad row ends the import; the batches before it
	// stay imported, the one holding it does not.
	_, s1 := legacyKey(t)
	_, s2 := legacyKey(t)
	k3, s3 := legacyKey(t)
	k4, s4 := legacyKey(t)
	stop := strings.Join([]string{
		"hash,account_id",
		s1 + "," + acct,        // 2 ┐ batch 1: imported
		s2 + "," + acct,        // 3 ┘
		s3 + "," + acct,        // 4 ┐ batch 2: refused whole
		s4 + ",acc_nope",       // 5 ┘ unknown account
		hashes[3] + "," + acct, // 6 never sent
	}, "\n")
	stopPath := writeFile(t, "stop.csv", stop)
	out, stderr, code = cli(t, s, root, "import", stopPath, "--batch", "2", "--on-error", "stop")
	if code != 1 || !strings.HasPrefix(out, "2 imported, 0 already present, 1 invalid") ||
		!strings.Contains(stderr, "stop.csv: line 5: account \"acc_nope\" does not exist") ||
		!strings.Contains(stderr, "import stopped at line 5") || !strings.Contains(stderr, "rows before line 4 stay imported") {
		t.Fatalf("import --on-error stop: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	wantWeather(t, s, k3, 401, "NOT_FOUND")
	wantWeather(t, s, k4, 401, "NOT_FOUND")
	wantWeather(t, s, good[3], 401, "NOT_FOUND")

	// Stop mode, a row keygate rejects itself: nothing of its batch is sent.
	stop2 := "hash,account_id\n" + hashes[3] + "," + acct + "\nnot-a-hash," + acct + "\n"
	out, stderr, code = cli(t, s, root, "import", writeFile(t, "stop2.csv", stop2), "--on-error", "stop")
	if code != 1 || !strings.Contains(stderr, "stop2.csv: line 3: hash") || !strings.Contains(stderr, "nothing was imported") {
		t.Fatalf("import --on-error stop, local error: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	wantWeather(t, s, good[3], 401, "NOT_FOUND")

	// The file's structure is checked before anything is sent.
	wantFail(t, s, root, 2, "no account_id column", "import", writeFile(t, "nocol.csv", "hash,name\n"+hashes[3]+",x\n"))
	wantFail(t, s, root, 2, "no header row", "import", writeFile(t, "nohead.csv", hashes[3]+","+acct+"\n"))
	wantFail(t, s, root, 2, "--format csv or --format jsonl", "import", writeFile(t, "keys.txt", "x"))
	wantFail(t, s, root, 2, "--batch", "import", csvPath, "--batch", "20000")
	wantFail(t, s, root, 2, "--on-error", "import", csvPath, "--on-error", "ignore")
	wantFail(t, s, root, 2, "no such file", "import", filepath.Join(t.TempDir(), "missing.csv"))

	// JSONL errors carry line numbers too.
	jbad := `{"hash":"` + hashes[3] + `","account_id":"` + acct + `"}` + "\n" +
		"\n" +
		`{"hash":"` + hashes[3] + `"}` + "\n" +
		"[1,2]\n" +
		`{"hash":"` + hashes[3] + `","account_id":"` + acct + `","scopes":5}` + "\n" +
		`{"hash": 12` + "\n"
	out, stderr, code = cli(t, s, root, "import", writeFile(t, "bad.jsonl", jbad))
	if code != 0 || !strings.HasPrefix(out, "1 imported, 0 already present, 4 invalid") {
		t.Fatalf("import bad JSONL: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	for _, want := range []string{"line 3: has no account_id", "line 4: not a JSON object", "line 5: scopes must be", "line 6: not valid JSON"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	wantWeather(t, s, good[3], 200, "")

	// The audit log has the imports, and no key.
	var audit struct{ Data []struct{ Action string } }
	cliJSON(t, s, root, &audit, "audit", "--action", "keys.imported")
	if len(audit.Data) == 0 {
		t.Fatal("no keys.imported audit event")
	}
	all, _, _ := cli(t, s, root, "audit", "--json", "--limit", "1000")
	for _, raw := range append(append(csvRaw, jsonlRaw...), good...) {
		if strings.Contains(all, raw) {
			t.Fatal("the audit log holds an imported plaintext key")
		}
	}
}
