package keygate

// Outcome is the result code of one key verification.
type Outcome string

// Verification outcomes, in the order the checks run (docs/ARCHITECTURE.md).
// The HTTP status of each is chosen in problem.OutcomeStatus, and only there.
const (
	OutcomeValid             Outcome = "VALID"
	OutcomeMissingKey        Outcome = "MISSING_KEY"
	OutcomeKeyInQuery        Outcome = "KEY_IN_QUERY"
	OutcomeMalformed         Outcome = "MALFORMED"
	OutcomeNotFound          Outcome = "NOT_FOUND"
	OutcomeRevoked           Outcome = "REVOKED"
	OutcomeExpired           Outcome = "EXPIRED"
	OutcomeDisabled          Outcome = "DISABLED"
	OutcomeIPNotAllowed      Outcome = "IP_NOT_ALLOWED"
	OutcomeInsufficientScope Outcome = "INSUFFICIENT_SCOPE"
	OutcomeRateLimited       Outcome = "RATE_LIMITED"
	OutcomeQuotaExceeded     Outcome = "QUOTA_EXCEEDED"
	OutcomeTooManyFailures   Outcome = "TOO_MANY_FAILURES"
)

// Outcomes lists every outcome.
var Outcomes = []Outcome{
	OutcomeValid, OutcomeMissingKey, OutcomeKeyInQuery, OutcomeMalformed,
	OutcomeNotFound, OutcomeRevoked, OutcomeExpired, OutcomeDisabled,
	OutcomeIPNotAllowed, OutcomeInsufficientScope, OutcomeRateLimited,
	OutcomeQuotaExceeded, OutcomeTooManyFailures,
}

// AuthFailure reports whether o means the caller failed to authenticate:
// such outcomes never count against a key's quota, and they feed the
// per-IP failure throttle.
func (o Outcome) AuthFailure() bool {
	switch o {
	case OutcomeMissingKey, OutcomeKeyInQuery, OutcomeMalformed, OutcomeNotFound,
		OutcomeRevoked, OutcomeExpired:
		return true
	}
	return false
}
