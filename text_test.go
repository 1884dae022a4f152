package keygate_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keygate/keygate"
)

func TestCheckTextRefusesControlCharacters(t *testing.T) {
	bad := map[string]string{
		"NUL": "a\x00b", "ESC": "red\x1b[31m", "CR": "a\rb", "LF": "a\nb", "tab": "a\tb", "DEL": "a\x7f",
		"C1 CSI": "a\u009b2J", "C1 NEL": "a\u0085", "LRE": "a\u202a", "RLO": "evil\u202egnp.exe", "PDF": "\u202c",
		"LRI": "\u2066x", "PDI": "x\u2069", "line separator": "a\u2028b", "paragraph separator": "a\u2029b",
		"invalid UTF-8": "bad\xffbyte",
	}
	for name, s := range bad {
		err := keygate.CheckText("name", s)
		if keygate.ErrorCode(err) != keygate.EINVALID {
			t.Errorf("%s: CheckText(%q) = %v, want EINVALID", name, s, err)
			continue
		}
		if msg := keygate.ErrorMessage(err); !strings.HasPrefix(msg, "name ") {
			t.Errorf("%s: the message does not name the field: %q", name, msg)
		}
	}
	for _, s := range []string{"", "Acme Inc.", "Zoë – 東京 🚀", "dev+tag@example.com", "a\u200db (ZWJ is not an override)"} {
		if err := keygate.CheckText("name", s); err != nil {
			t.Errorf("CheckText(%q) = %v, want nil", s, err)
		}
	}
}

func TestValidationRefusesControlCharactersInEveryField(t *testing.T) {
	acc := func(name, email string) error {
		a := &keygate.Account{Name: name, Email: email, Tier: "free"}
		return a.Validate()
	}
	key := func(name, meta string) error {
		k := &keygate.Key{Name: name, Env: keygate.EnvLive, Meta: json.RawMessage(meta)}
		return k.Validate()
	}
	tests := []struct {
		what  string
		err   error
		field string
	}{
		{"account name", acc("Bob\x1b]0;pwned\x07", "bob@example.com"), "name"},
		{"account name with RLO", acc("Bob\u202e", "bob@example.com"), "name"},
		{"key name", key("ci\nFAKE LINE", ""), "name"},
		{"meta value (raw)", key("k", "{\"plan\":\"beta\u202e\"}"), "meta.plan"},
		{"meta value (JSON escape)", key("k", `{"plan":"a\u001b[2J"}`), "meta.plan"},
		{"meta key", key("k", `{"pl\u0000an":"beta"}`), "meta key"},
		{"nested meta value", key("k", `{"a":{"b":["ok","\r"]}}`), "meta.a.b[1]"},
	}
	for _, tt := range tests {
		if keygate.ErrorCode(tt.err) != keygate.EINVALID || !strings.HasPrefix(keygate.ErrorMessage(tt.err), tt.field+" ") {
			t.Errorf("%s: got %v, want EINVALID naming %q", tt.what, tt.err, tt.field)
		}
	}
	if err := acc("Zoë 東京", "zoe@example.com"); err != nil {
		t.Errorf("a printable name was refused: %v", err)
	}
	if err := key("ci", `{"team":"Zoë","n":[1,"x"]}`); err != nil {
		t.Errorf("printable meta was refused: %v", err)
	}
}

// FuzzCheckText checks that CheckText never panics, that what it accepts
// holds no character it must refuse, and that metadata it accepts as JSON
// holds none once decoded.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{"", "Acme", "a\x1b[31m", "evil\u202e", "\u2066x\u2069", "bad\xff", "\u0085", "東京", `{"a":"\u001b"}`, `{"k\u202e":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := keygate.CheckText("name", s); err == nil {
			if !utf8.ValidString(s) {
				t.Fatalf("accepted invalid UTF-8 %q", s)
			}
			for _, r := range s {
				if keygate.UnsafeRune(r) {
					t.Fatalf("accepted %q holding %U", s, r)
				}
			}
		} else if keygate.ErrorCode(err) != keygate.EINVALID {
			t.Fatalf("CheckText(%q): %v, want EINVALID", s, err)
		}
		if !json.Valid([]byte(s)) {
			return
		}
		if err := keygate.CheckJSONText("meta", json.RawMessage(s)); err == nil {
			var v any
			_ = json.Unmarshal([]byte(s), &v)
			b, _ := json.Marshal(v)
			// Marshal escapes what it must as \u00XX and keeps the rest;
			// U+2028/2029 it escapes too, so look at the decoded strings.
			if strings.ContainsAny(fmt.Sprint(v), "\x00\x1b\r\n\u202e\u2066\u0085") {
				t.Fatalf("CheckJSONText accepted %q (%s)", s, b)
			}
		}
	})
}
