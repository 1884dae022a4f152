package main

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

const testHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// drain reads a source to the end and returns the good rows' lines and
// the bad rows as "line: detail".
func drain(t *testing.T, src rowSource) (good []int, bad []string) {
	t.Helper()
	for {
		_, line, err := src.next()
		var re *rowError
		switch {
		case err == io.EOF:
			return good, bad
		case errors.As(err, &re):
			bad = append(bad, re.Error())
		case err != nil:
			t.Fatal(err)
		default:
			good = append(good, line)
		}
	}
}

func TestCSVSource(t *testing.T) {
	in := "\ufeffHash , Account_ID,scopes\r\n" + // a spreadsheet's BOM, case, spaces and CRLF
		testHash + ",acc_1,a:read;b:write c:*\r\n" + // 2
		testHash + ",acc_1,x\"y\r\n" + // 3: bare quote
		"\r\n" + // 4: blank, skipped
		testHash + ",acc_1,\"one\r\ntwo\"\r\n" + // 5-6
		strings.ToUpper(testHash) + ",acc_2,\r\n" // 7
	var warnings []string
	src, err := newCSVSource(strings.NewReader(in), "f.csv", func(s string) { warnings = append(warnings, s) })
	if err != nil {
		t.Fatal(err)
	}
	good, bad := drain(t, src)
	if !slices.Equal(good, []int{2, 5, 7}) || len(bad) != 1 || !strings.HasPrefix(bad[0], "line 3: not valid CSV") {
		t.Fatalf("good %v, bad %v", good, bad)
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	if src.offset() != int64(len(in)) {
		t.Fatalf("offset %d, want %d", src.offset(), len(in))
	}

	src, _ = newCSVSource(strings.NewReader("hash,account_id,scopes\n"+testHash+",acc_1,a:read;b:write c:*\n"), "f.csv", nil)
	row, _, err := src.next()
	if err != nil || row.Hash != testHash || row.AccountID != "acc_1" || !slices.Equal(row.Scopes, []string{"a:read", "b:write", "c:*"}) {
		t.Fatalf("row %+v, %v", row, err)
	}
}

func TestJSONLSource(t *testing.T) {
	long := `{"hash":"` + testHash + `","account_id":"acc_1","meta":{"x":"` + strings.Repeat("a", maxImportLine) + `"}}`
	in := `{"hash":"` + testHash + `","account_id":"acc_1","scopes":"a:read b:read","expires_at":"2030-01-01T00:00:00Z"}` + "\n" + // 1
		long + "\n" + // 2: too long
		"   \n" + // 3: blank
		`{"hash":"` + testHash + `","account_id":"acc_1","expires_at":"soon"}` + "\n" + // 4
		`{"hash":"` + testHash + `","account_id":"acc_1","meta":[1]}` + "\n" + // 5
		`{"hash":"` + testHash + `","account_id":"acc_1","env":"prod"}` + "\n" + // 6
		`{"hash":"` + testHash + `","account_id":"acc_1","start":"doda_0123456789abcdef"}` + "\n" + // 7
		`{"hash":"` + testHash + `","account_id":"acc_1","colour":"red"}` // 8: no final newline, unknown field
	var warnings []string
	src := newJSONLSource(strings.NewReader(in), func(s string) { warnings = append(warnings, s) })
	good, bad := drain(t, src)
	want := []string{
		"line 2: longer than 1048576 bytes",
		`line 4: expires_at "soon" is not an RFC 3339 time such as 2027-01-31T00:00:00Z`,
		"line 5: meta is not a JSON object",
		`line 6: env "prod" is invalid: use live or test`,
		"line 7: start is a display hint of at most 16 characters, never the whole key",
	}
	if !slices.Equal(good, []int{1, 8}) || !slices.Equal(bad, want) {
		t.Fatalf("good %v\nbad %q", good, bad)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `"colour" (first on line 8)`) {
		t.Fatalf("warnings: %q", warnings)
	}
	if src.offset() != int64(len(in)) {
		t.Fatalf("offset %d, want %d", src.offset(), len(in))
	}
}

func TestRawRowNeverEchoesTheHash(t *testing.T) {
	for _, h := range []string{"doda_secretsecretsecretsecret", strings.Repeat("z", 64), "kg_live_" + strings.Repeat("A", 56)} {
		_, bad := (&rawRow{hash: h, accountID: "acc_1"}).check()
		if bad == "" || strings.Contains(bad, h) || strings.Contains(bad, strings.ToLower(h)) {
			t.Errorf("hash %q: %q", h, bad)
		}
	}
}

func TestCompactDetails(t *testing.T) {
	if got := compactDetails([]byte("{\n  \"a\": 1,\n  \"b\": \"x\\ty\"\n}"), 80); got != `{"a":1,"b":"x\ty"}` {
		t.Fatalf("got %q", got)
	}
	got := compactDetails([]byte(`{"long":"`+strings.Repeat("é", 100)+`"}`), 20)
	if len([]rune(got)) != 20 || !strings.HasSuffix(got, "…") {
		t.Fatalf("got %q", got)
	}
	if compactDetails(nil, 10) != "" || compactDetails([]byte("null"), 10) != "" {
		t.Fatal("empty details")
	}
}
