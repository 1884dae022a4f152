package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/manage"
)

// maxInflight is how many batches may await an answer at once: two keep
// both ends busy, the server decoding one while it stores the other.
const maxInflight = 2

// Options say how Run sends a file.
type Options struct {
	// Name is the file's name in messages.
	Name string
	// Batch is the rows per request, from 1 to manage.MaxImportBatch
	// (the default when 0).
	Batch int
	// MaxBatchBytes ends a batch early once it holds this many bytes of
	// the file, so that rows with large metadata stay under the server's
	// body limit; 0 means api.MaxImportBytes / 4.
	MaxBatchBytes int64
	// Stop ends the import at the first bad row, and sends each batch
	// atomically; otherwise bad rows are reported and skipped.
	Stop bool
	// Send makes one request, such as api.Client.ImportKeys.
	Send func(context.Context, api.ImportRequest) (*api.ImportResult, error)
	// Explain words a failed request for people; nil leaves it as it is.
	Explain func(error) error
	// Bad is told about each bad row, in line order.
	Bad func(LineError)
	// Progress, if set, is told how many bytes of the file have been
	// parsed and how many rows read, now and then.
	Progress func(offset int64, rows int)
}

// LineError is a bad row of the file: the line it starts on, and why.
type LineError struct {
	Line   int    `json:"line"`
	Detail string `json:"detail"`
}

// Summary is what an import did so far.
type Summary struct {
	Rows          int // read from the file, bad ones included
	Inserted      int // stored now
	Skipped       int // already stored
	Invalid       int // bad rows, found here or by the server
	Batches       int // answered requests
	StoppedAtLine int // the bad row that ended an Options.Stop import
}

// String says what was imported, for people.
func (s Summary) String() string {
	r := api.ImportResult{Inserted: s.Inserted, Skipped: s.Skipped, Invalid: s.Invalid}
	return r.String()
}

// StoppedError ends an Options.Stop import at its first bad row.
type StoppedError struct {
	Line      int // the bad row
	FirstLine int // the first line of the batch that was not imported
	Summary   Summary
}

func (e *StoppedError) Error() string {
	if e.Summary.Batches == 0 {
		return fmt.Sprintf("import stopped at line %d (--on-error stop): nothing was imported. Fix line %d and run the same command again.", e.Line, e.Line)
	}
	return fmt.Sprintf("import stopped at line %d (--on-error stop): the rows before line %d stay imported (%d imported, %d already present); nothing from line %d on was imported. Fix line %d and run the same command again: keys already imported are skipped.",
		e.Line, e.FirstLine, e.Summary.Inserted, e.Summary.Skipped, e.FirstLine, e.Line)
}

// Run reads src to its end and sends its rows in batches, two requests
// in flight. It returns what it did, and why it stopped early if it did:
// a *StoppedError, a failed request, ctx's end, or a read error. The
// messages say what was imported and that running the same import again
// is safe, since the server skips hashes it already holds.
func Run(ctx context.Context, src Source, o Options) (Summary, error) {
	if o.Batch <= 0 || o.Batch > manage.MaxImportBatch {
		o.Batch = manage.MaxImportBatch
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = api.MaxImportBytes / 4
	}
	if o.Explain == nil {
		o.Explain = func(err error) error { return err }
	}
	if o.Bad == nil {
		o.Bad = func(LineError) {}
	}
	r := &run{o: o, src: src, seen: map[string]int{}}
	err := r.loop(ctx)
	return r.sum, err
}

// run is the state of one Run.
type run struct {
	o   Options
	src Source
	sum Summary

	rows      []api.ImportRow
	lines     []int
	seen      map[string]int // hash → line, within the batch
	pending   []LineError    // bad rows of the batch, not yet reported
	batchFrom int64          // source offset where the batch began
	inflight  []*batch       // sent, not yet answered, oldest first
}

// batch is one request's rows, their lines, and the bad rows found locally
// among them, kept together so that the answer can be matched to them while
// the next batch is read.
type batch struct {
	rows    []api.ImportRow
	lines   []int
	pending []LineError
	done    chan struct{}
	res     *api.ImportResult
	err     error
}

// bad records one bad row. With Stop it is reported at once; otherwise
// with the batch it falls in, so that the server's findings and the local
// ones come out in line order.
func (r *run) bad(line int, detail string) {
	r.pending = append(r.pending, LineError{line, detail})
	if r.o.Stop {
		r.report()
	}
}

// report hands the pending bad rows to Options.Bad, in line order.
func (r *run) report() {
	slices.SortStableFunc(r.pending, func(a, b LineError) int { return a.Line - b.Line })
	for _, e := range r.pending {
		r.sum.Invalid++
		r.o.Bad(e)
	}
	r.pending = r.pending[:0]
}

func (r *run) progress() {
	if r.o.Progress != nil {
		r.o.Progress(r.src.Offset(), r.sum.Rows)
	}
}

// stopped ends a Stop import at line.
func (r *run) stopped(line, first int) error {
	r.sum.StoppedAtLine = line
	return &StoppedError{Line: line, FirstLine: first, Summary: r.sum}
}

func (r *run) loop(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return r.interrupted(err)
		}
		row, line, err := r.src.Next()
		if err == io.EOF {
			break
		}
		var re *RowError
		switch {
		case errors.As(err, &re):
			r.sum.Rows++
			r.bad(re.Line, re.Detail)
			if len(r.pending) >= r.o.Batch {
				if err := r.flush(ctx); err != nil {
					return err
				}
			}
			if r.o.Stop {
				first := re.Line
				if len(r.lines) > 0 {
					first = r.lines[0]
				}
				return r.stopped(re.Line, first)
			}
			continue
		case err != nil:
			return fmt.Errorf("reading %s: %w (%s so far)", r.o.Name, err, r.sum)
		}
		r.sum.Rows++
		if prev, dup := r.seen[row.Hash]; dup {
			r.bad(line, fmt.Sprintf("hash repeats line %d", prev))
			if r.o.Stop {
				return r.stopped(line, r.lines[0])
			}
			continue
		}
		r.seen[row.Hash] = line
		r.rows = append(r.rows, row)
		r.lines = append(r.lines, line)
		if len(r.rows)+len(r.pending) >= r.o.Batch || r.src.Offset()-r.batchFrom >= r.o.MaxBatchBytes {
			if err := r.flush(ctx); err != nil {
				return err
			}
		}
		if r.sum.Rows%1000 == 0 {
			r.progress()
		}
	}
	if err := r.flush(ctx); err != nil {
		return err
	}
	return r.awaitAll(ctx)
}

// flush sends the rows read so far. Without Stop it does not wait: the
// batch goes out while the next one is read and parsed, and its answer is
// handled, in order, before a later batch is sent. With Stop every answer
// is awaited, so that nothing is sent past the first bad row.
func (r *run) flush(ctx context.Context) error {
	defer func() { r.batchFrom = r.src.Offset() }()
	for len(r.inflight) >= maxInflight {
		if err := r.await(ctx); err != nil {
			return err
		}
	}
	if len(r.rows) == 0 {
		// Bad rows alone: report them after the batches before them.
		if err := r.awaitAll(ctx); err != nil {
			return err
		}
		r.report()
		return nil
	}
	b := &batch{rows: r.rows, lines: r.lines, pending: r.pending, done: make(chan struct{})}
	r.rows, r.lines, r.pending = nil, nil, nil
	clear(r.seen)
	go func() {
		defer close(b.done)
		b.res, b.err = r.o.Send(ctx, api.ImportRequest{Keys: b.rows, Atomic: r.o.Stop})
	}()
	r.inflight = append(r.inflight, b)
	if r.o.Stop {
		return r.await(ctx)
	}
	return nil
}

// awaitAll waits for every batch in flight.
func (r *run) awaitAll(ctx context.Context) error {
	for len(r.inflight) > 0 {
		if err := r.await(ctx); err != nil {
			return err
		}
	}
	return nil
}

// await waits for the oldest batch in flight, if any, and accounts for its
// answer.
func (r *run) await(ctx context.Context) error {
	if len(r.inflight) == 0 {
		return nil
	}
	b := r.inflight[0]
	r.inflight = r.inflight[1:]
	<-b.done
	// The batch's own bad rows are reported with it, ahead of any found
	// since in later lines.
	later := r.pending
	r.pending = b.pending
	defer func() { r.pending = append(r.pending, later...) }()
	if err := b.err; err != nil {
		r.report()
		if ctx.Err() != nil {
			return r.interruptedAt(ctx.Err(), b.lines[0])
		}
		first, last := b.lines[0], b.lines[len(b.lines)-1]
		var refused *api.Error
		switch {
		case !errors.As(err, &refused) && r.sum.Batches == 0:
			return r.o.Explain(err)
		case !errors.As(err, &refused):
			// No answer: the batch may or may not have been stored.
			return fmt.Errorf("%v; sending the batch of lines %d-%d failed (before it: %s). Run the same command again to finish: keys already imported are skipped.",
				r.o.Explain(err), first, last, r.sum)
		case r.sum.Batches == 0:
			return fmt.Errorf("%v (nothing was imported)", r.o.Explain(err))
		}
		return fmt.Errorf("the server refused the batch of lines %d-%d: %v. Before it: %s; nothing from line %d on was imported. Run the same command again to resume: keys already imported are skipped.",
			first, last, r.o.Explain(err), r.sum, first)
	}
	for _, e := range b.res.Errors {
		line := -1
		if e.Index >= 0 && e.Index < len(b.lines) {
			line = b.lines[e.Index]
		}
		r.bad(line, strings.TrimSuffix(e.Detail, "."))
		if r.o.Stop {
			return r.stopped(line, b.lines[0])
		}
	}
	r.report()
	r.sum.Batches++
	r.sum.Inserted += b.res.Inserted
	r.sum.Skipped += b.res.Skipped
	r.progress()
	return nil
}

// interrupted ends an import whose ctx ended, once the batches in flight
// have been answered (they may or may not have been stored).
func (r *run) interrupted(err error) error {
	first := 0
	if len(r.lines) > 0 {
		first = r.lines[0]
	}
	if len(r.inflight) > 0 {
		for _, b := range r.inflight {
			<-b.done
		}
		first = r.inflight[0].lines[0]
		r.inflight = nil
	}
	return r.interruptedAt(err, first)
}

func (r *run) interruptedAt(err error, line int) error {
	r.report()
	at := ""
	if line > 0 {
		at = fmt.Sprintf(" at line %d", line)
	}
	return fmt.Errorf("import interrupted%s (%v) after %s. Run the same command again to finish: keys already imported are skipped.", at, err, r.sum)
}
