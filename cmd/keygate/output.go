package main

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// printJSON prints v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows under a tab-separated header, in aligned columns.
// Every cell is escaped: names, emails and metadata come from users, and a
// terminal must not run the escape sequences or show the reordering they
// may hold.
func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	cells := make([]string, 0, 16)
	for _, r := range rows {
		cells = cells[:0]
		for _, c := range r {
			cells = append(cells, escapeCell(c))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// escapeCell makes s safe to print in a table cell: control characters
// (ESC, CR, LF, tab, NUL, DEL…), Unicode format characters such as bidi
// overrides, line and paragraph separators and invalid UTF-8 become Go
// escapes (\x1b, \n, \u202e); everything graphic stays as it is.
func escapeCell(s string) string {
	if printable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case safeRune(r):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	return b.String()
}

// escapeLine is escapeCell for a line of text such as an error message,
// with anything shaped like a key cut to its start (redactKeys): an error
// may quote an argument, and a key pasted by mistake must not end up in a
// terminal's scrollback or a CI log.
func escapeLine(s string) string { return escapeCell(redactKeys(s)) }

// keyShape matches what looks like a plaintext key or secret: a key
// (prefix_env_secret, root keys included), an invitation code or a
// webhook secret, checksum or not.
var keyShape = regexp.MustCompile(`\b([a-z][a-z0-9]{1,15}_(?:live|test)_[0-9A-Za-z]{4})[0-9A-Za-z]{8,}|\b(kginv_[a-z2-7]{4})[a-z2-7]{8,}|\b(whsec_[A-Za-z0-9+/]{4})[A-Za-z0-9+/=]{8,}`)

// redactKeys replaces every key-shaped string in s with its first
// characters and "…".
func redactKeys(s string) string {
	if !strings.Contains(s, "_") {
		return s
	}
	return keyShape.ReplaceAllString(s, "$1$2$3…")
}

// printable reports whether s needs no escaping.
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !safeRune(r) {
			return false
		}
	}
	return true
}

// safeRune reports whether r prints as itself: a letter, mark, number,
// punctuation, symbol or space. Control characters and format characters
// (bidi overrides, zero-width joiners: Cf) are not.
func safeRune(r rune) bool {
	return unicode.IsGraphic(r)
}

// orDash returns s, or "-" for an empty cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fmtTime prints a time to the minute in UTC, or "-" for none.
func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// fmtDuration writes d without the trailing zero units Go adds (24h, not 24h0m0s).
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// printOnce prints a secret that the server shows in this one answer
// only, what names it ("Key").
func printOnce(w io.Writer, what, secret string) error {
	_, err := fmt.Fprintf(w, "\n%s (shown only this once; store it now):\n\n    %s\n\n", what, secret)
	return err
}

// nextPage tells the user how to get the next page of a list, if any.
func nextPage(w io.Writer, cursor string) error {
	if cursor != "" {
		_, err := fmt.Fprintf(w, "more: add --cursor %s\n", escapeCell(cursor))
		return err
	}
	return nil
}
