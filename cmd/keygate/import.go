package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/keygate/keygate/importer"
	"github.com/keygate/keygate/manage"
)

// maxJSONErrors caps the errors listed in the --json summary; every bad
// row is still reported on stderr.
const maxJSONErrors = 1000

// importSummary is what keygate import did, as --json prints it.
type importSummary struct {
	File            string               `json:"file"`
	Format          string               `json:"format"`
	Rows            int                  `json:"rows"`
	Inserted        int                  `json:"inserted"`
	Skipped         int                  `json:"skipped"`
	Invalid         int                  `json:"invalid"`
	Batches         int                  `json:"batches"`
	StoppedAtLine   int                  `json:"stopped_at_line,omitempty"`
	Errors          []importer.LineError `json:"errors,omitempty"`
	ErrorsTruncated bool                 `json:"errors_truncated,omitempty"`
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
	bar := newImportBar(size, stderr)
	// say prints a line on stderr above the progress bar.
	say := func(s string) {
		if bar != nil {
			bar.Clear()
		}
		fmt.Fprintln(stderr, s)
	}
	warn := func(s string) { say("keygate: " + s) }
	var src importer.Source
	if *format == "csv" {
		csv, err := importer.NewCSV(f, name, warn)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		src = csv
	} else {
		src = importer.NewJSONL(f, warn)
	}
	out := importSummary{File: name, Format: *format}
	start := time.Now()
	sum, runErr := importer.Run(ctx, src, importer.Options{
		Name: name, Batch: *batch, Stop: stop, Send: c.ImportKeys, Explain: o.explain,
		Bad: func(e importer.LineError) {
			if len(out.Errors) < maxJSONErrors {
				out.Errors = append(out.Errors, e)
			} else {
				out.ErrorsTruncated = true
			}
			say(fmt.Sprintf("%s: line %d: %s", name, e.Line, e.Detail))
		},
		Progress: func(offset int64, rows int) {
			if bar == nil {
				return
			}
			if size > 0 && offset >= size {
				offset = size - 1 // full only once the last batch is answered
			}
			bar.Set64(offset)
			bar.Describe(fmt.Sprintf("importing %s: %d rows", name, rows))
		},
	})
	if bar != nil {
		if runErr == nil {
			bar.Finish()
		}
		bar.Exit()
		bar.Clear()
	}
	out.Rows, out.Inserted, out.Skipped, out.Invalid, out.Batches, out.StoppedAtLine =
		sum.Rows, sum.Inserted, sum.Skipped, sum.Invalid, sum.Batches, sum.StoppedAtLine
	if o.json {
		if err := printJSON(stdout, out); err != nil {
			return err
		}
	} else {
		batches := "batches"
		if sum.Batches == 1 {
			batches = "batch"
		}
		fmt.Fprintf(stdout, "%s (%d rows of %s in %d %s, %s)\n", sum, sum.Rows, name, sum.Batches, batches,
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
