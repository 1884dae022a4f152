package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestEscapeCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Acme Inc.", "Acme Inc."},
		{"Zoë – 東京", "Zoë – 東京"},
		{"a\x1b[31mred\x1b[0m", `a\x1b[31mred\x1b[0m`},
		{"line1\r\nline2", `line1\r\nline2`},
		{"tab\there", `tab\there`},
		{"nul\x00byte", `nul\x00byte`},
		{"del\x7f", `del\x7f`},
		{"evil\u202egnp.exe", `evil\u202egnp.exe`},
		{"iso\u2066late\u2069", `iso\u2066late\u2069`},
		{"zero\u200bwidth", `zero\u200bwidth`},
		{"sep\u2028arator", `sep\u2028arator`},
		{"c1\u009bcontrol", `c1\u009bcontrol`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"", ""},
	}
	for _, tt := range tests {
		if got := escapeCell(tt.in); got != tt.want {
			t.Errorf("escapeCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTableEscapesUserInput(t *testing.T) {
	var b bytes.Buffer
	err := table(&b, "ID\tNAME", [][]string{{"acc_1", "\x1b]0;pwned\x07x\nFAKE\tROW\u202e"}})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Count(out, "\n") != 2 {
		t.Fatalf("a cell broke the table into more lines:\n%q", out)
	}
	for _, c := range []string{"\x1b", "\x07", "\u202e", "\t"} {
		if strings.Contains(out, c) {
			t.Errorf("table printed %q raw:\n%q", c, out)
		}
	}
	if !strings.Contains(out, `\x1b]0;pwned\x07x\nFAKE\tROW\u202e`) {
		t.Errorf("the escaped cell is missing:\n%q", out)
	}
}

func TestRedactKeys(t *testing.T) {
	tests := []struct{ in, want string }{
		{`unknown subcommand "keys kg_live_4fQxAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdef"`, `unknown subcommand "keys kg_live_4fQx…"`},
		{"open kgr_live_SeCrEt0123456789: no such file", "open kgr_live_SeCr…: no such file"},
		{"code kginv_uujzpiw22pf4ia65box3zurnmxlpcotz used", "code kginv_uujz… used"},
		{"secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=", "secret whsec_MfKQ…"},
		{"key_01m8h24gba7qgqbkxwqdmc6n7v and acc_01m8h24ga900wkzbnb583mg8ah stay", "key_01m8h24gba7qgqbkxwqdmc6n7v and acc_01m8h24ga900wkzbnb583mg8ah stay"},
		{"kg_live_4fQx…VQwJ (a start and last4)", "kg_live_4fQx…VQwJ (a start and last4)"},
	}
	for _, tt := range tests {
		if got := redactKeys(tt.in); got != tt.want {
			t.Errorf("redactKeys(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
