package keygate

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// CheckText reports, as an EINVALID *Error naming field, the first
// character of s that could rewrite a terminal or a log line when s is
// printed: invalid UTF-8, the C0 controls (NUL, ESC, CR, LF, tab…), DEL,
// the C1 controls (U+0080–U+009F), the line and paragraph separators
// (U+2028, U+2029) and the bidirectional overrides, embeddings and
// isolates (U+202A–U+202E, U+2066–U+2069). Names, emails, metadata,
// reasons and notes all pass through it, whichever way they arrive (API,
// portal, import).
func CheckText(field, s string) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return Errorf(EINVALID, "%s is not valid UTF-8 (at byte %d).", field, i)
			}
		}
		if UnsafeRune(r) {
			return Errorf(EINVALID, "%s holds the control character %s at byte %d; control characters, line breaks and bidirectional overrides are not allowed.", field, runeName(r), i)
		}
	}
	return nil
}

// UnsafeRune reports whether r is a character CheckText refuses.
func UnsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

func runeName(r rune) string {
	return fmt.Sprintf("U+%04X", r)
}

// checkJSONText runs CheckText over every object key and string value in
// the JSON document v (decoded with encoding/json), naming the path.
func checkJSONText(field string, v any) error {
	switch t := v.(type) {
	case string:
		return CheckText(field, t)
	case map[string]any:
		for k, e := range t {
			if err := CheckText(field+" key", k); err != nil {
				return err
			}
			if err := checkJSONText(field+"."+k, e); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range t {
			if err := checkJSONText(fmt.Sprintf("%s[%d]", field, i), e); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckJSONText runs CheckText over every key and string value of the JSON
// document raw, which must be valid JSON. JSON escapes such as \u001b are
// decoded first, so they are caught too.
func CheckJSONText(field string, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return Errorf(EINVALID, "%s is not valid JSON.", field)
	}
	return checkJSONText(field, v)
}
