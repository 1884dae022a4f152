package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/keygate/keygate"
)

// emptyRows returns an import body of n empty rows.
func emptyRows(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"keys":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// An 8 MB body of 2.7 million empty rows is refused after the rows one
// call may hold, with memory for those rows only: the decoder counts rows
// as it reads them instead of decoding the whole array first.
func TestImportRowCapBoundsMemory(t *testing.T) {
	ts := newServer(t)
	h := ts.api.Handler()
	body := emptyRows(8 << 20 / 3)
	if len(body) < 8<<20 {
		t.Fatalf("body is %d bytes", len(body))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req := httptest.NewRequest("POST", "/v1/keys/import", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+ts.rootKey)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	runtime.ReadMemStats(&after)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
	}
	var p problemBody
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code != keygate.EINVALID || !strings.Contains(p.Detail, "10000") {
		t.Fatalf("problem: %+v (%v)", p, err)
	}
	// 10,001 rows of a few hundred bytes, and the decoder's buffer: a few
	// MB. Decoding the whole array first took over a gigabyte.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Fatalf("refusing the body allocated %d MB, want under 64 MB", alloc>>20)
	} else {
		t.Logf("refusing an %d MB body allocated %.1f MB", len(body)>>20, float64(alloc)/(1<<20))
	}
}

func TestImportBodyShapes(t *testing.T) {
	ts := newServer(t)
	tests := []struct {
		body string
		want int
	}{
		{`[]`, 400},
		{`"keys"`, 400},
		{`{"keys":{}}`, 400},
		{`{"keys":[{}],"keys":[{}]}`, 400},
		{`{"keys":[{"nope":1}]}`, 400},
		{`{"other":1}`, 400},
		{`{"keys":[{}]}{}`, 400},
		{`{"keys":[{}]}}`, 400},
		{`{"keys":[{}]`, 400},
		{`{"keys":null}`, 400},
		{`{"atomic":"yes","keys":[]}`, 400},
		{``, 400},
	}
	for _, tt := range tests {
		var p problemBody
		resp := ts.call(t, "POST", "/v1/keys/import", ts.root(), tt.body, &p)
		if resp.StatusCode != tt.want || (tt.want >= 400 && p.Code == "") {
			t.Errorf("%s: got %d %+v, want %d", tt.body, resp.StatusCode, p, tt.want)
		}
	}
	var acct keygate.Account
	ts.call(t, "POST", "/v1/accounts", ts.root(), `{"name":"Acme","email":"ops@acme.test"}`, &acct)
	var res struct{ Inserted int }
	body := `{"atomic":false,"keys":[{"hash":"` + strings.Repeat("cd", 32) + `","account_id":"` + acct.ID + `"}]}`
	if resp := ts.call(t, "POST", "/v1/keys/import", ts.root(), body, &res); resp.StatusCode != 200 || res.Inserted != 1 {
		t.Fatalf("a good import: %d %+v", resp.StatusCode, res)
	}
}
