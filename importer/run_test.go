package importer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/problem"
)

func hashOf(i int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "key %d", i))
	return hex.EncodeToString(sum[:])
}

// fakeServer answers import requests: rows whose account is acc_missing
// are invalid, as a server would find; every other row is inserted.
type fakeServer struct {
	mu       sync.Mutex
	requests []api.ImportRequest
	// fail, if set, is the error of the request whose first row has the
	// given hash (requests run concurrently: their order is not known).
	fail func(firstHash string) error
}

func (f *fakeServer) send(ctx context.Context, req api.ImportRequest) (*api.ImportResult, error) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(req.Keys[0].Hash); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &api.ImportResult{}
	for i, r := range req.Keys {
		if r.AccountID == "acc_missing" {
			res.Invalid++
			res.Errors = append(res.Errors, api.ImportError{Index: i, Detail: `account "acc_missing" does not exist; create it first.`})
		}
	}
	if !req.Atomic || res.Invalid == 0 {
		res.Inserted = len(req.Keys) - res.Invalid
	}
	return res, nil
}

// csvFile is a header and one row per entry of accounts, each with its
// own hash unless the entry says "dup" (the hash of the row before) or
// "bad" (no hash at all). Row i is on line i+2.
func csvFile(accounts ...string) string {
	var b strings.Builder
	b.WriteString("hash,account_id\n")
	for i, a := range accounts {
		h := hashOf(i)
		switch a {
		case "dup":
			h, a = hashOf(i-1), "acc_1"
		case "bad":
			h, a = "", "acc_1"
		}
		fmt.Fprintf(&b, "%s,%s\n", h, a)
	}
	return b.String()
}

func runCSV(t *testing.T, ctx context.Context, f *fakeServer, in string, o Options) (Summary, []LineError, error) {
	t.Helper()
	src, err := NewCSV(strings.NewReader(in), "f.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	var bad []LineError
	o.Name, o.Send = "f.csv", f.send
	o.Bad = func(e LineError) { bad = append(bad, e) }
	sum, err := Run(ctx, src, o)
	return sum, bad, err
}

func TestRunSkipsBadRows(t *testing.T) {
	f := &fakeServer{}
	//                    line 2   3      4      5        6              7        8        9
	in := csvFile("acc_1", "dup", "bad", "acc_1", "acc_missing", "acc_1", "acc_1", "acc_1")
	sum, bad, err := runCSV(t, context.Background(), f, in, Options{Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	wantBad := []LineError{
		{3, "hash repeats line 2"},
		{4, "hash is empty; give the SHA-256 of the key as 64 hex characters"},
		{6, `account "acc_missing" does not exist; create it first`},
	}
	if diff := cmp.Diff(wantBad, bad); diff != "" {
		t.Errorf("bad rows (-want +got):\n%s", diff)
	}
	want := Summary{Rows: 8, Inserted: 5, Invalid: 3, Batches: 2}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	// A batch counts good and bad rows up to --batch; the bad ones found
	// here are not sent.
	var sizes []int
	for _, r := range f.requests {
		sizes = append(sizes, len(r.Keys))
		if r.Atomic {
			t.Error("a skip import sent an atomic batch")
		}
	}
	slices.Sort(sizes) // sent two at a time: in either order
	if diff := cmp.Diff([]int{2, 4}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
}

func TestRunStopsAtTheServersFirstBadRow(t *testing.T) {
	f := &fakeServer{}
	in := csvFile("acc_1", "acc_1", "acc_1", "acc_missing", "acc_1", "acc_1")
	sum, bad, err := runCSV(t, context.Background(), f, in, Options{Batch: 2, Stop: true})
	var stopped *StoppedError
	if !errors.As(err, &stopped) || stopped.Line != 5 || stopped.FirstLine != 4 {
		t.Fatalf("got %v, want to stop at line 5 in the batch from line 4", err)
	}
	if !strings.Contains(err.Error(), "the rows before line 4 stay imported (2 imported, 0 already present)") {
		t.Errorf("message: %v", err)
	}
	if diff := cmp.Diff([]LineError{{5, `account "acc_missing" does not exist; create it first`}}, bad); diff != "" {
		t.Errorf("bad rows (-want +got):\n%s", diff)
	}
	if len(f.requests) != 2 || !f.requests[1].Atomic {
		t.Errorf("requests: got %d (atomic %v), want 2 atomic ones and nothing after the bad row", len(f.requests), f.requests[len(f.requests)-1].Atomic)
	}
	if sum.Inserted != 2 || sum.StoppedAtLine != 5 {
		t.Errorf("summary %+v", sum)
	}
}

func TestRunStopsAtALocalBadRowBeforeSending(t *testing.T) {
	f := &fakeServer{}
	_, _, err := runCSV(t, context.Background(), f, csvFile("bad", "acc_1"), Options{Stop: true})
	if err == nil || !strings.Contains(err.Error(), "import stopped at line 2 (--on-error stop): nothing was imported") {
		t.Fatalf("got %v", err)
	}
	if len(f.requests) != 0 {
		t.Errorf("sent %d requests, want none", len(f.requests))
	}
}

func TestRunRequestFailures(t *testing.T) {
	refused := &api.Error{Problem: problem.Problem{Status: 503, Code: "STORE_UNAVAILABLE", Detail: "down"}}
	tests := []struct {
		name string
		fail func(firstHash string) error
		want string
	}{
		{"first batch unanswered", func(string) error { return errors.New("connection refused") }, "explained: connection refused"},
		{"first batch refused", func(string) error { return refused }, "(nothing was imported)"},
		{"later batch unanswered", func(h string) error {
			if h == hashOf(2) {
				return errors.New("connection reset")
			}
			return nil
		}, "sending the batch of lines 4-5 failed (before it: 2 imported, 0 already present, 0 invalid). Run the same command again"},
		{"later batch refused", func(h string) error {
			if h == hashOf(2) {
				return refused
			}
			return nil
		}, "the server refused the batch of lines 4-5: explained: STORE_UNAVAILABLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeServer{fail: tt.fail}
			explain := func(err error) error { return fmt.Errorf("explained: %w", err) }
			_, _, err := runCSV(t, context.Background(), f, csvFile("acc_1", "acc_1", "acc_1", "acc_1", "acc_1", "acc_1"), Options{Batch: 2, Explain: explain})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeServer{fail: func(h string) error {
		if h == hashOf(0) {
			cancel()
		}
		return nil
	}}
	_, _, err := runCSV(t, ctx, f, csvFile("acc_1", "acc_1", "acc_1", "acc_1", "acc_1"), Options{Batch: 2})
	if err == nil || !strings.Contains(err.Error(), "import interrupted at line 2") || !strings.Contains(err.Error(), "Run the same command again") {
		t.Fatalf("got %v", err)
	}
}
