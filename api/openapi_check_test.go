package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/internal/apicheck"
)

// errorsTB records the errors a checked handler reports.
type errorsTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (e *errorsTB) Errorf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

// TestCheckOpenAPIReportsMismatches feeds the checker answers that break
// the document in each way it must notice, and one that does not.
func TestCheckOpenAPIReportsMismatches(t *testing.T) {
	ts := newServer(t)
	var tier map[string]any
	ts.call(t, "GET", "/v1/tiers/free", ts.root(), "", &tier)
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range tier {
			m[k] = v
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name         string
		method, path string
		body         string
		status       int
		ctype        string
		answer       any
		want         string // in the error; "" for none
	}{
		{"documented answer", "GET", "/v1/tiers/free", "", 200, "application/json", tier, ""},
		{"undocumented route", "GET", "/v1/nowhere", "", 200, "application/json", map[string]any{}, "is not in the document"},
		{"unknown path answered 404", "GET", "/v1/nowhere", "", 404, "application/problem+json",
			map[string]any{"type": "urn:keygate:problem:resource_not_found", "title": "Not found", "status": 404, "detail": "No.", "code": "RESOURCE_NOT_FOUND"}, ""},
		{"404 that is no problem", "GET", "/v1/nowhere", "", 404, "text/plain", "no", "want application/problem+json"},
		{"required field missing", "GET", "/v1/tiers/free", "", 200, "application/json", with("burst", nil), "burst"},
		{"wrong type", "GET", "/v1/tiers/free", "", 200, "application/json", with("burst", "ten"), "burst"},
		{"undocumented field", "GET", "/v1/tiers/free", "", 200, "application/json", with("surprise", 1), "/surprise"},
		{"undocumented status", "GET", "/v1/tiers/free", "", 418, "application/json", tier, "status 418"},
		{"invalid request accepted", "POST", "/v1/tiers", `{"name":"x"}`, 201, "application/json", tier, "calls invalid"},
		{"invalid request refused", "POST", "/v1/tiers", `{"name":"x"}`, 400, "application/problem+json",
			map[string]any{"type": "urn:keygate:problem:invalid_request", "title": "Invalid request", "status": 400, "detail": "No.", "code": "INVALID_REQUEST"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &errorsTB{TB: t}
			h := apicheck.Handler(rec, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				w.WriteHeader(tt.status)
				json.NewEncoder(w).Encode(tt.answer)
			}))
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			switch {
			case tt.want == "" && len(rec.errs) > 0:
				t.Errorf("got %q, want no error", rec.errs)
			case tt.want != "" && (len(rec.errs) != 1 || !strings.Contains(rec.errs[0], tt.want)):
				t.Errorf("got %q, want one error mentioning %q", rec.errs, tt.want)
			}
		})
	}
}
