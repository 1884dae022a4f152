package keygate

import (
	"errors"
	"fmt"
	"time"
)

// Error codes for application errors. Each code maps to exactly one HTTP
// status, in problem.Status; nothing else decides a status.
const (
	EINVALID      = "INVALID_REQUEST"    // the request is malformed or fails validation
	ENOTFOUND     = "RESOURCE_NOT_FOUND" // the named resource does not exist
	ECONFLICT     = "CONFLICT"           // the change clashes with existing state
	EUNAUTHORIZED = "UNAUTHORIZED"       // no valid root key or session
	EFORBIDDEN    = "FORBIDDEN"          // authenticated, but not allowed to do this
	EMETHOD       = "METHOD_NOT_ALLOWED" // the path exists, but not for this method
	ETOOLARGE     = "BODY_TOO_LARGE"     // the request body exceeds the limit
	EUNAVAILABLE  = "STORE_UNAVAILABLE"  // the store cannot take writes right now
	EINTERNAL     = "INTERNAL"           // a bug or an unexpected failure
	ETOOMANY      = "TOO_MANY_REQUESTS"  // this client did this too often; Error.RetryAfter says when to retry

	// Gateway errors: the upstream API could not be reached, or did not
	// answer within --upstream-timeout.
	EUPSTREAM        = "UPSTREAM_UNAVAILABLE"
	EUPSTREAMTIMEOUT = "UPSTREAM_TIMEOUT"
)

// Error is keygate's one application error type. Code is machine-readable;
// Message is safe to show to the client and tells it what to do. Anything
// that must not reach the client (SQL, paths) stays in the wrapped Err and
// goes only to the log.
type Error struct {
	Code    string
	Message string
	Err     error
	// RetryAfter, when set, tells the client how long to wait before
	// trying again (the Retry-After header of a 429).
	RetryAfter time.Duration
}

// Error returns the client-safe message, followed by the internal cause when
// there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("keygate: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("keygate: %s: %s", e.Code, e.Message)
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps a store failure as EUNAVAILABLE, keeping the cause for
// the log.
func Unavailable(err error) *Error {
	return &Error{Code: EUNAVAILABLE, Message: "The key store is unavailable; retry in a few seconds.", Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of the first *Error in err's
// chain, or a generic message for any other error.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error occurred; it has been logged."
}

// ErrorRetryAfter returns the RetryAfter of the first *Error in err's
// chain, or 0.
func ErrorRetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
