// Package apikey implements keygate's key format: generating keys, parsing
// and checksumming them, the strings shown for display, and the hashes they
// are stored and looked up by.
//
// A key is {prefix}_{env}_{secret}{checksum}, for example
//
//	kg_live_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg4USyQz
//
// where prefix is [a-z][a-z0-9]{1,15}, env is "live" or "test", secret is
// 32 bytes from crypto/rand in base62 (0-9A-Za-z, 43 characters) and
// checksum is the CRC32 (IEEE) of everything before it in base62, 6
// characters. The underscores are not base62, so a double click selects the
// whole key, and the checksum lets keygate (or a secret scanner) reject a
// mistyped or made-up key without a store lookup.
//
// The package is pure: no I/O beyond crypto/rand, no dependencies beyond the
// standard library and package keygate.
package apikey

import (
	"crypto/rand"
	"errors"
	"hash/crc32"
	"strings"

	"github.com/keygate/keygate"
)

// Key format constants.
const (
	DefaultPrefix = "kg"  // prefix of API keys unless the operator picks another
	RootPrefix    = "kgr" // prefix of root keys, so they never pass for API keys
	SecretLen     = 43    // length of a generated secret: 32 bytes in base62
	ChecksumLen   = 6     // length of the checksum: a uint32 in base62
)

const (
	// secretBytes is the entropy of a generated secret: 256 bits.
	secretBytes = 32

	// maxSecretLen bounds the secrets Parse accepts. Generate always
	// writes SecretLen characters; the slack lets a later version (or an
	// operator's import) use longer secrets without a format change.
	maxSecretLen = 128

	// maxKeyLen is the longest input Parse looks at. The longest valid key
	// is 16+1+4+1+128+6 = 156 bytes; anything far beyond is junk and is
	// refused before any scanning.
	maxKeyLen = 200

	// minKeyLen is the shortest valid key: a 2-character prefix and a
	// SecretLen secret.
	minKeyLen = 2 + 1 + 4 + 1 + SecretLen + ChecksumLen

	// startSecretLen is how many secret characters Start shows.
	startSecretLen = 4
)

// alphabet is base62 in ASCII order, so that a zero-padded encoding sorts
// like the number it encodes.
const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Errors returned by Parse. They are sentinels, not *keygate.Error, so that
// Parse does not allocate on the verification hot path; callers map both
// to the MALFORMED outcome.
var (
	ErrMalformed = errors.New("apikey: malformed key")     // wrong shape
	ErrChecksum  = errors.New("apikey: checksum mismatch") // right shape, wrong checksum
)

// Parts are the pieces of a parsed key. Each is a substring of the parsed
// input, so parsing copies nothing.
type Parts struct {
	Prefix string
	Env    keygate.Env
	Secret string
}

// ValidPrefix reports whether p is a valid key prefix: a lower-case ASCII
// letter followed by 1 to 15 lower-case ASCII letters or digits.
func ValidPrefix(p string) bool {
	if len(p) < 2 || len(p) > 16 || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 1; i < len(p); i++ {
		c := p[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Generate returns a new key with the given prefix and env and a secret of
// 256 bits from crypto/rand. It returns an EINVALID *keygate.Error when
// prefix or env is invalid.
func Generate(prefix string, env keygate.Env) (string, error) {
	if !ValidPrefix(prefix) {
		return "", keygate.Errorf(keygate.EINVALID, "key prefix %q is invalid: use a lower-case letter followed by 1 to 15 lower-case letters or digits, such as %q.", prefix, DefaultPrefix)
	}
	if !env.Valid() {
		return "", keygate.Errorf(keygate.EINVALID, "env %q is invalid: use \"live\" or \"test\".", env)
	}
	var raw [secretBytes]byte
	// crypto/rand.Read is documented never to return an error (it crashes
	// the program instead), but a key must never be issued from a buffer
	// that may not have been filled, so the error is still honored.
	if _, err := rand.Read(raw[:]); err != nil {
		return "", &keygate.Error{Code: keygate.EINTERNAL, Message: "The key could not be generated; try again.", Err: err}
	}
	var secret [SecretLen]byte
	encodeSecret(&secret, &raw)

	var b strings.Builder
	b.Grow(len(prefix) + 1 + len(env) + 1 + SecretLen + ChecksumLen)
	b.WriteString(prefix)
	b.WriteByte('_')
	b.WriteString(string(env))
	b.WriteByte('_')
	b.Write(secret[:])
	var sum [ChecksumLen]byte
	encodeChecksum(&sum, crc32.ChecksumIEEE(bytesOf(b.String())))
	b.Write(sum[:])
	return b.String(), nil
}

// Parse checks that s is a well-formed key with a correct checksum and
// returns its parts. It returns ErrMalformed when s does not have the shape
// of a key (secrets of 43 to 128 base62 characters are accepted) and
// ErrChecksum when the shape is right but the checksum is not.
//
// Parse does not allocate and never panics, whatever s holds: it runs on
// every verification, before any store lookup, on input an attacker chose.
func Parse(s string) (Parts, error) {
	if len(s) < minKeyLen || len(s) > maxKeyLen {
		return Parts{}, ErrMalformed
	}
	i := strings.IndexByte(s, '_')
	if i < 0 || !ValidPrefix(s[:i]) {
		return Parts{}, ErrMalformed
	}
	rest := s[i+1:]
	if len(rest) < 5 || rest[4] != '_' {
		return Parts{}, ErrMalformed
	}
	env := keygate.Env(rest[:4])
	if !env.Valid() {
		return Parts{}, ErrMalformed
	}
	body := rest[5:] // secret and checksum, with nothing between them
	n := len(body) - ChecksumLen
	if n < SecretLen || n > maxSecretLen {
		return Parts{}, ErrMalformed
	}
	for j := 0; j < len(body); j++ {
		if !isBase62(body[j]) {
			return Parts{}, ErrMalformed
		}
	}
	var want [ChecksumLen]byte
	encodeChecksum(&want, crc32.ChecksumIEEE(bytesOf(s[:len(s)-ChecksumLen])))
	// The comparison needn't be constant-time: the checksum is a typo
	// check, not a secret, and anyone can compute it for a key they hold.
	if string(want[:]) != body[n:] {
		return Parts{}, ErrChecksum
	}
	return Parts{Prefix: s[:i], Env: env, Secret: body[:n]}, nil
}

// Start returns the part of key that is stored and shown so a user can tell
// keys apart: the prefix, env and first 4 secret characters, such as
// "kg_live_0123". For a valid key the result is a prefix of key.
//
// For input that does not parse, Start returns at most its first 8 bytes,
// cut short at the first byte that is not an ASCII letter, digit, '_' or
// '-', and to no more than a quarter of the input's length. That is enough
// to tell in a log whether a mistyped key ("kg_live_"), a legacy key or junk
// was sent, while never echoing enough of a mistyped secret, or a password
// pasted by mistake, to help anyone guess it; the output is always printable
// ASCII, safe to put in a log line.
func Start(key string) string {
	if p, err := Parse(key); err == nil {
		return key[:len(p.Prefix)+1+len(p.Env)+1+startSecretLen]
	}
	n := min(8, len(key)/4)
	for i := 0; i < n; i++ {
		if !isDisplaySafe(key[i]) {
			return key[:i]
		}
	}
	return key[:n]
}

// Last4 returns the last 4 bytes of key, which for a keygate key are
// checksum characters, shown beside Start so a user can tell keys apart.
// It returns "" when key is shorter than 16 bytes (no key is, and a short
// string may be a whole password) or when those bytes are not ASCII
// letters, digits, '_' or '-', so the result is always safe to display.
func Last4(key string) string {
	if len(key) < 16 {
		return ""
	}
	last := key[len(key)-4:]
	for i := 0; i < len(last); i++ {
		if !isDisplaySafe(last[i]) {
			return ""
		}
	}
	return last
}

// encodeSecret writes raw, read as a big-endian 256-bit number, to dst in
// base62, left-padded with '0'. 62^43 > 2^256, so 43 digits always suffice,
// and the fixed width makes every key of one prefix and env the same length.
func encodeSecret(dst *[SecretLen]byte, raw *[secretBytes]byte) {
	// Long division of the number, as 8 big-endian 32-bit limbs, by 62:
	// each step's remainder is the next digit from the right. 32-bit limbs
	// keep every intermediate value within a uint64.
	var limbs [secretBytes / 4]uint32
	for i := range limbs {
		limbs[i] = uint32(raw[4*i])<<24 | uint32(raw[4*i+1])<<16 | uint32(raw[4*i+2])<<8 | uint32(raw[4*i+3])
	}
	for d := SecretLen - 1; d >= 0; d-- {
		var rem uint64
		for i := range limbs {
			cur := rem<<32 | uint64(limbs[i])
			limbs[i] = uint32(cur / 62)
			rem = cur % 62
		}
		dst[d] = alphabet[rem]
	}
}

// encodeChecksum writes c to dst in base62, left-padded with '0'.
// 62^6 > 2^32, so 6 digits always suffice.
func encodeChecksum(dst *[ChecksumLen]byte, c uint32) {
	for i := ChecksumLen - 1; i >= 0; i-- {
		dst[i] = alphabet[c%62]
		c /= 62
	}
}

// base62Set marks the bytes of alphabet. The character check is the largest
// cost of a Parse after the CRC, and one lookup per byte beats three range
// tests (about 40 against 48 ns for a 49-byte body, measured with go1.26).
var base62Set = func() (set [256]bool) {
	for i := 0; i < len(alphabet); i++ {
		set[alphabet[i]] = true
	}
	return set
}()

func isBase62(c byte) bool { return base62Set[c] }

// isDisplaySafe reports whether c may appear in what Start and Last4 show
// of input that is not a valid key: the characters of keygate keys and of
// the URL-safe base64 tokens that legacy keys are made of.
func isDisplaySafe(c byte) bool {
	return isBase62(c) || c == '_' || c == '-'
}
