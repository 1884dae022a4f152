package keygate

import (
	"slices"
	"strings"
)

// MaxScopeLen is the longest scope keygate accepts.
const MaxScopeLen = 128

// ValidScope reports whether s is a well-formed scope: segments of letters,
// digits, '-', '_' or '.', separated by ':', where the last segment may be
// the wildcard '*' (and '*' alone grants everything).
func ValidScope(s string) bool {
	if s == "" || len(s) > MaxScopeLen {
		return false
	}
	segs := strings.Split(s, ":")
	for i, seg := range segs {
		if seg == "*" && i == len(segs)-1 {
			continue
		}
		if seg == "" {
			return false
		}
		for j := 0; j < len(seg); j++ {
			c := seg[j]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return false
			}
		}
	}
	return true
}

// NormalizeScopes validates each scope and returns them sorted and without
// duplicates.
func NormalizeScopes(in []string) ([]string, error) {
	if len(in) > MaxScopes {
		return nil, Errorf(EINVALID, "a key holds at most %d scopes.", MaxScopes)
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if !ValidScope(s) {
			return nil, Errorf(EINVALID, "scope %q is invalid: use segments of letters, digits, '-', '_' or '.' separated by ':', optionally ending in ':*' (e.g. weather:read, weather:*).", s)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ScopeGrants reports whether the held scope grants the required one.
// "*" grants everything; "weather:*" grants "weather:read" and
// "weather:forecast:read" but not "weather" itself.
func ScopeGrants(held, required string) bool {
	if held == required || held == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(held, "*"); ok {
		return len(required) > len(prefix) && strings.HasPrefix(required, prefix)
	}
	return false
}

// MissingScope returns the first required scope that none of held grants,
// and whether there is one.
func MissingScope(held, required []string) (string, bool) {
	for _, r := range required {
		granted := false
		for _, h := range held {
			if ScopeGrants(h, r) {
				granted = true
				break
			}
		}
		if !granted {
			return r, true
		}
	}
	return "", false
}
