// Package keygate holds keygate's domain: accounts, tiers, keys, root keys,
// audit events, verification outcomes, the one error type, and the Store
// interface that every backend (sqlite, postgres) implements.
//
// The package has no dependencies beyond the standard library. Everything
// that talks to the outside world lives in a package named after what it
// talks to; see docs/ARCHITECTURE.md.
package keygate

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// Version is the keygate release, set at build time with
// -ldflags "-X github.com/keygate/keygate.Version=v1.2.3".
var Version = "v0.1.0-dev"

// ID prefixes. IDs are public and safe to log.
const (
	PrefixKey     = "key_"
	PrefixAccount = "acc_"
	PrefixRootKey = "rk_"
	PrefixAudit   = "aud_"
)

const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz" // Crockford base32, lower case

// NewID returns prefix followed by 26 characters: 48 bits of millisecond
// time and 80 random bits, so IDs sort by creation time (the basis of cursor
// pagination) and never collide in practice.
func NewID(prefix string, now time.Time) string {
	return NewIDs(prefix, now, 1)[0]
}

// NewIDs returns n IDs for the same moment that sort in the order given:
// the first has random low bits, and each next one is the one before plus
// one, as monotonic ULIDs are. Records created together, such as an
// import's keys, then sort (and are indexed) in the order they were made.
func NewIDs(prefix string, now time.Time, n int) []string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("keygate: crypto/rand failed: " + err.Error()) // rand.Read never fails on supported platforms
	}
	// Leave room for n increments in the low 64 bits without touching the
	// time: clear the top bit of the random part's low word.
	b[8] &= 0x7f
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	ids := make([]string, n)
	for i := range ids {
		ids[i] = encodeID(prefix, hi, lo+uint64(i))
	}
	return ids
}

// encodeID writes 128 bits as 26 base32 digits after prefix; the top digit
// holds 3 bits.
func encodeID(prefix string, hi, lo uint64) string {
	out := make([]byte, len(prefix)+26)
	copy(out, prefix)
	for i := len(out) - 1; i >= len(prefix); i-- {
		out[i] = idAlphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out)
}
