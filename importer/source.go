// Package importer reads files of keys issued elsewhere — CSV with a
// header row, or JSON Lines — and sends them to a keygate server in
// batches, mapping what the server reports by row index back to the
// file's lines. `keygate import` is built on it.
//
// A row is checked before it is sent with keygate.Key.ValidateImport, the
// check the server applies too, so that bad rows are reported by line
// without a round trip; the server adds what only it can know (accounts
// and tiers that do not exist, hashes already stored).
package importer

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
)

// MaxLine caps one JSON Lines line.
const MaxLine = 1 << 20

// Columns are the fields of an import row, required ones first.
var Columns = []string{"hash", "account_id", "tier", "name", "env", "scopes", "ip_allow", "start", "expires_at", "meta"}

// RowError is one bad row of the file, by the line it starts on. The
// import goes on after it unless Options.Stop is set.
type RowError struct {
	Line   int
	Detail string
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Detail) }

// Source yields the rows of an import file one at a time.
type Source interface {
	// Next returns the next row and the line it starts on. A *RowError
	// is one bad row; io.EOF ends the file; any other error ends the
	// import.
	Next() (api.ImportRow, int, error)
	// Offset is how many bytes of the file have been parsed.
	Offset() int64
}

// rawRow is a row as the file spells it.
type rawRow struct {
	hash, accountID, tier, name, env, start, expiresAt string
	scopes, ipAllow                                    []string
	meta                                               json.RawMessage
}

// row parses the cells that need parsing (expires_at, meta), checks the
// row as the server will (keygate.Key.ValidateImport), and returns the
// row to send or the reason it is bad. The reason never quotes the hash.
func (r *rawRow) row() (api.ImportRow, string) {
	row := api.ImportRow{
		Hash: strings.TrimSpace(r.hash), AccountID: strings.TrimSpace(r.accountID), Tier: strings.TrimSpace(r.tier),
		Name: strings.TrimSpace(r.name), Env: keygate.Env(strings.TrimSpace(r.env)), Start: strings.TrimSpace(r.start),
		Scopes: r.scopes, IPAllow: r.ipAllow,
	}
	if e := strings.TrimSpace(r.expiresAt); e != "" {
		t, err := time.Parse(time.RFC3339, e)
		if err != nil {
			return api.ImportRow{}, fmt.Sprintf("expires_at %q is not an RFC 3339 time such as 2027-01-31T00:00:00Z", e)
		}
		row.ExpiresAt = &t
	}
	if m := bytes.TrimSpace(r.meta); len(m) > 0 && string(m) != "null" {
		if !json.Valid(m) || m[0] != '{' {
			return api.ImportRow{}, "meta is not a JSON object"
		}
		row.Meta = json.RawMessage(m)
	}
	k := row.Key()
	if err := k.ValidateImport(); err != nil {
		return api.ImportRow{}, strings.TrimSuffix(keygate.ErrorMessage(err), ".")
	}
	row.Hash = k.Hash // lower case
	return row, ""
}

// splitList splits a scopes or ip_allow cell: space-, semicolon- or
// comma-separated.
func splitList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ';' || r == ',' || r == '\t' })
	if len(f) == 0 {
		return nil
	}
	return f
}

// CSV reads a CSV file whose header row names the columns, in any order.
type CSV struct {
	r   *csv.Reader
	col map[string]int
	n   int // columns in the header
}

// NewCSV reads the header row of r, a file called name in messages. warn
// is told about columns it does not know, which are ignored.
func NewCSV(r io.Reader, name string, warn func(string)) (*CSV, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked per row, with a better message
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s is empty; the first line must name the columns, such as hash,account_id,tier,name", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: the header row: %v", name, err)
	}
	s := &CSV{r: cr, col: map[string]int{}, n: len(header)}
	var unknown []string
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // a byte order mark from a spreadsheet
		}
		h = strings.ToLower(strings.TrimSpace(h))
		if _, ok := keygate.ParseHash(h); ok {
			return nil, fmt.Errorf("%s has no header row: its first line must name the columns, such as hash,account_id,tier,name", name)
		}
		if _, dup := s.col[h]; dup {
			return nil, fmt.Errorf("%s: the header names the column %q twice", name, h)
		}
		if !slices.Contains(Columns, h) {
			unknown = append(unknown, fmt.Sprintf("%q", h))
			continue
		}
		s.col[h] = i
	}
	for _, req := range Columns[:2] {
		if _, ok := s.col[req]; !ok {
			return nil, fmt.Errorf("%s: the header row has no %s column; it needs hash and account_id, and may have %s", name, req, strings.Join(Columns[2:], ", "))
		}
	}
	if len(unknown) > 0 && warn != nil {
		warn(fmt.Sprintf("%s: ignoring unknown column(s) %s; known columns: %s", name, strings.Join(unknown, ", "), strings.Join(Columns, ", ")))
	}
	return s, nil
}

// Offset implements Source.
func (s *CSV) Offset() int64 { return s.r.InputOffset() }

// Next implements Source.
func (s *CSV) Next() (api.ImportRow, int, error) {
	rec, err := s.r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return api.ImportRow{}, pe.StartLine, &RowError{pe.StartLine, "not valid CSV: " + pe.Err.Error()}
		}
		return api.ImportRow{}, 0, err
	}
	line, _ := s.r.FieldPos(0)
	if len(rec) != s.n {
		return api.ImportRow{}, line, &RowError{line, fmt.Sprintf("has %d fields; the header row has %d", len(rec), s.n)}
	}
	get := func(c string) string {
		if i, ok := s.col[c]; ok {
			return rec[i]
		}
		return ""
	}
	rr := rawRow{
		hash: get("hash"), accountID: get("account_id"), tier: get("tier"), name: get("name"), env: get("env"),
		start: get("start"), expiresAt: get("expires_at"), scopes: splitList(get("scopes")), ipAllow: splitList(get("ip_allow")),
		meta: json.RawMessage(get("meta")),
	}
	row, bad := rr.row()
	if bad != "" {
		return row, line, &RowError{line, bad}
	}
	return row, line, nil
}

// JSONL reads JSON Lines: one object per line; blank lines are skipped.
type JSONL struct {
	r      *bufio.Reader
	line   int
	off    int64
	warn   func(string)
	warned map[string]bool
	buf    []byte
}

// NewJSONL returns a Source of r's lines. warn is told, once per name,
// about fields it does not know, which are ignored.
func NewJSONL(r io.Reader, warn func(string)) *JSONL {
	return &JSONL{r: bufio.NewReaderSize(r, 64<<10), warn: warn, warned: map[string]bool{}}
}

// Offset implements Source.
func (s *JSONL) Offset() int64 { return s.off }

// readLine returns the next line without its newline; ok is false when it
// was longer than MaxLine (and has been skipped).
func (s *JSONL) readLine() (line []byte, ok bool, err error) {
	s.buf = s.buf[:0]
	ok = true
	for {
		chunk, err := s.r.ReadSlice('\n')
		s.off += int64(len(chunk))
		if ok && len(s.buf)+len(chunk) <= MaxLine+1 {
			s.buf = append(s.buf, chunk...)
		} else {
			ok = false
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && (len(s.buf) > 0 || !ok):
			return s.buf, ok, nil
		case err != nil:
			return nil, ok, err
		}
		return bytes.TrimSuffix(s.buf, []byte("\n")), ok, nil
	}
}

// Next implements Source.
func (s *JSONL) Next() (api.ImportRow, int, error) {
	for {
		b, ok, err := s.readLine()
		if err != nil {
			return api.ImportRow{}, 0, err
		}
		s.line++
		if !ok {
			return api.ImportRow{}, s.line, &RowError{s.line, fmt.Sprintf("longer than %d bytes", MaxLine)}
		}
		if s.line == 1 {
			b = bytes.TrimPrefix(b, []byte("\ufeff"))
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		row, bad := s.parse(b)
		if bad != "" {
			return row, s.line, &RowError{s.line, bad}
		}
		return row, s.line, nil
	}
}

func (s *JSONL) parse(b []byte) (api.ImportRow, string) {
	if b[0] != '{' {
		return api.ImportRow{}, "not a JSON object; JSON Lines has one object per line, such as {\"hash\":\"…\",\"account_id\":\"acc_…\"}"
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return api.ImportRow{}, fmt.Sprintf("not valid JSON (at byte %d of the line)", syn.Offset)
		}
		return api.ImportRow{}, "not valid JSON"
	}
	var rr rawRow
	str := func(name string, dst *string) string {
		v, ok := m[name]
		if !ok || string(v) == "null" {
			return ""
		}
		if json.Unmarshal(v, dst) != nil {
			return name + " must be a string"
		}
		return ""
	}
	list := func(name string, dst *[]string) string {
		v, ok := m[name]
		if !ok || string(v) == "null" {
			return ""
		}
		var one string
		if json.Unmarshal(v, &one) == nil {
			*dst = splitList(one)
			return ""
		}
		if json.Unmarshal(v, dst) != nil {
			return name + " must be an array of strings (or one space-separated string)"
		}
		return ""
	}
	for _, bad := range []string{
		str("hash", &rr.hash), str("account_id", &rr.accountID), str("tier", &rr.tier), str("name", &rr.name),
		str("env", &rr.env), str("start", &rr.start), str("expires_at", &rr.expiresAt),
		list("scopes", &rr.scopes), list("ip_allow", &rr.ipAllow),
	} {
		if bad != "" {
			return api.ImportRow{}, bad
		}
	}
	for _, req := range Columns[:2] {
		if _, ok := m[req]; !ok {
			return api.ImportRow{}, "has no " + req + " field"
		}
	}
	rr.meta = m["meta"]
	for k := range m {
		if !slices.Contains(Columns, k) && !s.warned[k] && s.warn != nil {
			s.warned[k] = true
			s.warn(fmt.Sprintf("ignoring unknown field %q (first on line %d); known fields: %s", k, s.line, strings.Join(Columns, ", ")))
		}
	}
	return rr.row()
}
