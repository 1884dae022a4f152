package importer

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// readAll reads src to the end, failing the test on anything but rows,
// row errors with a line number, and io.EOF.
func readAll(t *testing.T, src Source) {
	t.Helper()
	last := 0
	for range 100_000 {
		row, line, err := src.Next()
		var re *RowError
		switch {
		case err == io.EOF:
			return
		case errors.As(err, &re):
			if re.Line < 1 {
				t.Fatalf("row error without a line: %v", re)
			}
		case err != nil:
			t.Fatalf("Next: %v (not a RowError)", err)
		default:
			if line < last || row.Hash == "" || row.AccountID == "" {
				t.Fatalf("row at line %d (after line %d) without hash or account: %+v", line, last, row)
			}
			last = line
		}
	}
	t.Fatal("Next never reached the end")
}

// FuzzCSV feeds the CSV import parser arbitrary files: no panic, no
// endless loop, every bad row reported with its line.
func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"hash,account_id\n" + testHash + ",acc_1\n",
		"\ufeffHash , Account_ID,scopes,ip_allow,meta,expires_at\r\n" + testHash + ",acc_1,a:read;b:*,10.0.0.0/8,\"{\"\"a\"\":1}\",2030-01-01T00:00:00Z\r\n",
		"hash,account_id,tier\n" + testHash + ",acc_1\n\"unterminated\n",
		testHash + ",acc_1\n",
		"hash,hash\n",
		"",
		"hash,account_id,meta\n" + testHash + ",acc_1,[1]\n" + strings.ToUpper(testHash) + ",acc_2,\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		src, err := NewCSV(strings.NewReader(in), "keys.csv", func(string) {})
		if err != nil {
			return // a bad header is reported before any row
		}
		readAll(t, src)
	})
}

// FuzzJSONL feeds the JSON Lines import parser arbitrary files.
func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		`{"hash":"` + testHash + `","account_id":"acc_1"}` + "\n",
		"\ufeff" + `{"hash":"` + testHash + `","account_id":"acc_1","scopes":["a:*"],"ip_allow":["::1"],"meta":{"a":1},"extra":1}` + "\r\n\n[]\n",
		`{"hash":1}` + "\n" + `{"hash":"` + testHash + `"`,
		"null\n{}\n",
		strings.Repeat("x", 5000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		readAll(t, NewJSONL(strings.NewReader(in), func(string) {}))
	})
}
