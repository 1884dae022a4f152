package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/manage"
)

const (
	// importBatchBytes caps the source bytes of one batch, so that rows
	// with large metadata stay well under the server's api.MaxImportBytes
	// whatever --batch says.
	importBatchBytes = api.MaxImportBytes / 4
	// maxImportLine caps one JSONL line.
	maxImportLine = 1 << 20
	// maxJSONErrors caps the errors listed in the --json summary; every
	// bad row is still reported on stderr.
	maxJSONErrors = 1000
)

// importColumns are the fields of an import row, required ones first.
var importColumns = []string{"hash", "account_id", "tier", "name", "env", "scopes", "ip_allow", "start", "expires_at", "meta"}

// rowError is one bad row of the file, by its line number; the import
// goes on after it unless --on-error stop.
type rowError struct {
	line   int
	detail string
}

func (e *rowError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.detail) }

// rowSource yields the rows of an import file one at a time.
type rowSource interface {
	// next returns the next row and the line it starts on. A *rowError
	// is one bad row; io.EOF ends the file; any other error ends the
	// import.
	next() (manage.ImportRow, int, error)
	// offset is how many bytes of the file have been parsed.
	offset() int64
}

// rawRow is a row as the file spells it, before local validation.
type rawRow struct {
	hash, accountID, tier, name, env, start, expiresAt string
	scopes, ipAllow                                    []string
	meta                                               json.RawMessage
}

// check validates what can be validated without the server and returns
// the row to send, or the reason the row is bad. It never quotes the hash
// column: a file may hold plaintext keys there by mistake.
func (r *rawRow) check() (manage.ImportRow, string) {
	h := strings.ToLower(strings.TrimSpace(r.hash))
	switch {
	case h == "":
		return manage.ImportRow{}, "hash is empty; give the SHA-256 of the key as 64 hex characters"
	case len(h) != 64 || !isHex(h):
		if strings.ContainsAny(h, "_-") || len(h) != 64 {
			return manage.ImportRow{}, fmt.Sprintf("hash is not 64 hex characters (it has %d characters); give hex(sha256(key)), never the key itself", len(h))
		}
		return manage.ImportRow{}, "hash is not hexadecimal; give the SHA-256 of the key as 64 hex characters"
	}
	row := manage.ImportRow{
		Hash: h, AccountID: strings.TrimSpace(r.accountID), Tier: strings.TrimSpace(r.tier), Name: strings.TrimSpace(r.name),
		Env: keygate.Env(strings.TrimSpace(r.env)), Start: strings.TrimSpace(r.start), Scopes: r.scopes, IPAllow: r.ipAllow,
	}
	if row.AccountID == "" {
		return manage.ImportRow{}, "account_id is empty; every key needs the account that owns it"
	}
	if row.Env != "" && !row.Env.Valid() {
		return manage.ImportRow{}, fmt.Sprintf("env %q is invalid: use live or test", row.Env)
	}
	if len(row.Start) > 16 {
		return manage.ImportRow{}, "start is a display hint of at most 16 characters, never the whole key"
	}
	if e := strings.TrimSpace(r.expiresAt); e != "" {
		t, err := time.Parse(time.RFC3339, e)
		if err != nil {
			return manage.ImportRow{}, fmt.Sprintf("expires_at %q is not an RFC 3339 time such as 2027-01-31T00:00:00Z", e)
		}
		row.ExpiresAt = &t
	}
	if m := bytes.TrimSpace(r.meta); len(m) > 0 && string(m) != "null" {
		if !json.Valid(m) || m[0] != '{' {
			return manage.ImportRow{}, "meta is not a JSON object"
		}
		row.Meta = json.RawMessage(m)
	}
	return row, ""
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
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

// csvSource reads a CSV file whose header row names the columns, in any
// order.
type csvSource struct {
	r   *csv.Reader
	col map[string]int
	n   int // columns in the header
}

func newCSVSource(r io.Reader, name string, warn func(string)) (*csvSource, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked per row, with a better message
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: %s is empty; the first line must name the columns, such as hash,account_id,tier,name", errUsage, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: the header row: %v", errUsage, name, err)
	}
	s := &csvSource{r: cr, col: map[string]int{}, n: len(header)}
	var unknown []string
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // a byte order mark from a spreadsheet
		}
		h = strings.ToLower(strings.TrimSpace(h))
		if len(h) == 64 && isHex(h) {
			return nil, fmt.Errorf("%w: %s has no header row: its first line must name the columns, such as hash,account_id,tier,name", errUsage, name)
		}
		if _, dup := s.col[h]; dup {
			return nil, fmt.Errorf("%w: %s: the header names the column %q twice", errUsage, name, h)
		}
		if !slices.Contains(importColumns, h) {
			unknown = append(unknown, fmt.Sprintf("%q", h))
			continue
		}
		s.col[h] = i
	}
	for _, req := range []string{"hash", "account_id"} {
		if _, ok := s.col[req]; !ok {
			return nil, fmt.Errorf("%w: %s: the header row has no %s column; it needs hash and account_id, and may have %s", errUsage, name, req, strings.Join(importColumns[2:], ", "))
		}
	}
	if len(unknown) > 0 {
		warn(fmt.Sprintf("%s: ignoring unknown column(s) %s; known columns: %s", name, strings.Join(unknown, ", "), strings.Join(importColumns, ", ")))
	}
	return s, nil
}

func (s *csvSource) offset() int64 { return s.r.InputOffset() }

func (s *csvSource) next() (manage.ImportRow, int, error) {
	rec, err := s.r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return manage.ImportRow{}, pe.StartLine, &rowError{pe.StartLine, "not valid CSV: " + pe.Err.Error()}
		}
		return manage.ImportRow{}, 0, err
	}
	line, _ := s.r.FieldPos(0)
	if len(rec) != s.n {
		return manage.ImportRow{}, line, &rowError{line, fmt.Sprintf("has %d fields; the header row has %d", len(rec), s.n)}
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
	row, bad := rr.check()
	if bad != "" {
		return row, line, &rowError{line, bad}
	}
	return row, line, nil
}

// jsonlSource reads JSON Lines: one object per line; blank lines are
// skipped.
type jsonlSource struct {
	r      *bufio.Reader
	line   int
	off    int64
	warn   func(string)
	warned map[string]bool
	buf    []byte
}

func newJSONLSource(r io.Reader, warn func(string)) *jsonlSource {
	return &jsonlSource{r: bufio.NewReaderSize(r, 64<<10), warn: warn, warned: map[string]bool{}}
}

func (s *jsonlSource) offset() int64 { return s.off }

// readLine returns the next line without its newline; ok is false when it
// was longer than maxImportLine (and has been skipped).
func (s *jsonlSource) readLine() (line []byte, ok bool, err error) {
	s.buf = s.buf[:0]
	ok = true
	for {
		chunk, err := s.r.ReadSlice('\n')
		s.off += int64(len(chunk))
		if ok && len(s.buf)+len(chunk) <= maxImportLine+1 {
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

func (s *jsonlSource) next() (manage.ImportRow, int, error) {
	for {
		b, ok, err := s.readLine()
		if err != nil {
			return manage.ImportRow{}, 0, err
		}
		s.line++
		if !ok {
			return manage.ImportRow{}, s.line, &rowError{s.line, fmt.Sprintf("longer than %d bytes", maxImportLine)}
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
			return row, s.line, &rowError{s.line, bad}
		}
		return row, s.line, nil
	}
}

func (s *jsonlSource) parse(b []byte) (manage.ImportRow, string) {
	if b[0] != '{' {
		return manage.ImportRow{}, "not a JSON object; JSON Lines has one object per line, such as {\"hash\":\"…\",\"account_id\":\"acc_…\"}"
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return manage.ImportRow{}, fmt.Sprintf("not valid JSON (at byte %d of the line)", syn.Offset)
		}
		return manage.ImportRow{}, "not valid JSON"
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
			return manage.ImportRow{}, bad
		}
	}
	if _, ok := m["hash"]; !ok {
		return manage.ImportRow{}, "has no hash field"
	}
	if _, ok := m["account_id"]; !ok {
		return manage.ImportRow{}, "has no account_id field"
	}
	rr.meta = m["meta"]
	for k := range m {
		if !slices.Contains(importColumns, k) && !s.warned[k] {
			s.warned[k] = true
			s.warn(fmt.Sprintf("ignoring unknown field %q (first on line %d); known fields: %s", k, s.line, strings.Join(importColumns, ", ")))
		}
	}
	return rr.check()
}

// importSummary is what keygate import did, as --json prints it.
type importSummary struct {
	File            string      `json:"file"`
	Format          string      `json:"format"`
	Rows            int         `json:"rows"`
	Inserted        int         `json:"inserted"`
	Skipped         int         `json:"skipped"`
	Invalid         int         `json:"invalid"`
	Batches         int         `json:"batches"`
	StoppedAtLine   int         `json:"stopped_at_line,omitempty"`
	Errors          []lineError `json:"errors,omitempty"`
	ErrorsTruncated bool        `json:"errors_truncated,omitempty"`
}

type lineError struct {
	Line   int    `json:"line"`
	Detail string `json:"detail"`
}

// importer sends rows in batches and maps the server's answers back to
// line numbers.
type importer struct {
	ctx    context.Context
	c      *api.Client
	o      *cliOpts
	stop   bool
	max    int
	name   string
	stderr io.Writer
	bar    *progressbar.ProgressBar
	size   int64 // of the file; -1 when unknown
	src    rowSource

	rows      []manage.ImportRow
	lines     []int
	seen      map[string]int // hash → line, within the batch
	pending   []lineError    // bad rows of the batch, not yet reported
	batchFrom int64          // source offset where the batch began
	inflight  []*batch       // sent, not yet answered, oldest first
	sum       importSummary
}

// bad records one bad row. With --on-error stop it is reported at once;
// otherwise with the batch it falls in, so that the server's findings and
// the local ones come out in line order.
func (im *importer) bad(line int, detail string) {
	im.pending = append(im.pending, lineError{line, detail})
	if im.stop {
		im.report()
	}
}

// report prints the pending bad rows on stderr, in line order.
func (im *importer) report() {
	slices.SortStableFunc(im.pending, func(a, b lineError) int { return a.Line - b.Line })
	for _, e := range im.pending {
		im.sum.Invalid++
		if len(im.sum.Errors) < maxJSONErrors {
			im.sum.Errors = append(im.sum.Errors, e)
		} else {
			im.sum.ErrorsTruncated = true
		}
		im.say(fmt.Sprintf("%s: line %d: %s", im.name, e.Line, e.Detail))
	}
	im.pending = im.pending[:0]
}

// say prints a line on stderr above the progress bar.
func (im *importer) say(s string) {
	if im.bar != nil {
		im.bar.Clear()
	}
	fmt.Fprintln(im.stderr, s)
}

// progress moves the bar to the bytes parsed so far; it stays short of
// full until the last batch is answered.
func (im *importer) progress() {
	if im.bar == nil {
		return
	}
	n := im.src.offset()
	if im.size > 0 && n >= im.size {
		n = im.size - 1
	}
	im.bar.Set64(n)
	im.bar.Describe(fmt.Sprintf("importing %s: %d rows", im.name, im.sum.Rows))
}

// errStopped ends an --on-error stop import at its first bad row.
type errStopped struct {
	line      int
	firstLine int // first line of the batch that was not imported
	sum       *importSummary
}

func (e *errStopped) Error() string {
	if e.sum.Batches == 0 {
		return fmt.Sprintf("import stopped at line %d (--on-error stop): nothing was imported. Fix line %d and run the same command again.", e.line, e.line)
	}
	return fmt.Sprintf("import stopped at line %d (--on-error stop): the rows before line %d stay imported (%d imported, %d already present); nothing from line %d on was imported. Fix line %d and run the same command again: keys already imported are skipped.",
		e.line, e.firstLine, e.sum.Inserted, e.sum.Skipped, e.firstLine, e.line)
}

func (im *importer) run() error {
	for {
		if err := im.ctx.Err(); err != nil {
			return im.interrupted(err)
		}
		row, line, err := im.src.next()
		if err == io.EOF {
			break
		}
		var re *rowError
		switch {
		case errors.As(err, &re):
			im.sum.Rows++
			im.bad(re.line, re.detail)
			if len(im.pending) >= im.max {
				if err := im.flush(); err != nil {
					return err
				}
			}
			if im.stop {
				im.sum.StoppedAtLine = re.line
				first := re.line
				if len(im.lines) > 0 {
					first = im.lines[0]
				}
				return &errStopped{line: re.line, firstLine: first, sum: &im.sum}
			}
			continue
		case err != nil:
			return fmt.Errorf("reading %s: %w (%s so far)", im.name, err, im.sumLine())
		}
		im.sum.Rows++
		if prev, dup := im.seen[row.Hash]; dup {
			im.bad(line, fmt.Sprintf("hash repeats line %d", prev))
			if im.stop {
				im.sum.StoppedAtLine = line
				return &errStopped{line: line, firstLine: im.lines[0], sum: &im.sum}
			}
			continue
		}
		im.seen[row.Hash] = line
		im.rows = append(im.rows, row)
		im.lines = append(im.lines, line)
		if len(im.rows)+len(im.pending) >= im.max || im.src.offset()-im.batchFrom >= importBatchBytes {
			if err := im.flush(); err != nil {
				return err
			}
		}
		if im.sum.Rows%1000 == 0 {
			im.progress()
		}
	}
	if err := im.flush(); err != nil {
		return err
	}
	return im.awaitAll()
}

// batch is one request's rows, their lines, and the bad rows found locally
// among them, kept together so that the answer can be matched to them while
// the next batch is read.
type batch struct {
	rows    []manage.ImportRow
	lines   []int
	pending []lineError
	done    chan struct{}
	res     *manage.ImportResult
	err     error
}

// flush sends the rows read so far. With --on-error skip it does not wait:
// the batch goes out while the next one is read and parsed (the server
// stores one batch while it decodes the next), and its answer is handled,
// in order, before the next batch is sent. With --on-error stop every
// answer is awaited, so that nothing is sent past the first bad row.
func (im *importer) flush() error {
	defer func() { im.batchFrom = im.src.offset() }()
	// Two batches in flight keep both ends busy: the server decodes one
	// while it stores the other.
	for len(im.inflight) >= maxInflight {
		if err := im.await(); err != nil {
			return err
		}
	}
	if len(im.rows) == 0 {
		// Bad rows alone: report them after the batches before them.
		if err := im.awaitAll(); err != nil {
			return err
		}
		im.report()
		return nil
	}
	b := &batch{rows: im.rows, lines: im.lines, pending: im.pending, done: make(chan struct{})}
	im.rows, im.lines, im.pending = nil, nil, nil
	clear(im.seen)
	go func() {
		defer close(b.done)
		b.res, b.err = im.c.ImportKeys(im.ctx, api.ImportRequest{Keys: b.rows, Atomic: im.stop})
	}()
	im.inflight = append(im.inflight, b)
	if im.stop {
		return im.await()
	}
	return nil
}

// maxInflight is how many batches may await an answer at once.
const maxInflight = 2

// awaitAll waits for every batch in flight.
func (im *importer) awaitAll() error {
	for len(im.inflight) > 0 {
		if err := im.await(); err != nil {
			return err
		}
	}
	return nil
}

// await waits for the oldest batch in flight, if any, and accounts for its
// answer.
func (im *importer) await() error {
	if len(im.inflight) == 0 {
		return nil
	}
	b := im.inflight[0]
	im.inflight = im.inflight[1:]
	<-b.done
	// The batch's own bad rows are reported with it, ahead of any found
	// since in later lines.
	later := im.pending
	im.pending = b.pending
	defer func() { im.pending = append(im.pending, later...) }()
	if err := b.err; err != nil {
		im.report()
		if im.ctx.Err() != nil {
			return im.interruptedAt(im.ctx.Err(), b.lines[0])
		}
		var refused *api.Error
		if !errors.As(err, &refused) {
			// No answer: the batch may or may not have been stored.
			if im.sum.Batches == 0 {
				return im.o.explain(err)
			}
			return fmt.Errorf("%v; sending the batch of lines %d-%d failed (before it: %s). Run the same command again to finish: keys already imported are skipped.",
				im.o.explain(err), b.lines[0], b.lines[len(b.lines)-1], im.sumLine())
		}
		if im.sum.Batches == 0 {
			return fmt.Errorf("%v (nothing was imported)", im.o.explain(err))
		}
		return fmt.Errorf("the server refused the batch of lines %d-%d: %v. Before it: %s; nothing from line %d on was imported. Run the same command again to resume: keys already imported are skipped.",
			b.lines[0], b.lines[len(b.lines)-1], im.o.explain(err), im.sumLine(), b.lines[0])
	}
	for _, e := range b.res.Errors {
		line := -1
		if e.Index >= 0 && e.Index < len(b.lines) {
			line = b.lines[e.Index]
		}
		im.bad(line, strings.TrimSuffix(e.Detail, "."))
		if im.stop {
			im.sum.StoppedAtLine = line
			return &errStopped{line: line, firstLine: b.lines[0], sum: &im.sum}
		}
	}
	im.report()
	im.sum.Batches++
	im.sum.Inserted += b.res.Inserted
	im.sum.Skipped += b.res.Skipped
	im.progress()
	return nil
}

func (im *importer) interrupted(err error) error {
	if len(im.inflight) > 0 {
		// The batches in flight may or may not have been stored.
		for _, b := range im.inflight {
			<-b.done
		}
		first := im.inflight[0].lines[0]
		im.inflight = nil
		return im.interruptedAt(err, first)
	}
	first := 0
	if len(im.lines) > 0 {
		first = im.lines[0]
	}
	return im.interruptedAt(err, first)
}

func (im *importer) interruptedAt(err error, line int) error {
	im.report()
	at := ""
	if line > 0 {
		at = fmt.Sprintf(" at line %d", line)
	}
	return fmt.Errorf("import interrupted%s (%v) after %s. Run the same command again to finish: keys already imported are skipped.", at, err, im.sumLine())
}

func (im *importer) sumLine() string {
	r := manage.ImportResult{Inserted: im.sum.Inserted, Skipped: im.sum.Skipped, Invalid: im.sum.Invalid}
	return r.String()
}

func (m *Main) runImport(ctx context.Context, args []string) error {
	stdout, stderr := m.Stdout, m.Stderr
	fs := m.newFlagSet("import")
	o := m.adminFlags(fs)
	format := fs.String("format", "", "file `FORMAT`: csv or jsonl (default: from the file name's extension; required for -)")
	batch := fs.Int("batch", manage.MaxImportBatch, fmt.Sprintf("rows per request, `N` from 1 to %d", manage.MaxImportBatch))
	onError := fs.String("on-error", "skip", "what a bad row does: `skip` it (report it and go on) or stop the import")
	pos, err := parseCmd(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: import needs one FILE (CSV or JSON Lines; - reads standard input)", errUsage)
	}
	path := pos[0]
	switch *format = strings.ToLower(strings.TrimSpace(*format)); *format {
	case "":
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			*format = "csv"
		case ".jsonl", ".ndjson":
			*format = "jsonl"
		default:
			if path == "-" {
				return fmt.Errorf("%w: import - reads standard input and needs --format csv or --format jsonl", errUsage)
			}
			return fmt.Errorf("%w: cannot tell the format of %s from its name; add --format csv or --format jsonl", errUsage, path)
		}
	case "csv", "jsonl":
	case "ndjson", "json-lines", "jsonlines":
		*format = "jsonl"
	default:
		return fmt.Errorf("%w: --format %q: use csv or jsonl", errUsage, *format)
	}
	if *batch < 1 || *batch > manage.MaxImportBatch {
		return fmt.Errorf("%w: --batch %d: give from 1 to %d rows per request", errUsage, *batch, manage.MaxImportBatch)
	}
	var stop bool
	switch *onError {
	case "skip":
	case "stop":
		stop = true
	default:
		return fmt.Errorf("%w: --on-error %q: use skip or stop", errUsage, *onError)
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	c.HTTP = &http.Client{Timeout: 5 * time.Minute} // one batch may take a while on a busy store

	var f io.Reader
	name, size := path, int64(-1)
	if path == "-" {
		f, name = m.Stdin, "stdin"
	} else {
		file, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		defer file.Close()
		if fi, err := file.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
			size = fi.Size()
		}
		f = file
	}
	im := &importer{ctx: ctx, c: c, o: o, stop: stop, max: *batch, name: name, stderr: stderr, size: size,
		seen: map[string]int{}, sum: importSummary{File: name, Format: *format}}
	im.bar = newImportBar(size, stderr)
	warn := func(s string) { im.say("keygate: " + s) }
	start := time.Now()
	if *format == "csv" {
		src, err := newCSVSource(f, name, warn)
		if err != nil {
			return err
		}
		im.src = src
	} else {
		im.src = newJSONLSource(f, warn)
	}
	runErr := im.run()
	if im.bar != nil {
		if runErr == nil {
			im.bar.Finish()
		}
		im.bar.Exit()
		im.bar.Clear()
	}
	if o.json {
		if err := printJSON(stdout, im.sum); err != nil {
			return err
		}
	} else {
		batches := "batches"
		if im.sum.Batches == 1 {
			batches = "batch"
		}
		fmt.Fprintf(stdout, "%s (%d rows of %s in %d %s, %s)\n", im.sumLine(), im.sum.Rows, name, im.sum.Batches, batches,
			time.Since(start).Round(time.Millisecond))
	}
	return runErr
}

// newImportBar returns a progress bar on stderr sized by the file's bytes
// (a spinner for standard input), or nil when stderr is not a terminal:
// logs get the summary line, not a stream of redraws.
func newImportBar(size int64, stderr io.Writer) *progressbar.ProgressBar {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("importing"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionClearOnFinish(),
	)
}
