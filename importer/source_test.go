package importer

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

const testHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// drain reads a source to the end and returns the good rows' lines and
// the bad rows as "line N: detail".
func drain(t *testing.T, src Source) (good []int, bad []string) {
	t.Helper()
	for {
		_, line, err := src.Next()
		var re *RowError
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

func TestCSV(t *testing.T) {
	in := "\ufeffHash , Account_ID,scopes\r\n" + // a spreadsheet's BOM, case, spaces and CRLF
		testHash + ",acc_1,a:read;b:write c:*\r\n" + // 2
		testHash + ",acc_1,x\"y\r\n" + // 3: bare quote
		"\r\n" + // 4: blank, skipped
		testHash + ",acc_1,\"one\r\ntwo\"\r\n" + // 5-6: a quoted newline, which no scope holds
		strings.ToUpper(testHash) + ",acc_2,\r\n" // 7
	var warnings []string
	src, err := NewCSV(strings.NewReader(in), "f.csv", func(s string) { warnings = append(warnings, s) })
	if err != nil {
		t.Fatal(err)
	}
	good, bad := drain(t, src)
	if !slices.Equal(good, []int{2, 7}) || len(bad) != 2 || !strings.HasPrefix(bad[0], "line 3: not valid CSV") ||
		!strings.HasPrefix(bad[1], `line 5: scope "one\ntwo" is invalid`) {
		t.Fatalf("good %v, bad %v", good, bad)
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	if src.Offset() != int64(len(in)) {
		t.Fatalf("offset %d, want %d", src.Offset(), len(in))
	}

	src, _ = NewCSV(strings.NewReader("hash,account_id,scopes\n"+strings.ToUpper(testHash)+",acc_1,a:read;b:write c:*\n"), "f.csv", nil)
	row, _, err := src.Next()
	if err != nil || row.Hash != testHash || row.AccountID != "acc_1" || !slices.Equal(row.Scopes, []string{"a:read", "b:write", "c:*"}) {
		t.Fatalf("row %+v, %v", row, err)
	}
}

func TestCSVHeader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "f.csv is empty"},
		{testHash + ",acc_1\n", "has no header row"},
		{"hash,name\n", "no account_id column"},
		{"account_id,name\n", "no hash column"},
		{"hash,account_id,Hash\n", `names the column "hash" twice`},
	}
	for _, tt := range tests {
		if _, err := NewCSV(strings.NewReader(tt.in), "f.csv", nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("header %q: got %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
	var warnings []string
	if _, err := NewCSV(strings.NewReader("hash,account_id,created_at\n"), "f.csv", func(s string) { warnings = append(warnings, s) }); err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `ignoring unknown column(s) "created_at"`) {
		t.Errorf("warnings: got %q, want one about created_at", warnings)
	}
	src, _ := NewCSV(strings.NewReader("hash,account_id\n"+testHash+",acc_1,extra\n"), "f.csv", nil)
	if _, _, err := src.Next(); err == nil || err.Error() != "line 2: has 3 fields; the header row has 2" {
		t.Errorf("a row with a field too many: got %v", err)
	}
}

func TestJSONL(t *testing.T) {
	long := `{"hash":"` + testHash + `","account_id":"acc_1","meta":{"x":"` + strings.Repeat("a", MaxLine) + `"}}`
	in := `{"hash":"` + testHash + `","account_id":"acc_1","scopes":"a:read b:read","expires_at":"2030-01-01T00:00:00Z"}` + "\n" + // 1
		long + "\n" + // 2: too long
		"   \n" + // 3: blank
		`{"hash":"` + testHash + `","account_id":"acc_1","expires_at":"soon"}` + "\n" + // 4
		`{"hash":"` + testHash + `","account_id":"acc_1","meta":[1]}` + "\n" + // 5
		`{"hash":"` + testHash + `","account_id":"acc_1","env":"prod"}` + "\n" + // 6
		`{"hash":"` + testHash + `","account_id":"acc_1","start":"doda_0123456789abcdef"}` + "\n" + // 7
		`{"hash":"` + testHash + `","account_id":"acc_1","colour":"red"}` + "\n" + // 8: unknown field
		`{"hash":"` + testHash + `"}` + "\n" + // 9
		`[1]` + "\n" + // 10
		`{"hash":"` + testHash + `","account_id":"acc_1","scopes":[1]}` + "\n" + // 11
		`{"hash":` + "\n" + // 12
		`{"hash":"` + testHash + `","account_id":"acc_1","ip_allow":["10.0.0.0/99"]}` + "\n" + // 13
		`{"hash":"` + testHash + `","account_id":"acc_1","name":7}` // 14: no final newline
	var warnings []string
	src := NewJSONL(strings.NewReader(in), func(s string) { warnings = append(warnings, s) })
	good, bad := drain(t, src)
	want := []string{
		"line 2: longer than 1048576 bytes",
		`line 4: expires_at "soon" is not an RFC 3339 time such as 2027-01-31T00:00:00Z`,
		"line 5: meta is not a JSON object",
		`line 6: env "prod" is invalid: use "live" or "test"`,
		"line 7: start is a display hint of at most 16 characters, never the whole key",
		"line 9: has no account_id field",
		"line 10: not a JSON object; JSON Lines has one object per line, such as {\"hash\":\"…\",\"account_id\":\"acc_…\"}",
		"line 11: scopes must be an array of strings (or one space-separated string)",
		"line 12: not valid JSON",
		"line 13: ",
		"line 14: name must be a string",
	}
	if !slices.Equal(good, []int{1, 8}) || len(bad) != len(want) {
		t.Fatalf("good %v\nbad %q", good, bad)
	}
	for i := range want {
		if !strings.HasPrefix(bad[i], want[i]) {
			t.Errorf("bad row %d: got %q, want it to start %q", i, bad[i], want[i])
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `"colour" (first on line 8)`) {
		t.Fatalf("warnings: %q", warnings)
	}
	if src.Offset() != int64(len(in)) {
		t.Fatalf("offset %d, want %d", src.Offset(), len(in))
	}
}

func TestRowNeverEchoesTheHash(t *testing.T) {
	for _, h := range []string{"doda_secretsecretsecretsecret", strings.Repeat("z", 64), "kg_live_" + strings.Repeat("A", 56), ""} {
		_, bad := (&rawRow{hash: h, accountID: "acc_1"}).row()
		if bad == "" || (h != "" && (strings.Contains(bad, h) || strings.Contains(bad, strings.ToLower(h)))) {
			t.Errorf("hash %q: %q", h, bad)
		}
	}
}
