package apikey

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"math/big"
	"math/bits"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate"
)

// The known vectors pin the format. Their checksums were computed once
// with Python, independently of this package:
//
//	python3 -c "import zlib; A='0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
//	def b62(n,w):
//	    s=''
//	    while n: s=A[n%62]+s; n//=62
//	    return s.rjust(w,'0')
//	b='kg_live_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg'; print(b62(zlib.crc32(b.encode()),6))"
//
// prints 4USyQz (CRC32 0xf541bff9); for "kgr_test_" followed by 43 zeros
// it prints 3iZBmV (CRC32 0xcb11d733).
const (
	vectorSecret   = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg"
	vectorChecksum = "4USyQz"
	vectorKey      = "kg_live_" + vectorSecret + vectorChecksum
	rootVectorKey  = "kgr_test_" + "0000000000000000000000000000000000000000000" + "3iZBmV"
)

// refBase62 encodes n in base62 (0-9A-Za-z), left-padded with '0' to width,
// using math/big rather than this package's code, so the tests check the
// package against an independent implementation. math/big's base 62 puts
// lower case before upper case, so the cases are swapped.
func refBase62(n *big.Int, width int) string {
	t := []byte(n.Text(62))
	for i, c := range t {
		switch {
		case 'a' <= c && c <= 'z':
			t[i] = c - 'a' + 'A'
		case 'A' <= c && c <= 'Z':
			t[i] = c - 'A' + 'a'
		}
	}
	return strings.Repeat("0", max(0, width-len(t))) + string(t)
}

// refDecode62 is the inverse of refBase62.
func refDecode62(s string) (*big.Int, bool) {
	t := []byte(s)
	for i, c := range t {
		switch {
		case 'a' <= c && c <= 'z':
			t[i] = c - 'a' + 'A'
		case 'A' <= c && c <= 'Z':
			t[i] = c - 'A' + 'a'
		}
	}
	return new(big.Int).SetString(string(t), 62)
}

// refChecksum is the checksum of body by the reference implementation.
func refChecksum(body string) string {
	return refBase62(new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(body)))), ChecksumLen)
}

// makeKey assembles a key with a correct checksum from parts that may be
// malformed, so that a test case fails on its shape alone.
func makeKey(prefix, env, secret string) string {
	body := prefix + "_" + env + "_" + secret
	return body + refChecksum(body)
}

func allBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(alphabet, rune(s[i])) {
			return false
		}
	}
	return true
}

func TestKnownVector(t *testing.T) {
	if got := refChecksum("kg_live_" + vectorSecret); got != vectorChecksum {
		t.Fatalf("reference checksum: got %q, want %q", got, vectorChecksum)
	}
	var sum [ChecksumLen]byte
	encodeChecksum(&sum, crc32.ChecksumIEEE([]byte("kg_live_"+vectorSecret)))
	if got := string(sum[:]); got != vectorChecksum {
		t.Errorf("encodeChecksum: got %q, want %q", got, vectorChecksum)
	}
	for _, key := range []string{vectorKey, rootVectorKey} {
		if _, err := Parse(key); err != nil {
			t.Errorf("Parse(%q): got %v, want nil", key, err)
		}
	}
}

func TestEncodeChecksum(t *testing.T) {
	for _, c := range []uint32{0, 1, 61, 62, 3843, 3844, 1 << 31, 0xf541bff9, 0xffffffff} {
		var sum [ChecksumLen]byte
		encodeChecksum(&sum, c)
		if got, want := string(sum[:]), refBase62(new(big.Int).SetUint64(uint64(c)), ChecksumLen); got != want {
			t.Errorf("encodeChecksum(%#x): got %q, want %q", c, got, want)
		}
	}
}

func TestEncodeSecret(t *testing.T) {
	var zero, ones, ramp [secretBytes]byte
	for i := range ones {
		ones[i] = 0xff
		ramp[i] = byte(i)
	}
	tests := []struct {
		name string
		raw  [secretBytes]byte
		want string
	}{
		// Computed with Python: b62(int.from_bytes(raw, 'big'), 43).
		{"zero", zero, "0000000000000000000000000000000000000000000"},
		{"max", ones, "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1"},
		{"ramp", ramp, "003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf"},
	}
	for range 100 {
		var raw [secretBytes]byte
		rand.Read(raw[:])
		tests = append(tests, struct {
			name string
			raw  [secretBytes]byte
			want string
		}{"random " + hex.EncodeToString(raw[:]), raw, refBase62(new(big.Int).SetBytes(raw[:]), SecretLen)})
	}
	for _, tt := range tests {
		var got [SecretLen]byte
		raw := tt.raw
		encodeSecret(&got, &raw)
		if string(got[:]) != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got[:], tt.want)
		}
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	for _, prefix := range []string{DefaultPrefix, RootPrefix, "doda", "a1", "abcdefghijklmnop"} {
		for _, env := range []keygate.Env{keygate.EnvLive, keygate.EnvTest} {
			key, err := Generate(prefix, env)
			if err != nil {
				t.Fatalf("Generate(%q, %q): %v", prefix, env, err)
			}
			if got, want := len(key), len(prefix)+1+len(env)+1+SecretLen+ChecksumLen; got != want {
				t.Errorf("len(%q): got %d, want %d", key, got, want)
			}
			p, err := Parse(key)
			if err != nil {
				t.Fatalf("Parse(%q): got %v, want nil", key, err)
			}
			if p.Prefix != prefix || p.Env != env {
				t.Errorf("Parse(%q): got prefix %q env %q, want %q %q", key, p.Prefix, p.Env, prefix, env)
			}
			if len(p.Secret) != SecretLen || !allBase62(p.Secret) {
				t.Errorf("secret %q: got %d characters, want %d, all base62", p.Secret, len(p.Secret), SecretLen)
			}
			body := key[:len(key)-ChecksumLen]
			if got, want := key[len(key)-ChecksumLen:], refChecksum(body); got != want {
				t.Errorf("checksum of %q: got %q, want %q", key, got, want)
			}
			if got, want := Start(key), prefix+"_"+string(env)+"_"+p.Secret[:4]; got != want {
				t.Errorf("Start(%q): got %q, want %q", key, got, want)
			}
			if got, want := Last4(key), key[len(key)-4:]; got != want {
				t.Errorf("Last4(%q): got %q, want %q", key, got, want)
			}
		}
	}
}

func TestGenerateRejects(t *testing.T) {
	tests := []struct {
		prefix string
		env    keygate.Env
	}{
		{"", keygate.EnvLive},
		{"k", keygate.EnvLive},
		{"Kg", keygate.EnvLive},
		{"1kg", keygate.EnvLive},
		{"kg_", keygate.EnvLive},
		{"k-g", keygate.EnvLive},
		{"ké", keygate.EnvLive},
		{"abcdefghijklmnopq", keygate.EnvLive}, // 17
		{"kg", ""},
		{"kg", "prod"},
		{"kg", "LIVE"},
		{"kg", "live_"},
	}
	for _, tt := range tests {
		key, err := Generate(tt.prefix, tt.env)
		if got := keygate.ErrorCode(err); got != keygate.EINVALID {
			t.Errorf("Generate(%q, %q): got error %v (code %q), want code %q", tt.prefix, tt.env, err, got, keygate.EINVALID)
		}
		if key != "" {
			t.Errorf("Generate(%q, %q): got key %q, want none", tt.prefix, tt.env, key)
		}
	}
}

func TestGenerateUnique(t *testing.T) {
	const n = 10000
	seen := make(map[string]bool, n)
	for range n {
		key, err := Generate(DefaultPrefix, keygate.EnvLive)
		if err != nil {
			t.Fatal(err)
		}
		if seen[key] {
			t.Fatalf("Generate returned %q twice", key)
		}
		seen[key] = true
	}
}

// TestGenerateEntropy checks that the secret carries 256 random bits: each
// decodes to a number below 2^256, every one of the 256 bits is set in some
// secret, and on average half of them are set. With 1000 keys a bit is
// never set with probability 2^-1000, and the mean is more than 15 standard
// deviations inside the bounds, so the test does not flake.
func TestGenerateEntropy(t *testing.T) {
	const n = 1000
	var or [secretBytes]byte
	ones := 0
	for range n {
		key, err := Generate(DefaultPrefix, keygate.EnvTest)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(key)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := refDecode62(p.Secret)
		if !ok || v.BitLen() > 8*secretBytes {
			t.Fatalf("secret %q: got %d bits, want at most %d", p.Secret, v.BitLen(), 8*secretBytes)
		}
		var raw [secretBytes]byte
		v.FillBytes(raw[:])
		for i, b := range raw {
			or[i] |= b
			ones += bits.OnesCount8(b)
		}
	}
	for i, b := range or {
		if b != 0xff {
			t.Errorf("byte %d of the secret: got bits %08b set across %d keys, want all", i, b, n)
		}
	}
	if mean := float64(ones) / n; mean < 124 || mean > 132 {
		t.Errorf("mean bits set per secret: got %.2f, want about 128", mean)
	}
}

func TestValidPrefix(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"kg", true},
		{"kgr", true},
		{"a1", true},
		{"doda", true},
		{"abcdefghijklmnop", true},
		{"", false},
		{"k", false},
		{"abcdefghijklmnopq", false},
		{"Kg", false},
		{"kG", false},
		{"1a", false},
		{"k_", false},
		{"k-g", false},
		{"ké", false},
	}
	for _, tt := range tests {
		if got := ValidPrefix(tt.in); got != tt.want {
			t.Errorf("ValidPrefix(%q): got %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	secret128 := strings.Repeat("Az09", 32)
	tests := []struct {
		name    string
		in      string
		want    Parts
		wantErr error
	}{
		{"valid", vectorKey, Parts{"kg", keygate.EnvLive, vectorSecret}, nil},
		{"valid root test key", rootVectorKey, Parts{"kgr", keygate.EnvTest, strings.Repeat("0", 43)}, nil},
		{"valid 16-char prefix", makeKey("abcdefghijklmnop", "live", vectorSecret), Parts{"abcdefghijklmnop", keygate.EnvLive, vectorSecret}, nil},
		{"valid 128-char secret", makeKey("kg", "test", secret128), Parts{"kg", keygate.EnvTest, secret128}, nil},
		{"valid 44-char secret", makeKey("kg", "live", vectorSecret+"h"), Parts{"kg", keygate.EnvLive, vectorSecret + "h"}, nil},

		{"empty", "", Parts{}, ErrMalformed},
		{"prefix only", "kg_live_", Parts{}, ErrMalformed},
		{"no checksum", "kg_live_" + vectorSecret, Parts{}, ErrMalformed},
		{"hyphen separators", "kg-live-" + vectorSecret + "4USyQz", Parts{}, ErrMalformed},
		{"no separators", makeKey("kglive", "", vectorSecret)[7:], Parts{}, ErrMalformed},
		{"double underscore after prefix", makeKey("kg_", "live", vectorSecret), Parts{}, ErrMalformed},
		{"double underscore after env", makeKey("kg", "live_", vectorSecret), Parts{}, ErrMalformed},
		{"underscore before checksum", "kg_live_" + vectorSecret + "_4USyQz", Parts{}, ErrMalformed},
		{"missing env separator", "kg_live" + vectorSecret + "4USyQz", Parts{}, ErrMalformed},
		{"unknown env", makeKey("kg", "prod", vectorSecret), Parts{}, ErrMalformed},
		{"upper-case env", makeKey("kg", "LIVE", vectorSecret), Parts{}, ErrMalformed},
		{"short env", makeKey("kg", "tes", vectorSecret), Parts{}, ErrMalformed},
		{"upper-case prefix", makeKey("KG", "live", vectorSecret), Parts{}, ErrMalformed},
		{"prefix starts with digit", makeKey("1kg", "live", vectorSecret), Parts{}, ErrMalformed},
		{"one-char prefix", makeKey("k", "live", vectorSecret), Parts{}, ErrMalformed},
		{"17-char prefix", makeKey("abcdefghijklmnopq", "live", vectorSecret), Parts{}, ErrMalformed},
		{"empty prefix", makeKey("", "live", vectorSecret), Parts{}, ErrMalformed},
		{"short secret", makeKey("kg", "live", vectorSecret[:42]), Parts{}, ErrMalformed},
		{"129-char secret", makeKey("kg", "live", secret128+"A"), Parts{}, ErrMalformed},
		{"hyphen in secret", makeKey("kg", "live", "-"+vectorSecret[1:]), Parts{}, ErrMalformed},
		{"plus and slash in secret", makeKey("kg", "live", "+/"+vectorSecret[2:]), Parts{}, ErrMalformed},
		{"padding in secret", makeKey("kg", "live", vectorSecret[:42]+"="), Parts{}, ErrMalformed},
		{"space in secret", makeKey("kg", "live", vectorSecret[:20]+" "+vectorSecret[21:]), Parts{}, ErrMalformed},
		{"NUL in secret", makeKey("kg", "live", vectorSecret[:20]+"\x00"+vectorSecret[21:]), Parts{}, ErrMalformed},
		{"non-base62 checksum", "kg_live_" + vectorSecret + "4USyQ-", Parts{}, ErrMalformed},
		{"leading space", " " + vectorKey, Parts{}, ErrMalformed},
		{"trailing newline", vectorKey + "\n", Parts{}, ErrMalformed},
		{"bearer scheme", "Bearer " + vectorKey, Parts{}, ErrMalformed},
		{"legacy token_urlsafe key", "doda_" + "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dX-_", Parts{}, ErrMalformed},
		{"201 bytes", "kg_live_" + strings.Repeat("a", 193), Parts{}, ErrMalformed},
		{"very long", "kg_live_" + strings.Repeat("a", 1<<20), Parts{}, ErrMalformed},
		{"unicode prefix", makeKey("ķg", "live", vectorSecret), Parts{}, ErrMalformed},
		{"unicode env", makeKey("kg", "lïve", vectorSecret), Parts{}, ErrMalformed},
		{"arabic digit in secret", makeKey("kg", "live", vectorSecret[:41]+"٣"), Parts{}, ErrMalformed},
		{"full-width secret", makeKey("kg", "live", strings.Repeat("Ａ", 43)), Parts{}, ErrMalformed},
		{"invalid UTF-8", makeKey("kg", "live", vectorSecret[:42]+"\xff"), Parts{}, ErrMalformed},

		{"wrong checksum", "kg_live_" + vectorSecret + "4USyQy", Parts{}, ErrChecksum},
		{"lower-cased checksum", "kg_live_" + vectorSecret + "4usyqz", Parts{}, ErrChecksum},
		{"checksum of another key", "kg_test_" + vectorSecret + "4USyQz", Parts{}, ErrChecksum},
		{"zero checksum", "kg_live_" + vectorSecret + "000000", Parts{}, ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != tt.wantErr {
				t.Fatalf("Parse(%.80q): got error %v, want %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Parse(%.80q): got %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

// TestParseDetectsSingleChanges replaces each character of valid keys in
// turn with every other byte value, and swaps each pair of adjacent
// characters: CRC32 detects every error burst of up to 32 bits, so none of
// these may parse.
func TestParseDetectsSingleChanges(t *testing.T) {
	keys := []string{vectorKey, rootVectorKey}
	for range 3 {
		key, err := Generate(DefaultPrefix, keygate.EnvLive)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	for _, key := range keys {
		bodyStart := strings.LastIndexByte(key, '_') + 1
		b := []byte(key)
		for i := range b {
			orig := b[i]
			for c := range 256 {
				if byte(c) == orig {
					continue
				}
				b[i] = byte(c)
				_, err := Parse(string(b))
				switch {
				case err == nil:
					t.Errorf("Parse(%q) with byte %d changed to %q: got nil error, want one", b, i, byte(c))
				case i >= bodyStart && isBase62(byte(c)) && err != ErrChecksum:
					t.Errorf("Parse(%q) with byte %d changed to %q: got %v, want %v", b, i, byte(c), err, ErrChecksum)
				case err != ErrChecksum && err != ErrMalformed:
					t.Errorf("Parse(%q): got %v, want %v or %v", b, err, ErrChecksum, ErrMalformed)
				}
			}
			b[i] = orig
		}
		for i := 0; i+1 < len(b); i++ {
			if b[i] == b[i+1] {
				continue
			}
			b[i], b[i+1] = b[i+1], b[i]
			if _, err := Parse(string(b)); err == nil {
				t.Errorf("Parse(%q) with bytes %d and %d swapped: got nil error, want one", b, i, i+1)
			}
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	for _, in := range []string{
		vectorKey,
		rootVectorKey,
		"kg_live_" + vectorSecret + "4USyQy", // checksum mismatch
		"kg_prod_" + vectorSecret + "4USyQz", // malformed
		"",
	} {
		if got := testing.AllocsPerRun(100, func() { Parse(in) }); got != 0 {
			t.Errorf("Parse(%q): got %v allocs, want 0", in, got)
		}
	}
}

func TestStart(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"valid", vectorKey, "kg_live_0123"},
		{"root", rootVectorKey, "kgr_test_0000"},
		{"128-char secret", makeKey("abcdefghijklmnop", "test", strings.Repeat("Az09", 32)), "abcdefghijklmnop_test_Az09"},
		{"bad checksum", "kg_live_" + vectorSecret + "4USyQy", "kg_live_"},
		{"legacy", "doda_Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dX-_", "doda_Zm9"},
		{"empty", "", ""},
		{"short password", "hunter2", "h"},
		{"medium password", "correct horse battery", "corre"},
		{"bearer", "Bearer " + vectorKey, "Bearer"},
		{"control byte", "k\x00" + vectorKey, "k"},
		{"unicode", "ķg_live_" + vectorSecret, ""},
		{"newline", "kg\nlive_" + vectorSecret, "kg"},
	}
	for _, tt := range tests {
		if got := Start(tt.in); got != tt.want {
			t.Errorf("%s: Start(%q): got %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestLast4(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"valid", vectorKey, "SyQz"},
		{"root", rootVectorKey, "ZBmV"},
		{"legacy", "doda_Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dX-_", "dX-_"},
		{"empty", "", ""},
		{"short", "hunter2", ""},
		{"15 bytes", "abcdefghijklmno", ""},
		{"16 bytes", "abcdefghijklmnop", "mnop"},
		{"trailing newline", vectorKey + "\n", ""},
		{"unicode", vectorKey + "é", ""},
	}
	for _, tt := range tests {
		if got := Last4(tt.in); got != tt.want {
			t.Errorf("%s: Last4(%q): got %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestHasher(t *testing.T) {
	plain := func(key string) string {
		s := sha256.Sum256([]byte(key))
		return hex.EncodeToString(s[:])
	}
	mac := func(pepper []byte, key string) string {
		m := hmac.New(sha256.New, pepper)
		m.Write([]byte(key))
		return hex.EncodeToString(m.Sum(nil))
	}
	pepper := []byte("0123456789abcdef0123456789abcdef")
	keys := []string{vectorKey, rootVectorKey, "", "doda_legacy", strings.Repeat("x", 1000)}

	unpeppered := map[string]*Hasher{
		"NewHasher(nil)":   NewHasher(nil),
		"NewHasher(empty)": NewHasher([]byte{}),
		"zero Hasher":      {},
		"nil Hasher":       nil,
	}
	for name, h := range unpeppered {
		for _, key := range keys {
			if got, want := h.Hex(key), plain(key); got != want {
				t.Errorf("%s.Hex(%.20q): got %s, want %s", name, key, got, want)
			}
		}
	}

	mutable := append([]byte(nil), pepper...)
	h := NewHasher(mutable)
	mutable[0] ^= 0xff // NewHasher must keep its own copy
	for range 3 {      // again, to hash with pooled, reset states
		for _, key := range keys {
			want := mac(pepper, key)
			if got := h.Hex(key); got != want {
				t.Errorf("peppered Hex(%.20q): got %s, want %s", key, got, want)
			}
			sum := h.Sum(key)
			if got := hex.EncodeToString(sum[:]); got != want {
				t.Errorf("peppered Sum(%.20q): got %s, want %s", key, got, want)
			}
			if h.Hex(key) == plain(key) {
				t.Errorf("peppered Hex(%.20q) equals plain SHA-256", key)
			}
			if got, want := SHA256Hex(key), plain(key); got != want {
				t.Errorf("SHA256Hex(%.20q): got %s, want %s", key, got, want)
			}
		}
	}
}

// TestHashVectors pins the hashes to published test vectors: FIPS 180-2's
// "abc" for SHA-256 and RFC 4231 test case 2 for HMAC-SHA-256.
func TestHashVectors(t *testing.T) {
	if got, want := SHA256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("SHA256Hex(abc): got %s, want %s", got, want)
	}
	if got, want := NewHasher(nil).Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("NewHasher(nil).Hex(abc): got %s, want %s", got, want)
	}
	if got, want := NewHasher([]byte("Jefe")).Hex("what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"; got != want {
		t.Errorf("HMAC RFC 4231 case 2: got %s, want %s", got, want)
	}
}

func TestHasherSumDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name   string
		h      *Hasher
		pooled bool
	}{
		{"plain", NewHasher(nil), false},
		{"peppered", NewHasher([]byte("0123456789abcdef0123456789abcdef")), true},
	}
	for _, tt := range tests {
		if tt.pooled && raceEnabled {
			t.Logf("%s: skipped: under the race detector sync.Pool drops items, so pooled code allocates", tt.name)
			continue
		}
		tt.h.Sum(vectorKey) // fill the pool
		if got := testing.AllocsPerRun(1000, func() { tt.h.Sum(vectorKey) }); got != 0 {
			t.Errorf("%s: Sum: got %v allocs, want 0", tt.name, got)
		}
	}
	if got := testing.AllocsPerRun(100, func() { SHA256Hex(vectorKey) }); got != 1 {
		t.Errorf("SHA256Hex: got %v allocs, want 1 (the result)", got)
	}
}

// TestHasherConcurrent hashes from many goroutines at once with one
// Hasher; run it with -race. A pooled HMAC state shared by mistake would
// also show up as a wrong sum.
func TestHasherConcurrent(t *testing.T) {
	pepper := []byte("0123456789abcdef0123456789abcdef")
	h := NewHasher(pepper)
	keys := make([]string, 16)
	want := make([][32]byte, len(keys))
	for i := range keys {
		key, err := Generate(DefaultPrefix, keygate.EnvLive)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = key
		m := hmac.New(sha256.New, pepper)
		m.Write([]byte(key))
		copy(want[i][:], m.Sum(nil))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 500 {
				i := (g + n) % len(keys)
				if got := h.Sum(keys[i]); got != want[i] {
					t.Errorf("goroutine %d: Sum(%q): got %x, want %x", g, keys[i], got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		vectorKey,
		rootVectorKey,
		makeKey("abcdefghijklmnop", "test", strings.Repeat("Az09", 32)),
		"kg_live_" + vectorSecret + "4USyQy",
		"kg_prod_" + vectorSecret + "4USyQz",
		"",
		"kg_live_",
		"ķg_live_" + vectorSecret,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		start, last4 := Start(s), Last4(s)
		if !strings.HasPrefix(s, start) || !strings.HasSuffix(s, last4) {
			t.Fatalf("Start %q, Last4 %q: not a prefix and a suffix of %q", start, last4, s)
		}
		if len(last4) != 0 && len(last4) != 4 {
			t.Fatalf("Last4(%q): got %q, want 4 bytes or none", s, last4)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrChecksum) {
				t.Fatalf("Parse(%q): got error %v, want %v or %v", s, err, ErrMalformed, ErrChecksum)
			}
			if p != (Parts{}) {
				t.Fatalf("Parse(%q): got %+v with error %v, want zero Parts", s, p, err)
			}
			if len(start) > 8 {
				t.Fatalf("Start(%q) of an invalid key: got %q, want at most 8 bytes", s, start)
			}
			return
		}
		if !ValidPrefix(p.Prefix) || !p.Env.Valid() || len(p.Secret) < SecretLen || len(p.Secret) > maxSecretLen || !allBase62(p.Secret) {
			t.Fatalf("Parse(%q) accepted invalid parts %+v", s, p)
		}
		body := p.Prefix + "_" + string(p.Env) + "_" + p.Secret
		if got := body + refChecksum(body); got != s {
			t.Fatalf("Parse(%q): parts reassemble to %q", s, got)
		}
		if want := body[:len(p.Prefix)+1+len(p.Env)+1+4]; start != want {
			t.Fatalf("Start(%q): got %q, want %q", s, start, want)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, bm := range []struct{ name, in string }{
		{"valid", vectorKey},
		{"checksum", "kg_live_" + vectorSecret + "4USyQy"},
		{"malformed", "kg_prod_" + vectorSecret + "4USyQz"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Parse(bm.in)
			}
		})
	}
}

func BenchmarkHasherSum(b *testing.B) {
	for _, bm := range []struct {
		name string
		h    *Hasher
	}{
		{"plain", NewHasher(nil)},
		{"pepper", NewHasher([]byte("0123456789abcdef0123456789abcdef"))},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bm.h.Sum(vectorKey)
			}
		})
	}
}

func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(DefaultPrefix, keygate.EnvLive); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFind(t *testing.T) {
	k1, err := Generate("kg", keygate.EnvLive)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := Generate("acme2", keygate.EnvTest)
	if err != nil {
		t.Fatal(err)
	}
	bad := k1[:len(k1)-1] + string(k1[len(k1)-1]^1) // checksum broken
	tests := []struct {
		name, in, want string
	}{
		{"whole", k1, k1},
		{"in a path", "/v1/keys/" + k1 + "/show", k1},
		{"with an extension", "/files/" + k2 + ".json", k2},
		{"in a query", "city=Oslo&tok=" + k2 + "&x=1", k2},
		{"glued on the left", "xyz" + k1, k1},
		{"glued on the right", k1 + "abc", k1},
		{"second of two candidates", "kg_live_nope/" + k2, k2},
		{"broken checksum", "/x/" + bad, ""},
		{"no key", "/weather?city=Oslo", ""},
		{"empty", "", ""},
		{"only the env", "_live_", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Find(tt.in)
			if got != tt.want || ok != (tt.want != "") {
				t.Fatalf("Find(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
			}
		})
	}
}

func FuzzFind(f *testing.F) {
	k, _ := Generate("kg", keygate.EnvLive)
	for _, s := range []string{"", "_live_", "/a/" + k, k + k, "kg_test_" + strings.Repeat("A", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := Find(s)
		if !ok {
			return
		}
		if !strings.Contains(s, got) {
			t.Fatalf("Find(%q) = %q, not a substring", s, got)
		}
		if _, err := Parse(got); err != nil {
			t.Fatalf("Find(%q) = %q, which does not parse: %v", s, got, err)
		}
	})
}
