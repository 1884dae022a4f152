// Package leak implements the receiving side of GitHub's secret-scanning
// partner protocol, and the report format keygate shares with other
// scanners.
//
// GitHub finds a keygate key in a public repository, gist or package and
// POSTs a report — a JSON array of matches, each with the token, its type,
// the URL where it was found and the source — signed with ECDSA P-256 over
// SHA-256 of the raw body. The signature (base64 of its ASN.1 DER form) is
// in the Github-Public-Key-Signature header and the signing key is named by
// Github-Public-Key-Identifier; GitHub publishes its keys as JSON at
// https://api.github.com/meta/public_keys/secret_scanning. A Keyring
// fetches (or reads) those keys and checks signatures; ParseReport reads a
// report; Feedback builds the answer GitHub expects.
//
// The package does no revoking itself: the API decides what a report does.
package leak

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Limits on a report, so that a signed but absurd report (or an unsigned
// one on the root-key route) cannot make keygate do unbounded work.
const (
	// MaxMatches is the most matches one report may carry.
	MaxMatches = 1000
	// MaxTokenLen is the longest token a match may carry; longer ones are
	// not keygate keys and are labelled false positives without a lookup.
	MaxTokenLen = 1024
	// MaxFieldLen bounds a match's type, url and source.
	MaxFieldLen = 2048
)

// KeyPattern is the regular expression a scanner uses to find keygate API
// and root keys with the default prefixes: kg (API keys) and kgr (root
// keys), live or test, a 43-character base62 secret and a 6-character base62
// checksum. Operators who chose another --key-prefix put theirs in place of
// "kgr?".
const KeyPattern = `\bkgr?_(?:live|test)_[0-9A-Za-z]{49}\b`

var keyRE = regexp.MustCompile(KeyPattern)

// Match is one secret found by a scanner.
type Match struct {
	// Token is the secret as found.
	Token string `json:"token"`
	// Type is the scanner's name for the kind of secret, echoed back in
	// the feedback (GitHub sends the name agreed at partner registration).
	Type string `json:"type"`
	// URL is where the secret was found.
	URL string `json:"url"`
	// Source names the kind of place it was found in (GitHub: "content",
	// "commit", "pull_request_description", "gist", "npm", …).
	Source string `json:"source,omitempty"`
}

// Label values of a Feedback.
const (
	TruePositive  = "true_positive"
	FalsePositive = "false_positive"
)

// Feedback tells the scanner what keygate made of one match. TokenHash is
// the SHA-256 of the token in lower-case hex, so the token itself is never
// sent back.
type Feedback struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// NewFeedback returns the feedback for m: a true positive when found is
// true (the token is a key keygate issued or imported), a false positive
// otherwise.
func NewFeedback(m Match, found bool) Feedback {
	sum := sha256.Sum256([]byte(m.Token))
	label := FalsePositive
	if found {
		label = TruePositive
	}
	return Feedback{TokenHash: hex.EncodeToString(sum[:]), TokenType: m.Type, Label: label}
}

// ReportError is the error ParseReport returns for a body it cannot use.
// Its message is safe to show to the sender.
type ReportError struct{ msg string }

func (e *ReportError) Error() string { return e.msg }

func reportErr(format string, args ...any) error {
	return &ReportError{msg: fmt.Sprintf(format, args...)}
}

// ParseReport reads a report: a JSON array of at most MaxMatches objects,
// each with a non-empty string token and optional type, url and source.
// Unknown members are ignored, as GitHub may add some. Tokens are trimmed
// of surrounding white space. Any other shape is a *ReportError.
func ParseReport(body []byte) ([]Match, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		return nil, reportErr("the report must be a JSON array of matches, such as [{\"token\":\"kg_live_…\",\"type\":\"keygate_api_key\",\"url\":\"https://…\",\"source\":\"content\"}]")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // the '['
		return nil, reportErr("the report is not valid JSON")
	}
	var out []Match
	for dec.More() {
		if len(out) == MaxMatches {
			return nil, reportErr("the report holds more than %d matches; send them in several reports", MaxMatches)
		}
		var m Match
		if err := dec.Decode(&m); err != nil {
			return nil, reportErr("match %d is not an object with string members token, type, url and source", len(out))
		}
		m.Token = strings.TrimSpace(m.Token)
		switch {
		case m.Token == "":
			return nil, reportErr("match %d has no token", len(out))
		case len(m.Type) > MaxFieldLen || len(m.URL) > MaxFieldLen || len(m.Source) > MaxFieldLen:
			return nil, reportErr("match %d has a type, url or source longer than %d bytes", len(out), MaxFieldLen)
		}
		out = append(out, m)
	}
	if _, err := dec.Token(); err != nil { // the ']'
		return nil, reportErr("the report is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, reportErr("the report must hold exactly one JSON array")
	}
	if len(out) == 0 {
		return nil, reportErr("the report holds no matches")
	}
	return out, nil
}

// LooksLikeKey reports whether token has the shape of a keygate key with
// the default prefixes (KeyPattern, matched as a whole). Callers still
// parse and look the token up; this only documents and tests the pattern.
func LooksLikeKey(token string) bool {
	loc := keyRE.FindStringIndex(token)
	return loc != nil && loc[0] == 0 && loc[1] == len(token)
}
