package keygate_test

import (
	"encoding/json"
	"strings"
	"testing"

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
