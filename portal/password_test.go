package portal

import (
	"strings"
	"testing"
)

// testParams keep tests fast; the format and the checks are the same.
var testParams = PasswordParams{Memory: 64, Time: 1, Threads: 1}

func TestPasswordRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse battery", testParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("HashPassword: got %q, want a PHC argon2id string with the given costs", h)
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		got, err := CheckPassword(h, pw)
		if err != nil || got != want {
			t.Errorf("CheckPassword(%q): got %v, %v; want %v, nil", pw, got, err, want)
		}
	}
	h2, _ := HashPassword("correct horse battery", testParams)
	if h2 == h {
		t.Errorf("two hashes of one password are equal: the salt is not random")
	}
}

func TestPasswordDefaultParams(t *testing.T) {
	h, err := HashPassword("a long enough password", DefaultPasswordParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("HashPassword: got %q, want OWASP's argon2id costs", h)
	}
	if ok, err := CheckPassword(h, "a long enough password"); !ok || err != nil {
		t.Errorf("CheckPassword: got %v, %v; want true, nil", ok, err)
	}
}

func TestCheckPasswordRefusesBadHashes(t *testing.T) {
	good, _ := HashPassword("x", testParams)
	parts := strings.Split(good, "$")
	for _, h := range []string{
		"",
		"$2a$10$abcdefghijklmnopqrstuv", // bcrypt
		"$argon2i$v=19$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=16$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + parts[4] + "$" + parts[5], // absurd memory
		"$argon2id$v=19$m=64,t=1000,p=1$" + parts[4] + "$" + parts[5],      // absurd time
		"$argon2id$v=19$m=64,t=1,p=1$!!$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$",
	} {
		if ok, err := CheckPassword(h, "x"); ok || err == nil {
			t.Errorf("CheckPassword(%q): got %v, %v; want false and an error", h, ok, err)
		}
	}
}
