package apicheck

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestDocumentIsValid loads api/openapi.json with kin-openapi, which
// validates it as an OpenAPI 3.1 document.
func TestDocumentIsValid(t *testing.T) {
	if err := Load(); err != nil {
		t.Fatal(err)
	}
}

func TestCovers(t *testing.T) {
	for path, want := range map[string]bool{
		"/v1/keys":         true,
		"/v1/keys/key_x":   true,
		"/v1/nowhere":      true, // must answer a 404 problem
		"/healthz":         true,
		"/readyz":          true,
		"/metrics":         true,
		"/demo/weather":    true,
		"/":                false,
		"/v1":              false,
		"/v1x/keys":        false,
		"/healthz/extra":   false,
		"/portal/keys":     false,
		"/weather":         false,
		"/upstream/v1/abc": false,
	} {
		if got := Covers(path); got != want {
			t.Errorf("Covers(%q) = %v, want %v", path, got, want)
		}
	}
}

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

// TestCoveredChecksOnlyTheAPI sends the same undocumented answer to a
// path the document covers, which must be reported, and to paths it does
// not, which must pass through unchanged and unreported.
func TestCoveredChecksOnlyTheAPI(t *testing.T) {
	for _, tt := range []struct {
		path     string
		reported bool
	}{
		{"/healthz", true},
		{"/v1/keys", true},
		{"/portal/keys", false},
		{"/weather", false},
	} {
		t.Run(tt.path, func(t *testing.T) {
			rec := &errorsTB{TB: t}
			h := Covered(rec, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("X-Upstream", "yes")
				w.WriteHeader(http.StatusTeapot)
				w.Write([]byte("short and stout"))
			}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
			if w.Code != http.StatusTeapot || w.Body.String() != "short and stout" || w.Header().Get("X-Upstream") != "yes" {
				t.Errorf("the answer was changed on its way: %d %q %v", w.Code, w.Body, w.Header())
			}
			if got := len(rec.errs) > 0; got != tt.reported {
				t.Errorf("reported: %v, want %v: %s", got, tt.reported, strings.Join(rec.errs, "\n"))
			}
			if tt.reported && !strings.Contains(strings.Join(rec.errs, ""), "status 418") {
				t.Errorf("the report does not name the status: %s", rec.errs)
			}
		})
	}
}
