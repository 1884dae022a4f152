package problem

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func TestOutcomeStatus(t *testing.T) {
	want := map[keygate.Outcome]int{
		keygate.OutcomeValid: 200, keygate.OutcomeMissingKey: 401, keygate.OutcomeKeyInQuery: 400,
		keygate.OutcomeMalformed: 401, keygate.OutcomeNotFound: 401, keygate.OutcomeRevoked: 401,
		keygate.OutcomeExpired: 401, keygate.OutcomeDisabled: 403, keygate.OutcomeIPNotAllowed: 403,
		keygate.OutcomeInsufficientScope: 403, keygate.OutcomeRateLimited: 429, keygate.OutcomeQuotaExceeded: 429,
		keygate.OutcomeTooManyFailures: 429,
	}
	if len(want) != len(keygate.Outcomes) {
		t.Fatalf("the table covers %d outcomes, keygate has %d", len(want), len(keygate.Outcomes))
	}
	for _, o := range keygate.Outcomes {
		if got := OutcomeStatus(o); got != want[o] {
			t.Errorf("OutcomeStatus(%s): got %d, want %d", o, got, want[o])
		}
		if o == keygate.OutcomeValid {
			continue
		}
		p := FromVerification(&keygate.Verification{Outcome: o, Limits: keygate.LimitResult{RetryAfter: 1500 * time.Millisecond}}, time.Unix(0, 0))
		if p.Detail == "" || p.Title == "" || p.Code != string(o) || p.Status != want[o] {
			t.Errorf("FromVerification(%s): got %+v", o, p)
		}
		if want[o] == 429 && p.RetryAfter != 2 {
			t.Errorf("FromVerification(%s).RetryAfter: got %d, want 2 (rounded up)", o, p.RetryAfter)
		}
	}
}

func TestErrorStatus(t *testing.T) {
	tests := []struct {
		err  error
		want int
		code string
	}{
		{keygate.Errorf(keygate.EINVALID, "bad"), 400, keygate.EINVALID},
		{keygate.Errorf(keygate.EUNAUTHORIZED, "who"), 401, keygate.EUNAUTHORIZED},
		{keygate.Errorf(keygate.EFORBIDDEN, "no"), 403, keygate.EFORBIDDEN},
		{keygate.Errorf(keygate.ENOTFOUND, "gone"), 404, keygate.ENOTFOUND},
		{keygate.Errorf(keygate.ECONFLICT, "clash"), 409, keygate.ECONFLICT},
		{keygate.Errorf(keygate.ETOOLARGE, "big"), 413, keygate.ETOOLARGE},
		{keygate.Unavailable(errors.New("disk on fire")), 503, keygate.EUNAVAILABLE},
		{errors.New("SELECT * FROM secrets"), 500, keygate.EINTERNAL},
	}
	for _, tt := range tests {
		p := FromError(tt.err)
		if p.Status != tt.want || p.Code != tt.code {
			t.Errorf("FromError(%v): got %d %s, want %d %s", tt.err, p.Status, p.Code, tt.want, tt.code)
		}
		if strings.Contains(p.Detail, "disk on fire") || strings.Contains(p.Detail, "SELECT") {
			t.Errorf("FromError(%v): the internal cause leaked into the detail %q", tt.err, p.Detail)
		}
	}
}

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, FromVerification(&keygate.Verification{Outcome: keygate.OutcomeQuotaExceeded, Limits: keygate.LimitResult{QuotaLimit: 1000, RetryAfter: 90 * time.Second}}, time.Date(2026, 11, 28, 23, 58, 30, 0, time.UTC)))
	if rec.Code != 429 || rec.Header().Get("Content-Type") != ContentType || rec.Header().Get("Retry-After") != "90" {
		t.Fatalf("got %d, headers %v", rec.Code, rec.Header())
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"type": "urn:keygate:problem:quota_exceeded", "title": "Daily quota exceeded", "status": 429.0, "code": "QUOTA_EXCEEDED",
		"limit": "quota", "retry_after": 90.0, "reset_at": "2026-11-29T00:00:00Z",
		"detail": "Daily quota of 1000 requests used up. It resets at 00:00 UTC (2026-11-29T00:00:00Z), in 90 second(s).",
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s: got %v, want %v", k, body[k], v)
		}
	}
}

// A 401 names the credentials the endpoint takes (RFC 9110 §11.6.1); no
// other status carries a challenge.
func TestWWWAuthenticate(t *testing.T) {
	tests := []struct {
		p    *Problem
		want string
	}{
		{FromVerification(&keygate.Verification{Outcome: keygate.OutcomeMissingKey}, time.Unix(0, 0)), ChallengeAPIKey},
		{FromVerification(&keygate.Verification{Outcome: keygate.OutcomeRevoked}, time.Unix(0, 0)), ChallengeAPIKey},
		{FromError(keygate.Errorf(keygate.EUNAUTHORIZED, "who")), ChallengeRootKey},
		{&Problem{Status: 401, Code: "UNAUTHORIZED"}, ChallengeRootKey},
		{FromVerification(&keygate.Verification{Outcome: keygate.OutcomeDisabled}, time.Unix(0, 0)), ""},
		{FromError(keygate.Errorf(keygate.EFORBIDDEN, "no")), ""},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		Write(rec, tt.p)
		if got := rec.Header().Get("WWW-Authenticate"); got != tt.want {
			t.Errorf("%s (%d): WWW-Authenticate %q, want %q", tt.p.Code, tt.p.Status, got, tt.want)
		}
	}
}
