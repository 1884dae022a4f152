// Package problem renders every error keygate answers with as an
// application/problem+json body (RFC 9457), and is the one place that
// chooses the HTTP status for an error code or a verification outcome.
package problem

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// ContentType is the media type of problem bodies.
const ContentType = "application/problem+json"

// Problem is an RFC 9457 problem details body with keygate's extension
// members. Code is the stable, machine-readable field clients switch on.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`

	// Extension members, set where they apply.
	MissingScope string `json:"missing_scope,omitempty"`
	Limit        string `json:"limit,omitempty"` // "rate" or "quota": which limit was hit
	RetryAfter   int64  `json:"retry_after,omitempty"`
	ResetAt      string `json:"reset_at,omitempty"` // RFC 3339, when the limit frees up

	// Challenge is the WWW-Authenticate field Write sends with a 401
	// (RFC 9110 §11.6.1): which credentials the endpoint takes.
	Challenge string `json:"-"`
}

// Challenges sent with 401 answers: API-key endpoints take a key in
// X-API-Key or as a bearer token; admin endpoints take a root key as a
// bearer token.
const (
	ChallengeAPIKey  = `ApiKey header="X-API-Key", Bearer realm="keygate"`
	ChallengeRootKey = `Bearer realm="keygate"`
)

// TypeURI returns the problem type URI for a code.
func TypeURI(code string) string { return "urn:keygate:problem:" + strings.ToLower(code) }

// Status returns the HTTP status for an application error code.
func Status(code string) int {
	switch code {
	case keygate.EINVALID:
		return http.StatusBadRequest
	case keygate.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case keygate.EFORBIDDEN:
		return http.StatusForbidden
	case keygate.ENOTFOUND:
		return http.StatusNotFound
	case keygate.ECONFLICT:
		return http.StatusConflict
	case keygate.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case keygate.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case keygate.ETOOMANY, string(keygate.OutcomeTooManyFailures):
		return http.StatusTooManyRequests
	case keygate.EMETHOD:
		return http.StatusMethodNotAllowed
	case keygate.EUPSTREAM:
		return http.StatusBadGateway
	case keygate.EUPSTREAMTIMEOUT:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// OutcomeStatus returns the HTTP status a refused keyed request gets for a
// verification outcome (the table in README, "Verification outcomes").
// VALID has none of its own: the request goes through and the handler
// answers.
func OutcomeStatus(o keygate.Outcome) int {
	switch o {
	case keygate.OutcomeValid:
		return http.StatusOK
	case keygate.OutcomeKeyInQuery:
		return http.StatusBadRequest
	case keygate.OutcomeMissingKey, keygate.OutcomeMalformed, keygate.OutcomeNotFound,
		keygate.OutcomeRevoked, keygate.OutcomeExpired:
		return http.StatusUnauthorized
	case keygate.OutcomeDisabled, keygate.OutcomeIPNotAllowed, keygate.OutcomeInsufficientScope:
		return http.StatusForbidden
	case keygate.OutcomeRateLimited, keygate.OutcomeQuotaExceeded, keygate.OutcomeTooManyFailures:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

var titles = map[string]string{
	keygate.EINVALID:         "Invalid request",
	keygate.EUNAUTHORIZED:    "Unauthorized",
	keygate.EFORBIDDEN:       "Forbidden",
	keygate.ENOTFOUND:        "Not found",
	keygate.ECONFLICT:        "Conflict",
	keygate.ETOOLARGE:        "Request body too large",
	keygate.EUNAVAILABLE:     "Service unavailable",
	keygate.EINTERNAL:        "Internal error",
	keygate.ETOOMANY:         "Too many requests",
	keygate.EMETHOD:          "Method not allowed",
	keygate.EUPSTREAM:        "Upstream unavailable",
	keygate.EUPSTREAMTIMEOUT: "Upstream timeout",

	string(keygate.OutcomeMissingKey):        "API key missing",
	string(keygate.OutcomeKeyInQuery):        "API key in URL",
	string(keygate.OutcomeMalformed):         "API key malformed",
	string(keygate.OutcomeNotFound):          "API key not found",
	string(keygate.OutcomeRevoked):           "API key revoked",
	string(keygate.OutcomeExpired):           "API key expired",
	string(keygate.OutcomeDisabled):          "API key disabled",
	string(keygate.OutcomeIPNotAllowed):      "IP address not allowed",
	string(keygate.OutcomeInsufficientScope): "Insufficient scope",
	string(keygate.OutcomeRateLimited):       "Rate limit exceeded",
	string(keygate.OutcomeQuotaExceeded):     "Daily quota exceeded",
	string(keygate.OutcomeTooManyFailures):   "Too many failed attempts",
}

// FromError returns the problem for an application error. Only the
// error's client-safe message reaches the body.
func FromError(err error) *Problem {
	code := keygate.ErrorCode(err)
	p := &Problem{
		Type:   TypeURI(code),
		Title:  titles[code],
		Status: Status(code),
		Detail: keygate.ErrorMessage(err),
		Code:   code,
	}
	if p.Status == http.StatusUnauthorized {
		p.Challenge = ChallengeRootKey
	}
	if d := keygate.ErrorRetryAfter(err); d > 0 && p.Status == http.StatusTooManyRequests {
		p.setRetry(d, time.Now())
	}
	return p
}

// FromVerification returns the problem for a refused verification, with a
// detail that tells the client what to do.
func FromVerification(v *keygate.Verification, now time.Time) *Problem {
	code := string(v.Outcome)
	p := &Problem{Type: TypeURI(code), Title: titles[code], Status: OutcomeStatus(v.Outcome), Code: code}
	if p.Status == http.StatusUnauthorized {
		p.Challenge = ChallengeAPIKey
	}
	switch v.Outcome {
	case keygate.OutcomeMissingKey:
		p.Detail = "No API key was sent. Send your key in the X-API-Key header (or Authorization: Bearer)."
	case keygate.OutcomeKeyInQuery:
		p.Detail = "An API key was sent in the URL query, where it ends up in logs and browser history. Send it in the X-API-Key header instead, and rotate the key if the URL was shared."
	case keygate.OutcomeMalformed:
		p.Detail = "The API key is not well-formed or its checksum does not match. Check that you copied the whole key."
	case keygate.OutcomeNotFound:
		p.Detail = "The API key is not known. Check the key, or create a new one."
	case keygate.OutcomeRevoked:
		p.Detail = "The API key has been revoked. Use a current key, or create a new one."
	case keygate.OutcomeExpired:
		p.Detail = "The API key has expired. Create a new key."
		if v.Key != nil && v.Key.ExpiresAt != nil {
			p.Detail = fmt.Sprintf("The API key expired at %s. Create a new key.", v.Key.ExpiresAt.UTC().Format(time.RFC3339))
		}
	case keygate.OutcomeDisabled:
		p.Detail = "The API key is disabled. Contact the API's operator to enable it."
	case keygate.OutcomeIPNotAllowed:
		p.Detail = "The API key may not be used from this IP address. Call from an allowed network, or ask for your address to be added to the key's allowlist."
	case keygate.OutcomeInsufficientScope:
		p.MissingScope = v.MissingScope
		p.Detail = fmt.Sprintf("The API key lacks the scope %q that this request requires. Use a key that holds it.", v.MissingScope)
	case keygate.OutcomeRateLimited:
		p.Limit = "rate"
		p.setRetry(v.Limits.RetryAfter, now)
		p.Detail = fmt.Sprintf("Rate limit of %s requests per second (burst %d) exceeded. Retry after %d second(s).",
			formatRate(v.Limits.RatePerSecond), v.Limits.RateLimit, p.RetryAfter)
	case keygate.OutcomeQuotaExceeded:
		p.Limit = "quota"
		p.setRetry(v.Limits.RetryAfter, now)
		p.Detail = fmt.Sprintf("Daily quota of %d requests used up. It resets at 00:00 UTC (%s), in %d second(s).",
			v.Limits.QuotaLimit, p.ResetAt, p.RetryAfter)
	case keygate.OutcomeTooManyFailures:
		p.setRetry(v.Limits.RetryAfter, now)
		p.Detail = fmt.Sprintf("Too many requests with invalid API keys came from this address. Retry after %d second(s) with a valid key.", p.RetryAfter)
	}
	return p
}

func (p *Problem) setRetry(d time.Duration, now time.Time) {
	p.RetryAfter = max(keygate.CeilSeconds(d), 1)
	p.ResetAt = now.Add(time.Duration(p.RetryAfter) * time.Second).UTC().Format(time.RFC3339)
}

func formatRate(r float64) string { return strconv.FormatFloat(r, 'f', -1, 64) }

// Write writes p with its status, the problem+json content type and, when
// the problem carries one, a Retry-After header; a 401 carries
// WWW-Authenticate (ChallengeRootKey when p.Challenge is unset).
func Write(w http.ResponseWriter, p *Problem) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(p.RetryAfter, 10))
	}
	if p.Status == http.StatusUnauthorized {
		c := p.Challenge
		if c == "" {
			c = ChallengeRootKey
		}
		h.Set("WWW-Authenticate", c)
	}
	w.WriteHeader(p.Status)
	// The body is plain data; an encoding error can only be a broken
	// connection, which the caller cannot act on.
	_ = json.NewEncoder(w).Encode(p)
}
